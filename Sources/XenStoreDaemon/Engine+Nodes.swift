import XenStore

/// READ, DIRECTORY, DIRECTORY_PART, GET_PERMS, WRITE, MKDIR, RM, SET_PERMS.
extension XenStoreEngine {
  func read(_ args: RequestArguments, _ ctx: Context) throws(WireError) -> [UInt8] {
    guard let path = args.single else { throw WireError(.ENOENT) }
    return try node(canonical(path, ctx), need: .read, ctx).value
  }

  func directory(_ args: RequestArguments, _ ctx: Context) throws(WireError) -> [UInt8] {
    guard let path = args.single else { throw WireError(.ENOENT) }
    let list = try node(canonical(path, ctx), need: .read, ctx).childList
    guard list.count <= Message.payloadMax else { throw WireError(.E2BIG) }
    return list
  }

  /// `<generation>\0` then as many whole child names as fit from byte `offset` of the child
  /// list, and a final extra NUL once the list is complete (C's `send_directory_part`).
  func directoryPart(_ args: RequestArguments, _ ctx: Context) throws(WireError) -> [UInt8] {
    guard args.nulCount == 2 else { throw WireError(.EINVAL) }
    let strings = args.strings
    let node = try node(canonical(strings[0], ctx), need: .read, ctx)
    let offset = Int(RequestArguments.domid(strings[1]))
    var reply = Array(nulTerminated: String(node.generation))
    let list = node.childList
    guard offset < list.count else { reply.append(0); return reply }
    let room = Message.payloadMax - reply.count - 1
    var end = offset
    var i = offset
    while i < list.count {
      guard let nul = list[i...].firstIndex(of: 0), nul + 1 - offset <= room else { break }
      end = nul + 1
      i = end
    }
    reply.append(contentsOf: list[offset..<end])
    if end == list.count { reply.append(0) }
    return reply
  }

  func getPermissions(_ args: RequestArguments, _ ctx: Context) throws(WireError) -> [UInt8] {
    guard let path = args.single else { throw WireError(.ENOENT) }
    return try node(canonical(path, ctx), need: .read, ctx).permissions.wire
  }

  func write(_ args: RequestArguments, _ ctx: Context) throws(WireError) -> [UInt8] {
    guard let nul = args.payload.firstIndex(of: 0) else { throw WireError(.EINVAL) }
    let path = canonical(String(decoding: args.payload[..<nul], as: UTF8.self), ctx)
    let value = Array(args.payload[(nul + 1)...])
    let written: Node
    do {
      var existing = try node(path, need: .write, ctx)
      existing.value = value
      try checkSize(existing, ctx)
      ctx.tree.put(path, existing)
      written = existing
    } catch where error.code == .ENOENT {
      written = try create(path, value: value, ctx)
    }
    fire(path, exact: false, permissions: written.permissions, ctx)
    return Self.ok
  }

  func mkdir(_ args: RequestArguments, _ ctx: Context) throws(WireError) -> [UInt8] {
    // C xenstored answers a payload that is not one string with ENOMEM: kept for fidelity.
    guard let text = args.single else { throw WireError(.ENOMEM) }
    let path = canonical(text, ctx)
    do {
      _ = try node(path, need: .write, ctx)
    } catch where error.code == .ENOENT {
      let created = try create(path, value: [], ctx)
      fire(path, exact: false, permissions: created.permissions, ctx)
    }
    return Self.ok
  }

  func rm(_ args: RequestArguments, _ ctx: Context) throws(WireError) -> [UInt8] {
    guard let text = args.single else { throw WireError(.ENOMEM) }
    let path = canonical(text, ctx)
    let target: Node
    do {
      target = try node(path, need: .write, ctx)
    } catch where error.code == .ENOENT {
      // Removing what is not there is fine, if its parent is.
      guard ctx.tree.node(XenStorePath.parent(of: path)) != nil else { throw WireError(.ENOENT) }
      return Self.ok
    }
    guard path != "/" else { throw WireError(.EINVAL) }
    removeSubtree(path, target, exact: false, ctx)
    let parentPath = XenStorePath.parent(of: path)
    if var parent = ctx.tree.node(parentPath) {
      parent.removeChild(XenStorePath.basename(of: path))
      ctx.tree.put(parentPath, parent)
    }
    return Self.ok
  }

  /// Deletes `path` and everything below it, children first, firing each node's watches as C
  /// xenstored does: descendants exactly, the removed node for its ancestors' watches too.
  func removeSubtree(_ path: String, _ node: Node, exact: Bool, _ ctx: Context) {
    for name in node.children {
      let childPath = XenStorePath.child(name, of: path)
      if let child = ctx.tree.node(childPath) { removeSubtree(childPath, child, exact: true, ctx) }
    }
    fire(path, exact: exact, permissions: node.permissions, ctx)
    ctx.tree.remove(path)
  }

