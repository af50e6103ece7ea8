import Logging
import XenStore

/// The part of the daemon's state that survives a restart: the tree with its access lists,
/// the introduced domains with their targets, and the access lists of `@introduceDomain` and
/// `@releaseDomain`. Watches, connections and open transactions are not part of it.
///
/// A value: a snapshot takes one from the engine in O(1) (the node dictionary is shared
/// copy-on-write) and encodes it on another thread.
struct DurableState: Sendable {
  var nodes: NodeTable
  var domains: [DomainEntry]
  var specialPermissions: [String: Permissions]
  /// The sequence number of the last change record this state includes.
  var sequence: UInt64 = 0
  /// While a log is replayed: the child names of the nodes that took an appended child, as
  /// sets, so that checking an append for a duplicate is O(1), not a scan of the list (a log
  /// that gave one node 100,000 children replayed in minutes). Not part of the state;
  /// `endReplay` drops it.
  var appendedNames: [String: Set<String>] = [:]

  /// The special paths with access lists: `@introduceDomain`, `@releaseDomain`.
  static let specialNames = Set(initial.specialPermissions.keys)

  /// The state a fresh daemon starts with: a new engine's (C xenstored's initial tree, dom0).
  static var initial: DurableState {
    var logger = Logger(label: "xenstored")
    logger.logLevel = .critical
    return XenStoreEngine(logger: logger).durableState
  }

  /// A replayed record does not fit the state it is applied to.
  struct Inconsistency: Error, CustomStringConvertible {
    let description: String
  }

  /// Applies one logged change, checking that it fits (a put's child-list change, a removal's
  /// node).
  mutating func apply(_ change: StateChange) throws(Inconsistency) {
    switch change {
    case .put(let path, let value, let permissions, let childrenChange):
      var children: [UInt8]
      switch childrenChange {
      case .same:
        children = nodes.childList(path) ?? []
      case .append(let name):
        // Checked against a set and appended in place: O(name) for a node of any size.
        if appendedNames[path] == nil, let list = nodes.childList(path) { appendedNames[path] = Set(Node.names(in: list)) }
        guard appendedNames[path]?.insert(name).inserted == true, nodes.appendChild(name, to: path) else {
          throw Inconsistency(description: "cannot add child \(name) to \(path)")
        }
        children = nodes.childList(path)!
      case .remove(let name):
        var node = Node(permissions: permissions, childList: nodes.childList(path) ?? [])
        guard node.hasChild(name) else { throw Inconsistency(description: "\(path) has no child \(name) to remove") }
        node.removeChild(name)
        appendedNames[path]?.remove(name)
        children = node.childList
      case .all(let names):
        var node = Node(permissions: permissions)
        for name in names { node.addChild(name) }
        appendedNames[path] = nil
        children = node.childList
      }
      nodes[path] = Node(value: value, permissions: permissions, childList: children, generation: 0)
    case .remove(let path):
      guard nodes.removeValue(forKey: path) != nil else { throw Inconsistency(description: "no node \(path) to remove") }
      appendedNames[path] = nil
    case .domains(let entries):
      domains = entries
    case .specialPermissions(let name, let permissions):
      guard specialPermissions[name] != nil else { throw Inconsistency(description: "unknown special path \(name)") }
      specialPermissions[name] = permissions
    }
  }

  /// A replay is over: its scratch index goes.
  mutating func endReplay() { appendedNames = [:] }

  /// What keeps the state from being one the engine could have made: no root, an invalid
  /// path or child name, a child listed twice or without a node, a node its parent does not
  /// list, dom0 missing, a domain listed twice. O(nodes + children). Empty when whole.
  var problems: [String] {
    var problems: [String] = []
    if !nodes.contains("/") { problems.append("no root node") }
    var listed: Set<String> = []
    listed.reserveCapacity(nodes.count)
    // Paths and child lists only: 100,000 nodes are checked at every start.
    nodes.forEachChildList { path, childList in
      if !XenStorePath.isValidNode(path) { problems.append("invalid path \(path)") }
      for name in Node.names(in: childList) {
        if name.isEmpty || name.contains("/") { problems.append("\(path) lists an invalid child name \(name)") }
        let child = XenStorePath.child(name, of: path)
        if !listed.insert(child).inserted { problems.append("\(path) lists child \(name) twice") }
        if !nodes.contains(child) { problems.append("\(path) lists missing child \(name)") }
      }
    }
    for path in nodes.keys where path != "/" && !listed.contains(path) {
      problems.append("\(path) is not listed by its parent")
    }
    var domids: Set<UInt32> = []
    for domain in domains where !domids.insert(domain.domid).inserted {
      problems.append("domain \(domain.domid) listed twice")
    }
    if !domids.contains(0) { problems.append("no domain 0") }
    return problems.sorted()
  }

