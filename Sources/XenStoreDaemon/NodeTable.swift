#if canImport(Glibc)
import Glibc
#endif
import XenStore

/// Every node by canonical path, compactly: what `Store` keeps and what a snapshot encodes.
///
/// A value with copy-on-write storage, so taking it is O(1) (snapshots encode one on another
/// thread while the loop goes on changing its own). Per node it keeps one 32-byte record, the
/// path and value bytes in one shared byte arena, a 4-byte slot of an open-addressing index,
/// and its share of its parent's child list; access lists are interned (most nodes share a
/// handful). No per-node heap object, no `String`.
struct NodeTable: Sendable, ExpressibleByDictionaryLiteral {
  /// One node. `offset` is where its path starts in `arena`; its value follows the path and
  /// has room for `valueCapacity` bytes.
  private struct Record {
    var offset: UInt32
    var permissions: UInt32
    var pathLength: UInt16
    var valueLength: UInt16
    var valueCapacity: UInt16
    var generation: UInt64
    var childList: [UInt8]

    var isFree: Bool { offset == UInt32.max }
    var regionSize: Int { Int(pathLength) + Int(valueCapacity) }
  }

  private var records: [Record] = []
  /// Indices of free records, reused before new ones are added.
  private var freeRecords: [UInt32] = []
  /// Path and value bytes of every record; `garbage` of them belong to no live record.
  private var arena: [UInt8] = []
  private var garbage = 0
  /// Open addressing with linear probing: 0 empty, else record index + 1. Power-of-two size.
  private var slots: [UInt32] = []
  private(set) var count = 0
  /// Interned access lists, their reference counts, free entries, and the index to find them.
  private var permissionList: [Permissions] = []
  private var permissionRefs: [UInt32] = []
  private var freePermissions: [UInt32] = []
  private var permissionIndex: [Permissions: UInt32] = [:]

  init() {}

  init(dictionaryLiteral elements: (String, Node)...) {
    for (path, node) in elements { self[path] = node }
  }

  var isEmpty: Bool { count == 0 }

  // MARK: Lookup

  subscript(path: String) -> Node? {
    get { find(path).map(node(at:)) }
    set {
      if let newValue { updateValue(newValue, forKey: path) } else { removeValue(forKey: path) }
    }
  }

  /// The generation of the node at `path`, if there is one (no copy of its value).
  func generation(_ path: String) -> UInt64? { find(path).map { records[$0].generation } }

  /// The owner of the node at `path`, if there is one.
  func owner(_ path: String) -> UInt32? { find(path).map { permissionList[Int(records[$0].permissions)].owner } }

  /// The child list of the node at `path`, if there is one.
  func childList(_ path: String) -> [UInt8]? { find(path).map { records[$0].childList } }

  /// Whether there is a node at `path` (nothing of it copied).
  func contains(_ path: String) -> Bool { find(path) != nil }

  /// Every path with its child list, in no particular order: the tree's shape, without
  /// copying any value.
  func forEachChildList(_ body: (_ path: String, _ childList: [UInt8]) -> Void) {
    for index in records.indices where !records[index].isFree { body(path(at: index), records[index].childList) }
  }

  /// Appends `name` to the child list of the node at `path` in place: with nothing else
  /// holding that list, a node of n children takes one more in O(name), not O(n). False if
  /// there is no node at `path`.
  mutating func appendChild(_ name: String, to path: String) -> Bool {
    guard let index = find(path) else { return false }
    records[index].childList.append(contentsOf: name.utf8)
    records[index].childList.append(0)
    return true
  }

  private func node(at index: Int) -> Node {
    let r = records[index]
    let start = Int(r.offset) + Int(r.pathLength)
    let value = r.valueLength == 0 ? [] : Array(arena[start..<(start + Int(r.valueLength))])
    return Node(value: value, permissions: permissionList[Int(r.permissions)], childList: r.childList, generation: r.generation)
  }

  private func path(at index: Int) -> String {
    let r = records[index]
    return arena.withUnsafeBufferPointer {
      String(decoding: UnsafeBufferPointer(rebasing: $0[Int(r.offset)..<(Int(r.offset) + Int(r.pathLength))]), as: UTF8.self)
    }
  }

