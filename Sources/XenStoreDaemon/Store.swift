import XenStore

/// The live tree: every node by canonical path. Pure memory, no I/O; confined to one thread
/// (the daemon's event loop), as C xenstored's database is to its main loop.
final class Store: NodeTree {
  private var nodes: [String: Node] = [:]
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
  var contents: [String: Node] { nodes }

  func node(_ path: String) -> Node? { nodes[path] }

  /// The generation of the node at `path`, 0 if there is none.
  func generation(_ path: String) -> UInt64 { nodes[path]?.generation ?? 0 }

  func put(_ path: String, _ node: Node) {
    var node = node
    lastGeneration += 1
    node.generation = lastGeneration
    let replaced = nodes.updateValue(node, forKey: path)
    recorder?.put(path, node, replacing: replaced)
    if let old = replaced {
      if old.permissions.owner != node.permissions.owner {
        owned[old.permissions.owner, default: 0] -= 1
        owned[node.permissions.owner, default: 0] += 1
      }
    } else {
      owned[node.permissions.owner, default: 0] += 1
    }
  }

  func remove(_ path: String) {
    guard let old = nodes.removeValue(forKey: path) else { return }
    recorder?.remove(path)
    owned[old.permissions.owner, default: 0] -= 1
  }

  func ownedCount(_ domid: UInt32) -> Int { owned[domid] ?? 0 }

  /// Canonical paths of every node whose owner is `domid` and whose parent is not (the tops of
  /// the subtrees a released domain leaves behind).
  func topmostNodes(ownedBy domid: UInt32) -> [String] {
    guard ownedCount(domid) > 0 else { return [] }
    var found: [String] = []
    var stack = ["/"]
    while let path = stack.popLast() {
      guard let node = nodes[path] else { continue }
      if path != "/" && node.permissions.owner == domid { found.append(path); continue }
      for name in node.children { stack.append(XenStorePath.child(name, of: path)) }
    }
    return found
  }

  /// Every path in the tree, for consistency checks.
  var paths: Dictionary<String, Node>.Keys { nodes.keys }
}