  /// The tree's problems only (`problems` without the domain table's).
  var treeProblems: [String] {
    problems.filter { !$0.hasPrefix("domain ") && $0 != "no domain 0" }
  }

  /// Makes the tree whole after a salvage: a root if there is none, child lists of valid,
  /// distinct names with a node each, no nodes outside the tree. Returns the paths of the
  /// nodes it dropped.
  mutating func repairTree() -> [String] {
    if nodes["/"] == nil { nodes["/"] = Node(permissions: Permissions(owner: 0)) }
    for (path, node) in nodes {
      var seen: Set<String> = []
      let kept = node.children.filter { name in
        !name.isEmpty && !name.contains("/") && seen.insert(name).inserted && nodes[XenStorePath.child(name, of: path)] != nil
      }
      if kept != node.children {
        var fixed = Node(value: node.value, permissions: node.permissions)
        kept.forEach { fixed.addChild($0) }
        nodes[path] = fixed
      }
    }
    var reachable: Set<String> = []
    var stack = ["/"]
    while let path = stack.popLast() {
      guard reachable.insert(path).inserted, let node = nodes[path] else { continue }
      for name in node.children { stack.append(XenStorePath.child(name, of: path)) }
    }
    let dropped = nodes.keys.filter { !reachable.contains($0) }.sorted()
    for path in dropped { nodes[path] = nil }
    return dropped
  }
}

extension DomainEntry {
  init(domid: UInt32) { self.init(domid: domid, target: nil) }
}

extension DurableState {
  /// Applies a whole log record, or none of it: on an inconsistency every change already
  /// applied is undone, and the sequence must follow the state's.
  mutating func apply(_ record: ChangeRecord) throws(Inconsistency) {
    guard record.sequence == sequence + 1 else {
      throw Inconsistency(description: "record \(record.sequence) where \(sequence + 1) was due")
    }
    let before = (domains, specialPermissions)
    // What undoes each change: the node as it was, or — for an appended child, so that the
    // list is not held here and is appended to in place — the node without its list.
    var touched: [(path: String, node: Node?, appended: String?)] = []
    do throws(Inconsistency) {
      for change in record.changes {
        switch change {
        case .put(let path, _, _, .append(let name)):
          // Recorded once made: an append that fails changes nothing.
          let before = nodes[path].map { Node(value: $0.value, permissions: $0.permissions) }
          try apply(change)
          touched.append((path, before, name))
          continue
        case .put(let path, _, _, _), .remove(let path):
          touched.append((path, nodes[path], nil))
        default: break
        }
        try apply(change)
      }
    } catch {
      for (path, node, appended) in touched.reversed() {
        guard let appended, var node, let list = nodes.childList(path) else {
          nodes[path] = node
          appendedNames[path] = nil
          continue
        }
        var current = Node(permissions: node.permissions, childList: list)
        current.removeChild(appended)
        node = Node(value: node.value, permissions: node.permissions, childList: current.childList, generation: 0)
        nodes[path] = node
        appendedNames[path]?.remove(appended)
      }
      (domains, specialPermissions) = before
      throw error
    }
    sequence = record.sequence
  }
}

extension DurableState {
  /// Applies a record as well as it fits, for `--recover` after a damaged snapshot (the
  /// records then meet a tree with parts missing): a child-list change that does not fit
  /// is made to fit, a removal of a missing node is nothing. The tree is repaired after.
  mutating func applyLeniently(_ record: ChangeRecord) {
    for change in record.changes {
      do {
        try apply(change)
      } catch {
        guard case .put(let path, let value, let permissions, let children) = change else { continue }
        var names = nodes[path]?.children ?? []
        switch children {
        case .append(let name): if !names.contains(name) { names.append(name) }
        case .remove(let name): names.removeAll { $0 == name }
        case .same, .all: break
        }
        var node = Node(value: value, permissions: permissions)
        names.forEach { node.addChild($0) }
        nodes[path] = node
      }
    }
    sequence = record.sequence
  }
}
