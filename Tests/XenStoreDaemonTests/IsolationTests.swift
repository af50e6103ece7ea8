import Testing
import XenStore
import XenStoreDaemon

/// What an unprivileged domain tries against nodes it does not own, one request at a time:
/// each gets C xenstored's answer (EACCES, or the documented one), and afterwards the whole
/// tree is as it was and no watcher heard of anything.
///
/// The world: domains 5 (the attacker) and 6 introduced, each owning its home; dom0's secret;
/// a node everyone may read; a node of domain 6 that grants 5 read access; a dom0 node in
/// 5's home that 5 may read (as libxl writes `name`, `vm`, ...).
@Suite struct IsolationTests {
  static let hidden = ["/secret/key", "/local/domain/6/private"]
  static let readable = ["/readonly", "/local/domain/6/granted", "/local/domain/5/name"]

  let h = EngineHarness()
  let dom0: ConnectionID
  let dom5: ConnectionID
  let dom6: ConnectionID
  let watcher: ConnectionID

  init() {
    dom0 = h.connect()
    for domid in ["5", "6"] {
      h.call(dom0, .introduce, domid, "1", "2")
      h.write(dom0, "/local/domain/\(domid)", "")
      h.call(dom0, .setPerms, "/local/domain/\(domid)", "n\(domid)", "r0")
    }
    h.write(dom0, "/secret/key", "s")
    h.write(dom0, "/readonly", "ro")
    h.call(dom0, .setPerms, "/readonly", "r0")
    h.write(dom0, "/local/domain/5/name", "guest")
    h.call(dom0, .setPerms, "/local/domain/5/name", "n0", "r5")
    dom6 = h.connect(6)
    h.write(dom6, "private", "p6")
    h.write(dom6, "granted", "g6")
    h.call(dom6, .setPerms, "granted", "n6", "r5")
    dom5 = h.connect(5)
    watcher = h.connect()
    h.call(watcher, .watch, "/", "all")
    _ = h.events(watcher)
    _ = h.notices()
  }

  // MARK: The matrix

  /// One attempt: a request of domain 5 and the reply C xenstored gives.
  struct Attempt: CustomTestStringConvertible, Sendable {
    let type: MessageType
    let strings: [String]
    let expected: String
    var testDescription: String { "\(type) \(strings.joined(separator: " ")) → \(expected)" }
  }

  static let nodeAttempts: [Attempt] = {
    var all: [Attempt] = []
    for path in hidden + readable {
      let isHidden = hidden.contains(path)
      let read = ["/secret/key": "s", "/local/domain/6/private": "p6", "/readonly": "ro",
                  "/local/domain/6/granted": "g6", "/local/domain/5/name": "guest"][path]!
      let perms = ["/readonly": "r0|", "/local/domain/6/granted": "n6|r5|", "/local/domain/5/name": "n0|r5|"][path]
      all += [
        Attempt(type: .read, strings: [path], expected: isHidden ? "EACCES" : read),
        Attempt(type: .directory, strings: [path], expected: isHidden ? "EACCES" : ""),
        Attempt(type: .getPerms, strings: [path], expected: perms ?? "EACCES"),
        Attempt(type: .write, strings: [path, "x"], expected: "EACCES"),
        Attempt(type: .write, strings: [path + "/new", "x"], expected: "EACCES"),
        Attempt(type: .mkdir, strings: [path], expected: "EACCES"),
        Attempt(type: .mkdir, strings: [path + "/new"], expected: "EACCES"),
        Attempt(type: .rm, strings: [path], expected: "EACCES"),
        Attempt(type: .rm, strings: [path + "/missing"], expected: "EACCES"),
        Attempt(type: .setPerms, strings: [path, "b0"], expected: "EACCES"),
        Attempt(type: .setPerms, strings: [path, "n5"], expected: "EACCES"),
      ]
      if isHidden { all.append(Attempt(type: .directoryPart, strings: [path, "0"], expected: "EACCES")) }
    }
    return all
  }()