  private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h ^ (h >> 29)
  }

  /// The record index of `path`, or nil.
  private func find(_ path: String) -> Int? {
    guard count > 0 else { return nil }
    var path = path
    return path.withUTF8 { key in find(key, hash: Self.hash(key)).found }
  }

  /// The record of `key` if present, and the slot where it is or would go.
  private func find(_ key: UnsafeBufferPointer<UInt8>, hash: UInt64) -> (found: Int?, slot: Int) {
    let mask = slots.count - 1
    var slot = Int(truncatingIfNeeded: hash) & mask
    return slots.withUnsafeBufferPointer { slots in
      records.withUnsafeBufferPointer { records in
        arena.withUnsafeBufferPointer { arena in
          while true {
            let entry = slots[slot]
            if entry == 0 { return (nil, slot) }
            let r = records[Int(entry - 1)]
            if Int(r.pathLength) == key.count
              && (key.isEmpty || memcmp(arena.baseAddress! + Int(r.offset), key.baseAddress!, key.count) == 0) {
              return (Int(entry - 1), slot)
            }
            slot = (slot + 1) & mask
          }
        }
      }
    }
  }

  // MARK: Changes

  /// Sets the node at `path`; returns the owner and child list of the node it replaced.
  @discardableResult
  mutating func updateValue(_ node: Node, forKey path: String) -> (owner: UInt32, childList: [UInt8])? {
    if slots.isEmpty || (count + 1) * 4 > slots.count * 3 { grow() }
    var path = path
    return path.withUTF8 { key -> (owner: UInt32, childList: [UInt8])? in
      let (found, slot) = find(key, hash: Self.hash(key))
      if let index = found {
        let old = records[index]
        let permissions = intern(node.permissions, replacing: old.permissions)
        if node.value.count > Int(old.valueCapacity) {
          garbage += old.regionSize
          let offset = append(key, node.value)
          records[index].offset = offset
          records[index].valueCapacity = UInt16(node.value.count)
        } else if !node.value.isEmpty {
          let start = Int(old.offset) + Int(old.pathLength)
          arena.withUnsafeMutableBufferPointer { arena in
            node.value.withUnsafeBufferPointer { value in
              _ = memcpy(arena.baseAddress! + start, value.baseAddress!, value.count)
            }
          }
        }
        records[index].valueLength = UInt16(node.value.count)
        records[index].permissions = permissions
        records[index].generation = node.generation
        records[index].childList = node.childList
        if garbage > 65536 && garbage * 2 > arena.count { compact() }
        return (permissionList[Int(old.permissions)].owner, old.childList)
      }
      let record = Record(offset: append(key, node.value), permissions: intern(node.permissions, replacing: nil),
                          pathLength: UInt16(key.count), valueLength: UInt16(node.value.count),
                          valueCapacity: UInt16(node.value.count), generation: node.generation, childList: node.childList)
      let index: Int
      if let free = freeRecords.popLast() {
        index = Int(free)
        records[index] = record
      } else {
        index = records.count
        if records.count == records.capacity { records.reserveCapacity(Self.grown(records.count)) }
        records.append(record)
      }
      slots[slot] = UInt32(index + 1)
      count += 1
      return nil
    }
  }

  /// Removes the node at `path`; returns its owner.
  @discardableResult
  mutating func removeValue(forKey path: String) -> UInt32? {
    guard count > 0 else { return nil }
    var path = path
    let found = path.withUTF8 { key in find(key, hash: Self.hash(key)) }
    guard let index = found.found else { return nil }
    let old = records[index]
    let owner = permissionList[Int(old.permissions)].owner
    release(old.permissions)
    garbage += old.regionSize
    records[index] = Record(offset: UInt32.max, permissions: 0, pathLength: 0, valueLength: 0, valueCapacity: 0, generation: 0, childList: [])
    freeRecords.append(UInt32(index))
    count -= 1
    deleteSlot(found.slot)
    if garbage > 65536 && garbage * 2 > arena.count { compact() }
    return owner
  }

  /// Backward-shift deletion: moves later entries of the probe run into the hole.
  private mutating func deleteSlot(_ hole: Int) {
    let mask = slots.count - 1
    var hole = hole
    var slot = hole
    while true {
      slot = (slot + 1) & mask
      let entry = slots[slot]
      if entry == 0 { break }
      let home = homeSlot(of: Int(entry - 1))
      // Move `entry` into the hole if its home is not within (hole, slot].
      let distanceToSlot = (slot - home) & mask
      let distanceToHole = (hole - home) & mask
      if distanceToHole < distanceToSlot {
        slots[hole] = entry
        hole = slot
      }
    }
    slots[hole] = 0
  }

  private func homeSlot(of index: Int) -> Int {
    let r = records[index]
    let hash = arena.withUnsafeBufferPointer {
      Self.hash(UnsafeBufferPointer(rebasing: $0[Int(r.offset)..<(Int(r.offset) + Int(r.pathLength))]))
    }
    return Int(truncatingIfNeeded: hash) & (slots.count - 1)
  }

  private mutating func grow() {
    let size = Swift.max(16, slots.count * 2)
    slots = [UInt32](repeating: 0, count: size)
    let mask = size - 1
    for index in records.indices where !records[index].isFree {
      var slot = homeSlot(of: index) & mask
      while slots[slot] != 0 { slot = (slot + 1) & mask }
      slots[slot] = UInt32(index + 1)
    }
  }

  /// Capacity after `count` when full: half as much again (not twice: less left unused).
  private static func grown(_ count: Int) -> Int { Swift.max(16, count + count / 2) }

  private mutating func append(_ path: UnsafeBufferPointer<UInt8>, _ value: [UInt8]) -> UInt32 {
    let offset = arena.count
    let needed = offset + path.count + value.count
    if needed > arena.capacity { arena.reserveCapacity(Swift.max(needed, Self.grown(arena.capacity))) }
    arena.append(contentsOf: path)
    arena.append(contentsOf: value)
    return UInt32(offset)
  }

  /// Rewrites the arena with the live records' bytes only.
  private mutating func compact() {
    var fresh: [UInt8] = []
    fresh.reserveCapacity(arena.count - garbage + 1024)
    for index in records.indices where !records[index].isFree {
      let r = records[index]
      let start = Int(r.offset)
      records[index].offset = UInt32(fresh.count)
      fresh.append(contentsOf: arena[start..<(start + Int(r.pathLength) + Int(r.valueLength))])
      records[index].valueCapacity = r.valueLength
    }
    arena = fresh
    garbage = 0
  }

  private mutating func intern(_ permissions: Permissions, replacing old: UInt32?) -> UInt32 {
    if let old, permissionList[Int(old)] == permissions { return old }
    if let old { release(old) }
    if let id = permissionIndex[permissions] {
      permissionRefs[Int(id)] += 1
      return id
    }
    let id: UInt32
    if let free = freePermissions.popLast() {
      id = free
      permissionList[Int(id)] = permissions
      permissionRefs[Int(id)] = 1
    } else {
      id = UInt32(permissionList.count)
      permissionList.append(permissions)
      permissionRefs.append(1)
    }
    permissionIndex[permissions] = id
    return id
  }

  private mutating func release(_ id: UInt32) {
    permissionRefs[Int(id)] -= 1
    if permissionRefs[Int(id)] == 0 {
      permissionIndex[permissionList[Int(id)]] = nil
      freePermissions.append(id)
    }
  }
}

extension NodeTable: Sequence {
  /// Every (path, node), in no particular order.
  struct Iterator: IteratorProtocol {
    fileprivate let table: NodeTable
    fileprivate var index = 0
    mutating func next() -> (key: String, value: Node)? {
      while index < table.records.count {
        defer { index += 1 }
        if !table.records[index].isFree { return (table.path(at: index), table.node(at: index)) }
      }
      return nil
    }
  }

  func makeIterator() -> Iterator { Iterator(table: self) }

  var underestimatedCount: Int { count }

  /// Every path, in no particular order.
  var keys: [String] {
    var keys: [String] = []
    keys.reserveCapacity(count)
    for index in records.indices where !records[index].isFree { keys.append(path(at: index)) }
    return keys
  }
}
