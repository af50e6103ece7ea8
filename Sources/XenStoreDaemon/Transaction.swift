import XenStore

/// A transaction's view of the tree, with Xen 4.17's semantics: each node is taken from the
/// live store the first time the transaction touches it (read or write) and is private to the
/// transaction from then on. Commit fails with EAGAIN if any touched node's generation changed
/// in the live store since that first touch. Confined to the daemon's loop thread.
final class Transaction: NodeTree {
  struct Entry {
    /// The node as the transaction sees it now; nil if absent.
    var node: Node?
    /// Live generation at first touch (0: absent).
    let seenGeneration: UInt64
    /// Live permissions at first touch, for watch checks on nodes the transaction deletes.
    let originalPermissions: Permissions?
  }

  /// A watch event to fire at commit.
  struct PendingEvent {
    var path: String
    var exact: Bool
    var oldPermissions: Permissions?
  }

  let id: UInt32
  private unowned let store: Store
  private(set) var entries: [String: Entry] = [:]
  private var dirty: [String] = []
  private var ownedDelta: [UInt32: Int] = [:]
  private(set) var events: [PendingEvent] = []

  init(id: UInt32, store: Store) {
    self.id = id
    self.store = store
  }

  /// How many nodes the transaction has touched (the `transaction-nodes` quota).
  var touchedCount: Int { entries.count }

  func node(_ path: String) -> Node? { entry(path).node }

  func put(_ path: String, _ node: Node) {
    let old = entry(path).node
    if let old { ownedDelta[old.permissions.owner, default: 0] -= 1 }
    ownedDelta[node.permissions.owner, default: 0] += 1
    markDirty(path)
    entries[path]!.node = node
  }

  func remove(_ path: String) {
    guard let old = entry(path).node else { return }
    ownedDelta[old.permissions.owner, default: 0] -= 1
    markDirty(path)
    entries[path]!.node = nil
  }

  func ownedCount(_ domid: UInt32) -> Int { store.ownedCount(domid) + (ownedDelta[domid] ?? 0) }

  func queueEvent(_ path: String, exact: Bool, oldPermissions: Permissions?) {
    events.append(PendingEvent(path: path, exact: exact, oldPermissions: oldPermissions))
  }

  /// True if another change reached a node this transaction touched.
  var hasConflict: Bool {
    entries.contains { store.generation($0.key) != $0.value.seenGeneration }
  }

  /// Writes the transaction's changes to the live store (call only without conflict), and
  /// returns the events to fire: those of nodes that existed before or exist after.
  func apply() -> [PendingEvent] {
    for path in dirty {
      if let node = entries[path]!.node { store.put(path, node) } else { store.remove(path) }
    }
    return events.filter { event in
      guard let e = entries[event.path] else { return true }
      return e.seenGeneration != 0 || e.node != nil
    }.map { event in
      var event = event
      if event.oldPermissions == nil { event.oldPermissions = entries[event.path]?.originalPermissions }
      return event
    }
  }

  private func entry(_ path: String) -> Entry {
    if let e = entries[path] { return e }
    let live = store.node(path)
    let e = Entry(node: live, seenGeneration: live?.generation ?? 0, originalPermissions: live?.permissions)
    entries[path] = e
    return e
  }

  private var dirtySet: Set<String> = []
  private func markDirty(_ path: String) {
    if dirtySet.insert(path).inserted { dirty.append(path) }
  }
}