  static let domainAttempts: [Attempt] = [
    Attempt(type: .introduce, strings: ["7", "1", "2"], expected: "EACCES"),
    Attempt(type: .introduce, strings: ["5", "1", "2"], expected: "EACCES"),
    Attempt(type: .release, strings: ["6"], expected: "EACCES"),
    Attempt(type: .release, strings: ["5"], expected: "EACCES"),
    Attempt(type: .setTarget, strings: ["5", "6"], expected: "EACCES"),
    Attempt(type: .setTarget, strings: ["6", "5"], expected: "EACCES"),
    Attempt(type: .resume, strings: ["6"], expected: "EACCES"),
    Attempt(type: .isDomainIntroduced, strings: ["6"], expected: "EACCES"),
    Attempt(type: .control, strings: ["check"], expected: "EACCES"),
    Attempt(type: .control, strings: ["quota", "6"], expected: "EACCES"),
    Attempt(type: .setPerms, strings: ["@introduceDomain", "n5"], expected: "EACCES"),
    Attempt(type: .setPerms, strings: ["@releaseDomain", "r0", "r5"], expected: "EACCES"),
    // Paths cannot climb out of the domain's home.
    Attempt(type: .read, strings: ["../6/private"], expected: "EINVAL"),
    Attempt(type: .write, strings: ["../6/private", "x"], expected: "EINVAL"),
    Attempt(type: .read, strings: ["/local/domain/6/private/"], expected: "EINVAL"),
    Attempt(type: .rm, strings: ["/local//domain/6"], expected: "EINVAL"),
    // The whole tree and the tops of others' subtrees.
    Attempt(type: .rm, strings: ["/"], expected: "EACCES"),
    Attempt(type: .rm, strings: ["/local/domain/6"], expected: "EACCES"),
    Attempt(type: .directory, strings: ["/"], expected: "EACCES"),
    Attempt(type: .write, strings: ["/newtop", "x"], expected: "EACCES"),
    // Another connection's watch and transaction ids are not this connection's.
    Attempt(type: .unwatch, strings: ["/", "all"], expected: "ENOENT"),
    Attempt(type: .transactionEnd, strings: ["T"], expected: "ENOENT"),
    // Reading another domain's home path is public knowledge in Xen.
    Attempt(type: .getDomainPath, strings: ["6"], expected: "/local/domain/6|"),
    // Removed and unknown requests.
    Attempt(type: .restrict, strings: ["6"], expected: "ENOSYS"),
    Attempt(type: MessageType(rawValue: 99), strings: ["x"], expected: "ENOSYS"),
  ]

  @Test(arguments: nodeAttempts + domainAttempts)
  func deniedAndNothingChanges(_ attempt: Attempt) {
    let before = tree()
    let reply = attempt.type == .write
      ? h.write(dom5, attempt.strings[0], attempt.strings[1])
      : h.callRaw(dom5, attempt.type, payload(attempt.strings))
    #expect(reply == attempt.expected)
    #expect(tree() == before)
    #expect(h.events(watcher).isEmpty, "nobody hears of a refused request")
    #expect(h.notices().isEmpty)
    #expect(h.call(dom0, .control, "check") == "OK|")
  }

  // MARK: Transactions

  @Test func insideATransactionTheSameRequestsAreRefusedAndCommitChangesNothing() {
    let before = tree()
    let tx = UInt32(h.call(dom5, .transactionStart, "").dropLast())!
    for path in Self.hidden + Self.readable {
      #expect(h.write(dom5, path, "x", tx: tx) == "EACCES")
      #expect(h.write(dom5, path + "/new", "x", tx: tx) == "EACCES")
      #expect(h.call(dom5, .rm, path, tx: tx) == "EACCES")
      #expect(h.call(dom5, .setPerms, path, "n5", tx: tx) == "EACCES")
    }
    #expect(h.call(dom5, .read, "/secret/key", tx: tx) == "EACCES")
    #expect(h.call(dom5, .transactionEnd, "T", tx: tx) == "OK|")
    #expect(tree() == before)
    #expect(h.events(watcher).isEmpty)
  }

