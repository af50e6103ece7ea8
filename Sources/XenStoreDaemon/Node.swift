#if canImport(Glibc)
import Glibc
#endif
import XenStore

/// One node of the tree: its value, access list and children, and the generation stamped
/// on it by the store's last change (transactions detect conflicts by comparing it).
///
/// The children are kept as the DIRECTORY payload itself: each name followed by NUL, in
/// creation order (as C xenstored lists them). One byte buffer, not an array of strings: it is
/// what the store keeps, what DIRECTORY sends, and `children` makes strings only on demand.
struct Node {
  var value: [UInt8]
  var permissions: Permissions
  /// The child names in creation order, each followed by NUL (`childlen` bytes in C).
  private(set) var childList: [UInt8] = []
  var generation: UInt64 = 0

  init(value: [UInt8] = [], permissions: Permissions) {
    self.value = value
    self.permissions = permissions
  }

  init(value: [UInt8] = [], permissions: Permissions, childList: [UInt8], generation: UInt64 = 0) {
    self.value = value
    self.permissions = permissions
    self.childList = childList
    self.generation = generation
  }

  /// Child names in creation order.
  var children: [String] { Self.names(in: childList) }

  /// The names of a child list (DIRECTORY bytes: each name followed by NUL).
  static func names(in childList: [UInt8]) -> [String] {
    guard !childList.isEmpty else { return [] }
    return childList.dropLast().split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
  }

  /// Bytes of the NUL-separated child list (`childlen` in C).
  var childrenBytes: Int { childList.count }

  mutating func addChild(_ name: String) {
    childList.append(contentsOf: name.utf8)
    childList.append(0)
  }

  /// Removes the last child called `name`, if any.
  mutating func removeChild(_ name: String) {
    guard let range = Self.lastEntry(name, in: childList) else { return }
    childList.removeSubrange(range)
  }

  /// Whether a child is called `name`.
  func hasChild(_ name: String) -> Bool { Self.lastEntry(name, in: childList) != nil }

  /// The bytes of the last entry `name\0` of `list`.
  private static func lastEntry(_ name: String, in list: [UInt8]) -> Range<Int>? {
    var name = name
    return name.withUTF8 { wanted -> Range<Int>? in
      var found: Range<Int>?
      var start = 0
      list.withUnsafeBufferPointer { all in
        while start < all.count {
          var end = start
          while end < all.count && all[end] != 0 { end += 1 }
          if end - start == wanted.count && (wanted.isEmpty || memcmp(all.baseAddress! + start, wanted.baseAddress!, wanted.count) == 0) {
            found = start..<(end + 1)
          }
          start = end + 1
        }
      }
      return found
    }
  }

  /// The size of C xenstored's database record (header, permissions, value, child list):
  /// what the `node-size` quota limits for unprivileged domains.
  var recordSize: Int { 24 + 8 * permissions.entries.count + value.count + childrenBytes }
}

/// Where request handlers read and change nodes: the live store, or a transaction's view of it.
protocol NodeTree: AnyObject {
  func node(_ path: String) -> Node?
  func put(_ path: String, _ node: Node)
  func remove(_ path: String)
  /// How many nodes `domid` owns (the `nodes` quota).
  func ownedCount(_ domid: UInt32) -> Int
}

extension ChildrenChange {
  /// The change from child list `old` (DIRECTORY bytes; nil: a new node) to `new`'s, found on
  /// the bytes for the common cases (unchanged, one name appended) without making strings.
  init(from old: [UInt8]?, to new: Node) {
    let list = new.childList
    if let old {
      if old == list { self = .same; return }
      if list.count > old.count, list.last == 0, list.starts(with: old),
         !list[old.count..<(list.count - 1)].contains(0), list.count - old.count > 1 {
        self = .append(String(decoding: list[old.count..<(list.count - 1)], as: UTF8.self))
        return
      }
      let oldNode = Node(value: [], permissions: new.permissions, childList: old, generation: 0)
      self.init(from: oldNode.children, to: new.children)
    } else {
      self.init(from: nil, to: new.children)
    }
  }
}
