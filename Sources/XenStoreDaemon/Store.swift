import XenStore

/// The live tree: every node by canonical path. Pure memory, no I/O; confined to one thread
/// (the daemon's event loop), as C xenstored's database is to its main loop.
final class Store: NodeTree {
  private var nodes = NodeTable()
  private var lastGeneration: UInt64 = 0
  private var owned: [UInt32: Int] = [:]
  /// Told of every change when the daemon keeps a state directory (Persistence/).
  var recorder: ChangeRecorder?

  /// The tree C xenstored starts with: `/`, `/tool`, `/tool/xenstored`, all `n0`.
  init() {
    let perms = Permissions(owner: 0)
    var root = Node(permissions: perms)
    root.addChild("tool")
    var tool = Node(permissions: perms)
    tool.addChild("xenstored")
    put("/", root)
    put("/tool", tool)
    put("/tool/xenstored", Node(permissions: perms))
  }

  var count: Int { nodes.count }

  /// Every node by path: a copy-on-write value, so taking it is O(1) (snapshots encode it on
  /// another thread).
  var contents: NodeTable { nodes }

  func node(_ path: String) -> Node? { nodes[path] }

  /// The generation of the node at `path`, 0 if there is none.
  func generation(_ path: String) -> UInt64 { nodes.generation(path) ?? 0 }

  func put(_ path: String, _ node: Node) {
    var node = node
    lastGeneration += 1
    node.generation = lastGeneration
    let replaced = nodes.updateValue(node, forKey: path)
    recorder?.put(path, node, replacingChildren: replaced.map { $0.childList })
    if let old = replaced {
      if old.owner != node.permissions.owner {
        owned[old.owner, default: 0] -= 1
        owned[node.permissions.owner, default: 0] += 1
      }
    } else {
      owned[node.permissions.owner, default: 0] += 1
    }
  }

  func remove(_ path: String) {
    guard let owner = nodes.removeValue(forKey: path) else { return }
    recorder?.remove(path)
    owned[owner, default: 0] -= 1
  }

  /// Replaces the whole tree with `table` (a restored state), stamping every node anew.
  func replaceAll(with table: NodeTable) {
    let recorder = recorder
    self.recorder = nil
    defer { self.recorder = recorder }
    nodes = NodeTable()
    owned = [:]
    for (path, node) in table { put(path, node) }
  }

  func ownedCount(_ domid: UInt32) -> Int { owned[domid] ?? 0 }

  /// Canonical paths of every node whose owner is `domid` and whose parent is not (the tops of
  /// the subtrees a released domain leaves behind).
  func topmostNodes(ownedBy domid: UInt32) -> [String] {
    guard ownedCount(domid) > 0 else { return [] }
    var found: [String] = []
    var stack = ["/"]
    while let path = stack.popLast() {
      guard let owner = nodes.owner(path), let childList = nodes.childList(path) else { continue }
      if path != "/" && owner == domid { found.append(path); continue }
      for name in Node(value: [], permissions: Permissions(owner: 0), childList: childList, generation: 0).children {
        stack.append(XenStorePath.child(name, of: path))
      }
    }
    return found
  }

  /// Every path in the tree, for consistency checks.
  var paths: [String] { nodes.keys }
}