  @Test func anotherConnectionsTransactionIsNotReachable() {
    let tx = UInt32(h.call(dom0, .transactionStart, "").dropLast())!
    #expect(h.write(dom0, "/secret/key", "in-tx", tx: tx) == "OK|")
    #expect(h.call(dom5, .read, "/secret/key", tx: tx) == "ENOENT")
    #expect(h.write(dom5, "mine", "x", tx: tx) == "ENOENT")
    #expect(h.call(dom5, .transactionEnd, "F", tx: tx) == "ENOENT")
    #expect(h.call(dom0, .transactionEnd, "T", tx: tx) == "OK|", "dom0's transaction is intact")
    #expect(h.call(dom0, .read, "/secret/key") == "in-tx")
  }

  // MARK: Watches

  @Test func watchesOnForbiddenNodesAreAcceptedButStaySilent() {
    for path in Self.hidden { #expect(h.call(dom5, .watch, path, "w") == "OK|") }
    #expect(h.call(dom5, .watch, "/local/domain/6/granted", "g") == "OK|")
    _ = h.events(dom5)
    h.write(dom0, "/secret/key", "changed")
    h.write(dom6, "private", "changed")
    h.call(dom6, .rm, "private")
    #expect(h.events(dom5).isEmpty)
    h.write(dom6, "granted", "changed")
    #expect(h.events(dom5) == ["/local/domain/6/granted|g|"], "a node it may read is another matter")
  }

  @Test func introduceAndReleaseWatchesNeedAGrant() {
    #expect(h.call(dom5, .watch, "@introduceDomain", "i") == "OK|")
    #expect(h.call(dom5, .watch, "@releaseDomain", "r") == "OK|")
    _ = h.events(dom5)
    h.call(dom0, .introduce, "7", "1", "2")
    h.call(dom0, .release, "7")
    #expect(h.events(dom5).isEmpty)
    h.call(dom0, .setPerms, "@releaseDomain", "n0", "r5")
    h.call(dom0, .introduce, "8", "1", "2")
    h.call(dom0, .release, "8")
    #expect(h.events(dom5) == ["@releaseDomain|r|"], "granted read on @releaseDomain only")
  }

  @Test func unwatchingAndResettingTouchOnlyTheConnectionsOwnWatches() {
    h.call(dom6, .watch, "private", "mine")
    _ = h.events(dom6)
    #expect(h.call(dom5, .unwatch, "/local/domain/6/private", "mine") == "ENOENT")
    #expect(h.call(dom5, .resetWatches, "") == "OK|")
    h.write(dom6, "private", "again")
    #expect(h.events(dom6) == ["private|mine|"])
  }

  // MARK: Targets

  @Test func aTargetDomainActsForItsTargetOnlyNotForDom0() {
    h.call(dom0, .setTarget, "5", "6")
    #expect(h.call(dom5, .read, "/local/domain/6/private") == "p6")
    #expect(h.call(dom5, .read, "/secret/key") == "EACCES")
    #expect(h.call(dom5, .introduce, "7", "1", "2") == "EACCES")
    h.call(dom0, .release, "6")
    #expect(h.call(dom5, .read, "/local/domain/6") == "EACCES", "release ends the target relation")
  }

  // MARK: Helpers

  private func payload(_ strings: [String]) -> [UInt8] {
    Array(strings.map { Array($0.utf8) + [0] }.joined())
  }

  /// Every node as dom0 sees it: path → value, permissions and children.
  private func tree() -> [String: String] {
    var found: [String: String] = [:]
    var stack = ["/"]
    while let path = stack.popLast() {
      let children = h.call(dom0, .directory, path)
      found[path] = h.call(dom0, .read, path) + " " + h.call(dom0, .getPerms, path) + " " + children
      for name in children.split(separator: "|") { stack.append(XenStorePath.child(String(name), of: path)) }
    }
    return found
  }
}
