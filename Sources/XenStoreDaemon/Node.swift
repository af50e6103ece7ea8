import XenStore

/// One node of the tree: its value, access list and children, and the generation stamped
/// on it by the store's last change (transactions detect conflicts by comparing it).
struct Node {
  var value: [UInt8]
  var permissions: Permissions
  /// Child names in creation order, as C xenstored lists them.
  private(set) var children: [String] = []
  /// Bytes of the NUL-separated child list (`childlen` in C).
  private(set) var childrenBytes = 0
  var generation: UInt64 = 0

  init(value: [UInt8] = [], permissions: Permissions) {
    self.value = value
    self.permissions = permissions
  }

  mutating func addChild(_ name: String) {
    children.append(name)
    childrenBytes += name.utf8.count + 1
  }

  mutating func removeChild(_ name: String) {
    guard let i = children.lastIndex(of: name) else { return }
    children.remove(at: i)
    childrenBytes -= name.utf8.count + 1
  }

  /// The size of C xenstored's database record (header, permissions, value, child list):
  /// what the `node-size` quota limits for unprivileged domains.
  var recordSize: Int { 24 + 8 * permissions.entries.count + value.count + childrenBytes }

  /// The DIRECTORY payload: each child name followed by NUL.
  var childList: [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(childrenBytes)
    for name in children { out.append(contentsOf: name.utf8); out.append(0) }
    return out
  }
}

/// Where request handlers read and change nodes: the live store, or a transaction's view of it.
protocol NodeTree: AnyObject {
  func node(_ path: String) -> Node?
  func put(_ path: String, _ node: Node)
  func remove(_ path: String)
  /// How many nodes `domid` owns (the `nodes` quota).
  func ownedCount(_ domid: UInt32) -> Int
}
