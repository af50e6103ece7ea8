import XenStore

/// WATCH, UNWATCH, RESET_WATCHES, and firing events.
extension XenStoreEngine {
  /// `<path>\0<token>\0`, optionally `<depth>\0` (newer Xen): OK, then at once a first event.
  func watch(_ args: RequestArguments, _ ctx: Context) throws(WireError) -> [UInt8] {
    let strings = args.strings
    var depth: Int?
    if strings.count == 3, let d = Int(strings[2]), d >= 0 {
      depth = d
    } else if strings.count != 2 {
      throw WireError(.EINVAL)
    }
    let conn = ctx.conn
    let relative = XenStorePath.isRelative(strings[0])
    let path = canonical(strings[0], ctx)
    guard XenStorePath.isValidWatch(path) else { throw WireError(.EINVAL) }
    if conn.watchKeys.contains(where: { $0.path == path && $0.token == strings[1] }) { throw WireError(.EEXIST) }
    if !conn.isPrivileged && connections(of: conn.domid).reduce(0, { $0 + $1.watchKeys.count }) >= quotas.watches {
      throw WireError(.E2BIG)
    }
    let prefix = relative ? XenStorePath.domainPath(conn.domid).utf8.count + 1 : 0
    let watch = Watch(connection: conn.id, path: path, token: strings[1], prefixLength: prefix, depth: depth)
    _ = watches.add(watch)
    conn.watchKeys.append((path, strings[1]))
    send(event: watch.event(for: path), to: conn.id, afterReply: true)
    return Self.ok
  }

  func unwatch(_ args: RequestArguments, _ ctx: Context) throws(WireError) -> [UInt8] {
    let strings = args.strings
    guard strings.count == 2 else { throw WireError(.EINVAL) }
    let path = canonical(strings[0], ctx)
    guard let i = ctx.conn.watchKeys.firstIndex(where: { $0.path == path && $0.token == strings[1] }) else {
      throw WireError(.ENOENT)
    }
    ctx.conn.watchKeys.remove(at: i)
    _ = watches.remove(ctx.conn.id, path: path, token: strings[1])
    return Self.ok
  }

  /// Drops every watch and open transaction of the connection.
  func resetWatches(_ ctx: Context) -> [UInt8] {
    watches.removeAll(ctx.conn.id, paths: ctx.conn.watchKeys.map(\.path))
    ctx.conn.watchKeys.removeAll()
    ctx.conn.transactions.removeAll()
    return Self.ok
  }

  /// Reports a change at `path`: queued in the request's transaction until commit, else sent
  /// now to every watch it triggers whose connection may see it.
  func fire(_ path: String, exact: Bool, permissions: Permissions?, oldPermissions: Permissions? = nil,
            _ ctx: Context) {
    if let transaction = ctx.transaction {
      transaction.queueEvent(path, exact: exact, oldPermissions: oldPermissions ?? permissions)
      return
    }
    fireLive(path, exact: exact, permissions: permissions, oldPermissions: oldPermissions)
  }

  /// Sends the events of a change to the live tree.
  func fireLive(_ path: String, exact: Bool, permissions: Permissions?, oldPermissions: Permissions? = nil) {
    for watch in watches.matching(path, exact: exact) {
      guard let conn = connections[watch.connection],
            mayObserve(conn, path, permissions: permissions, oldPermissions: oldPermissions) else { continue }
      send(event: watch.event(for: path), to: conn.id)
    }
  }

  /// Sends `@introduceDomain` or `@releaseDomain` for `domid` to the watches on it that may see
  /// it. Newer Xen's refinements are kept: a watch with depth 1 is told the domain
  /// (`@releaseDomain/<domid>`), and a watch on `@releaseDomain/<domid>` hears only that domain.
  func fireSpecial(_ name: String, domid: UInt32, afterReply later: Bool = false) {
    let specific = "\(name)/\(domid)"
    let targets = watches.matching(name, exact: true).map { ($0, $0.depth == 1 ? specific : name) }
      + watches.matching(specific, exact: true).map { ($0, specific) }
    for (watch, eventPath) in targets {
      guard let conn = connections[watch.connection],
            mayObserve(conn, name, permissions: nil, oldPermissions: nil) else { continue }
      send(event: watch.event(for: eventPath), to: conn.id, afterReply: later)
    }
  }

  /// Whether `conn` gets an event for `path` (C's `watch_permitted`, `check_perms_special`):
  /// special events need read access to the special name; others need read access to the
  /// node (before or after the change) or to its parent.
  private func mayObserve(_ conn: Connection, _ path: String, permissions: Permissions?,
                          oldPermissions: Permissions?) -> Bool {
    if conn.isPrivileged { return true }
    if XenStorePath.isSpecial(path) {
      guard let special = specialPermissions[path] else { return false }
      return access(conn, special).contains(.read)
    }
    if let old = oldPermissions, access(conn, old).contains(.read) { return true }
    guard let permissions else { return false }
    if access(conn, permissions).contains(.read) { return true }
    guard let parent = store.node(XenStorePath.parent(of: path)) else { return false }
    return access(conn, parent.permissions).contains(.read)
  }
}
