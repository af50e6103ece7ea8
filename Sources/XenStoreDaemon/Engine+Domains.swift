import XenStore

/// INTRODUCE, RELEASE, RESUME, SET_TARGET, IS_DOMAIN_INTRODUCED, GET_DOMAIN_PATH, CONTROL.
extension XenStoreEngine {
  func domainPath(_ args: RequestArguments) throws(WireError) -> [UInt8] {
    guard let text = args.single else { throw WireError(.EINVAL) }
    return Array(nulTerminated: XenStorePath.domainPath(RequestArguments.domid(text)))
  }

  func isDomainIntroduced(_ args: RequestArguments) throws(WireError) -> [UInt8] {
    guard let text = args.single else { throw WireError(.EINVAL) }
    return Array(nulTerminated: isIntroduced(RequestArguments.domid(text)) ? "T" : "F")
  }

  /// `<domid>\0<gfn>\0<evtchn>\0`. Without a hypervisor the ring and event channel are not
  /// used: the domain is reached through the socket the server opens on `.introduced`.
  func introduce(_ args: RequestArguments) throws(WireError) -> [UInt8] {
    let strings = args.strings
    guard strings.count >= 3 else { throw WireError(.EINVAL) }
    let domid = RequestArguments.domid(strings[0])
    guard domains[domid] == nil else { return Self.ok }
    domains[domid] = Domain()
    logger.info("domain introduced", metadata: ["domid": "\(domid)"])
    output(.introduced(domid: domid))
    fireSpecial("@introduceDomain", domid: domid)
    return Self.ok
  }

  /// Forgets the domain: closes its connections and deletes the nodes it owns (as C
  /// xenstored does without `--keep-orphans`), then fires `@releaseDomain` after the reply.
  func release(_ args: RequestArguments) throws(WireError) -> [UInt8] {
    let domid = try existingDomain(args)
    for conn in connections.values where conn.domid == domid {
      disconnect(conn.id)
      output(.close(conn.id))
    }
    domains[domid] = nil
    for (other, domain) in domains where domain.target == domid { domains[other]?.target = nil }
    let ctx = Context(conn: Connection(id: ConnectionID(rawValue: 0), domid: 0), transaction: nil, store: store)
    for path in store.topmostNodes(ownedBy: domid) {
      guard let node = store.node(path) else { continue }
      removeSubtree(path, node, exact: false, ctx)
      let parentPath = XenStorePath.parent(of: path)
      if var parent = store.node(parentPath) {
        parent.removeChild(XenStorePath.basename(of: path))
        store.put(parentPath, parent)
      }
    }
    logger.info("domain released", metadata: ["domid": "\(domid)"])
    output(.released(domid: domid))
    fireSpecial("@releaseDomain", domid: domid, afterReply: true)
    return Self.ok
  }

  func resume(_ args: RequestArguments) throws(WireError) -> [UInt8] {
    _ = try existingDomain(args)
    return Self.ok
  }

  /// `<domid>\0<target>\0`: the domain may then act on the target's nodes as the target.
  func setTarget(_ args: RequestArguments) throws(WireError) -> [UInt8] {
    let strings = args.strings
    guard strings.count >= 2 else { throw WireError(.EINVAL) }
    let domid = RequestArguments.domid(strings[0])
    let target = RequestArguments.domid(strings[1])
    guard domains[domid] != nil, domains[target] != nil else { throw WireError(.ENOENT) }
    domains[domid]?.target = target
    return Self.ok
  }

  /// The one domid argument of RELEASE and RESUME: not dom0, and introduced.
  private func existingDomain(_ args: RequestArguments) throws(WireError) -> UInt32 {
    guard let text = args.single else { throw WireError(.EINVAL) }
    let domid = RequestArguments.domid(text)
    guard domid != 0 else { throw WireError(.EINVAL) }
    guard domains[domid] != nil else { throw WireError(.ENOENT) }
    return domid
  }

  /// `xenstore-control` commands: check, log, print, quota, help.
  func control(_ args: RequestArguments) throws(WireError) -> [UInt8] {
    let strings = args.strings
    guard let command = strings.first else { throw WireError(.EINVAL) }
    switch command {
    case "check":
      let problems = consistencyProblems()
      return problems.isEmpty ? Self.ok : Array(nulTerminated: problems.joined(separator: "\n"))
    case "log":
      return Self.ok
    case "print":
      logger.notice("\(strings.dropFirst().joined(separator: " "))")
      return Self.ok
    case "quota":
      if strings.count == 1 { return Array(nulTerminated: quotas.report) }
      let domid = RequestArguments.domid(strings[1])
      guard domains[domid] != nil else { throw WireError(.ENOENT) }
      let conns = connections.values.filter { $0.domid == domid }
      return Array(nulTerminated: """
        Domain \(domid):
        nodes            : \(store.ownedCount(domid))
        watches          : \(conns.reduce(0) { $0 + $1.watchKeys.count })
        transactions     : \(conns.reduce(0) { $0 + $1.transactions.count })

        """)
    case "help":
      return Array(nulTerminated: "check\t\nlog\ton|off\nprint\t<string>\nquota\t[<domid>]\nhelp\t\n")
    default:
      throw WireError(.EINVAL)
    }
  }

  /// Tree invariants (every child listed exists, every node is listed by its parent, owner
  /// counts add up); empty when all hold.
  func consistencyProblems() -> [String] {
    var problems: [String] = []
    for path in store.paths {
      guard let node = store.node(path) else { continue }
      for name in node.children where store.node(XenStorePath.child(name, of: path)) == nil {
        problems.append("\(path) lists missing child \(name)")
      }
      if path != "/" {
        let parent = store.node(XenStorePath.parent(of: path))
        if parent?.children.contains(XenStorePath.basename(of: path)) != true {
          problems.append("\(path) is not listed by its parent")
        }
      }
    }
    return problems
  }
}
