import XenStore

/// How a put changes a node's child list: almost always not at all, or by one name, so the
/// log does not repeat a large directory's whole list for every child created under it.
enum ChildrenChange: Equatable {
  case same
  case append(String)
  case remove(String)
  case all([String])

  /// The change from `old` to `new`.
  init(from old: [String]?, to new: [String]) {
    guard let old else { self = new.isEmpty ? .same : .all(new); return }
    if old == new {
      self = .same
    } else if new.count == old.count + 1, new.starts(with: old) {
      self = .append(new[new.count - 1])
    } else if new.count + 1 == old.count {
      let i = (0..<new.count).first { old[$0] != new[$0] } ?? new.count
      self = old[(i + 1)...].elementsEqual(new[i...]) ? .remove(old[i]) : .all(new)
    } else {
      self = .all(new)
    }
  }
}

/// One change to the durable state: what the log records of a request.
enum StateChange: Equatable {
  case put(path: String, value: [UInt8], permissions: Permissions, children: ChildrenChange)
  case remove(path: String)
  /// The whole table of introduced domains (domid → target), after a change to it.
  case domains([DomainEntry])
  /// The access list of `@introduceDomain` or `@releaseDomain`.
  case specialPermissions(name: String, Permissions)
}

struct DomainEntry: Equatable, Sendable {
  var domid: UInt32
  var target: UInt32?
}

/// What each record of a state-directory file holds (its payload's first byte).
enum RecordKind: UInt8 {
  /// First record of every file.
  case header = 1
  /// Log: the changes of one request, all or nothing.
  case changes = 2
  /// Snapshot: sequence number, domains and special access lists.
  case snapshotMeta = 3
  /// Snapshot: a batch of whole nodes.
  case snapshotNodes = 4
  /// Snapshot: the last record, with the node count; a snapshot without it is incomplete.
  case snapshotEnd = 5
}

/// The header record of a log or snapshot file.
struct FileHeader: Equatable {
  enum Kind: UInt8 { case log = 1, snapshot = 2 }
  static let formatVersion: UInt8 = 1

  var kind: Kind
  var generation: UInt64
  /// `/proc/sys/kernel/random/boot_id` of the daemon that wrote the file.
  var bootID: String

  func encoded() -> [UInt8] {
    var w = ByteWriter()
    w.u8(RecordKind.header.rawValue)
    w.u8(kind.rawValue)
    w.u8(Self.formatVersion)
    w.u64(generation)
    w.string(bootID)
    return w.bytes
  }

  init(kind: Kind, generation: UInt64, bootID: String) {
    self.kind = kind
    self.generation = generation
    self.bootID = bootID
  }

  init(decoding payload: ArraySlice<UInt8>) throws(ByteReader.Malformed) {
    var r = ByteReader(Array(payload))
    guard try r.u8() == RecordKind.header.rawValue else { throw .init(description: "first record is not a file header") }
    guard let kind = Kind(rawValue: try r.u8()) else { throw .init(description: "unknown file kind") }
    let version = try r.u8()
    guard version == Self.formatVersion else { throw .init(description: "unsupported format version \(version)") }
    self.kind = kind
    generation = try r.u64()
    bootID = try r.string()
  }
}

/// A log record: sequence number and the changes of one request.
struct ChangeRecord: Equatable {
  var sequence: UInt64
  var changes: [StateChange]

  func encoded() -> [UInt8] {
    var w = ByteWriter()
    w.u8(RecordKind.changes.rawValue)
    w.u64(sequence)
    w.count(changes.count)
    for change in changes { w.change(change) }
    return w.bytes
  }

  init(sequence: UInt64, changes: [StateChange]) {
    self.sequence = sequence
    self.changes = changes
  }

  init(decoding payload: ArraySlice<UInt8>) throws(ByteReader.Malformed) {
    var r = ByteReader(Array(payload))
    guard try r.u8() == RecordKind.changes.rawValue else { throw .init(description: "not a change record") }
    sequence = try r.u64()
    let n = try r.count()
    changes = []
    changes.reserveCapacity(n)
    for _ in 0..<n { changes.append(try r.change()) }
    guard r.isAtEnd else { throw .init(description: "trailing bytes in a change record") }
  }
}

extension ByteWriter {
  mutating func change(_ change: StateChange) {
    switch change {
    case .put(let path, let value, let permissions, let children):
      u8(1)
      string(path)
      data(value)
      self.permissions(permissions)
      switch children {
      case .same: u8(0)
      case .append(let name): u8(1); string(name)
      case .remove(let name): u8(2); string(name)
      case .all(let names): u8(3); count(names.count); names.forEach { string($0) }
      }
    case .remove(let path):
      u8(2)
      string(path)
    case .domains(let entries):
      u8(3)
      domains(entries)
    case .specialPermissions(let name, let permissions):
      u8(4)
      string(name)
      self.permissions(permissions)
    }
  }

  mutating func domains(_ entries: [DomainEntry]) {
    count(entries.count)
    for e in entries {
      u32(e.domid)
      if let target = e.target { u8(1); u32(target) } else { u8(0) }
    }
  }
}

extension ByteReader {
  mutating func change() throws(Malformed) -> StateChange {
    switch try u8() {
    case 1:
      let path = try string()
      let value = try data()
      let permissions = try permissions()
      let children: ChildrenChange
      switch try u8() {
      case 0: children = .same
      case 1: children = .append(try string())
      case 2: children = .remove(try string())
      case 3:
        let n = try count()
        var names: [String] = []
        names.reserveCapacity(n)
        for _ in 0..<n { names.append(try string()) }
        children = .all(names)
      case let other: throw Malformed(description: "unknown child-list change \(other)")
      }
      return .put(path: path, value: value, permissions: permissions, children: children)
    case 2:
      return .remove(path: try string())
    case 3:
      return .domains(try domains())
    case 4:
      let name = try string()
      return .specialPermissions(name: name, try permissions())
    case let other:
      throw Malformed(description: "unknown change type \(other)")
    }
  }

  /// A domain table: each domain once, dom0 among them.
  mutating func domains() throws(Malformed) -> [DomainEntry] {
    let n = try count()
    var entries: [DomainEntry] = []
    var seen: Set<UInt32> = []
    for _ in 0..<n {
      let domid = try u32()
      guard seen.insert(domid).inserted else { throw Malformed(description: "domain \(domid) listed twice") }
      switch try u8() {
      case 0: entries.append(DomainEntry(domid: domid, target: nil))
      case 1: entries.append(DomainEntry(domid: domid, target: try u32()))
      case let other: throw Malformed(description: "bad domain target flag \(other)")
      }
    }
    guard seen.contains(0) else { throw Malformed(description: "no domain 0 in the domain table") }
    return entries
  }
}