  func setPermissions(_ args: RequestArguments, _ ctx: Context) throws(WireError) -> [UInt8] {
    guard args.nulCount >= 2 else { throw WireError(.EINVAL) }
    let strings = args.strings
    let conn = ctx.conn
    if !conn.isPrivileged && strings.count - 1 > quotas.permissions { throw WireError(.ENOSPC) }
    guard let permissions = Permissions(strings: strings.dropFirst().map(\.utf8)) else {
      throw WireError(.EINVAL)
    }
    if XenStorePath.isSpecial(strings[0]) {
      guard let current = specialPermissions[strings[0]] else { throw WireError(.EINVAL) }
      guard isOwner(conn, current) && access(conn, current).contains(.write) else { throw WireError(.EACCES) }
      specialPermissions[strings[0]] = permissions
      return Self.ok
    }
    let path = canonical(strings[0], ctx)
    var node = try node(path, need: .write, owner: true, ctx)
    // Only dom0 gives a node away; the new owner must exist.
    if !conn.isPrivileged && permissions.owner != node.permissions.owner { throw WireError(.EPERM) }
    guard domains[permissions.owner] != nil else { throw WireError(.ENOENT) }
    let old = node.permissions
    node.permissions = permissions
    try checkSize(node, ctx)
    ctx.tree.put(path, node)
    fire(path, exact: false, permissions: permissions, oldPermissions: old, ctx)
    return Self.ok
  }

  // MARK: Helpers

  func canonical(_ path: String, _ ctx: Context) -> String {
    XenStorePath.canonicalize(path, domain: ctx.conn.domid)
  }

  /// The node at `path` if `ctx`'s connection may `need` it (C's `get_node`). A missing or
  /// forbidden node's errno is EACCES unless the nearest existing ancestor grants `need`, so
  /// that a domain learns nothing of nodes it may not see.
  func node(_ path: String, need: Access, owner: Bool = false, _ ctx: Context) throws(WireError) -> Node {
    guard XenStorePath.isValidNode(path) else { throw WireError(.EINVAL) }
    let code: XenStoreError.Code
    if let node = ctx.tree.node(path) {
      if access(ctx.conn, node.permissions).isSuperset(of: need) && (!owner || isOwner(ctx.conn, node.permissions)) {
        return node
      }
      code = .EACCES
    } else {
      code = .ENOENT
    }
    if ctx.conn.isPrivileged { throw WireError(code) }
    var ancestor = path
    while ancestor != "/" {
      ancestor = XenStorePath.parent(of: ancestor)
      if let parent = ctx.tree.node(ancestor) {
        let granted = !access(ctx.conn, parent.permissions).isDisjoint(with: need)
          || (owner && isOwner(ctx.conn, parent.permissions))
        throw WireError(granted ? code : .EACCES)
      }
    }
    throw WireError(.EACCES)
  }

  /// Creates the node at `path` (which does not exist) and any missing ancestors, with empty
  /// values and the permissions of the nearest existing ancestor; an unprivileged creator
  /// owns what it creates. All checks come before the first change.
  func create(_ path: String, value: [UInt8], _ ctx: Context) throws(WireError) -> Node {
    let conn = ctx.conn
    var missing = [path]
    var ancestorPath = XenStorePath.parent(of: path)
    var ancestor = ctx.tree.node(ancestorPath)
    while ancestor == nil {
      missing.append(ancestorPath)
      ancestorPath = XenStorePath.parent(of: ancestorPath)
      ancestor = ctx.tree.node(ancestorPath)
    }
    guard var parent = ancestor else { throw WireError(.ENOENT) }
    guard access(conn, parent.permissions).contains(.write) else { throw WireError(.EACCES) }
    var permissions = parent.permissions
    if !conn.isPrivileged {
      permissions.owner = conn.domid
      if ctx.tree.ownedCount(conn.domid) + missing.count > quotas.nodes { throw WireError(.ENOSPC) }
    }
    parent.addChild(XenStorePath.basename(of: missing.last!))
    try checkSize(parent, ctx)
    let leaf = Node(value: value, permissions: permissions)
    try checkSize(leaf, ctx)

    ctx.tree.put(ancestorPath, parent)
    let chain = Array(missing.reversed())
    for (i, nodePath) in chain.enumerated() {
      var node = nodePath == path ? leaf : Node(permissions: permissions)
      if i + 1 < chain.count { node.addChild(XenStorePath.basename(of: chain[i + 1])) }
      ctx.tree.put(nodePath, node)
    }
    return leaf
  }

  /// The `node-size` quota, for unprivileged domains.
  func checkSize(_ node: Node, _ ctx: Context) throws(WireError) {
    if !ctx.conn.isPrivileged && node.recordSize >= quotas.nodeSize { throw WireError(.ENOSPC) }
  }
}
