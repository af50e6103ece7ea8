import Testing
import XenStore
import XenStoreDaemon

/// One test per finding of the reliability suites (RELIABILITY.md, "Findings"): the input that
/// found it and the behaviour the daemon must have. A new finding's test is committed with
/// `.disabled("finding N: ...")` until the fix is in; enabling it is part of the fix.
@Suite struct RegressionTests {
  let h = EngineHarness()

  /// Dom0, and domain 5 introduced with its home.
  private func domain5() -> (dom0: ConnectionID, dom5: ConnectionID) {
    let dom0 = h.connect()
    h.call(dom0, .introduce, "5", "1", "2")
    h.write(dom0, "/local/domain/5", "")
    h.call(dom0, .setPerms, "/local/domain/5", "n5", "r0")
    return (dom0, h.connect(5))
  }

  /// Finding 1 (fuzzer seed `many-perms`): a domid the access list parser reads as negative
  /// (`r-1`, as C's strtol does) is stored as 4294967295 and printed so, and GET_PERMS then
  /// answers 4803 bytes, over the 4096 every client rejects. Fixed: E2BIG, as C xenstored's
  /// `send_reply` answers.
  @Test
  func getPermsReplyFitsThePayloadLimit() {
    let dom0 = h.connect()
    h.write(dom0, "/p", "")
    #expect(h.call(dom0, .setPerms, ["/p", "n0"] + Array(repeating: "r-1", count: 400)) == "OK|")
    let reply = h.call(dom0, .getPerms, "/p")
    #expect(reply.utf8.count <= Message.payloadMax, "\(reply.utf8.count) bytes")
    #expect(h.call(dom0, .read, "/p") == "", "the connection carries on")
  }

  /// Finding 2 (fuzzer seed `long-token-watch`): an event is its path plus the watch's token,
  /// and both may be long; C xenstored drops an event that would exceed 4096 bytes (Xen
  /// 2020, "drop watch event messages exceeding maximum size"). Here a domain can make the
  /// daemon send itself one. Fixed: dropped.
  @Test
  func watchEventsOverThePayloadLimitAreDropped() {
    let (_, dom5) = domain5()
    let token = String(repeating: "t", count: 3000)
    #expect(h.call(dom5, .watch, "/local/domain/5", token) == "OK|")
    _ = h.events(dom5)
    #expect(h.write(dom5, "data/" + String(repeating: "p", count: 1900), "v") == "OK|")
    #expect(h.events(dom5).allSatisfy { $0.utf8.count <= Message.payloadMax })
    #expect(h.write(dom5, "short", "v") == "OK|")
    #expect(h.events(dom5) == ["/local/domain/5/short|\(token)|"], "events that fit still come")
  }

  /// Finding 3 (isolation matrix): the watch and transaction quotas are counted per
  /// connection, and a domain may open any number of connections to its socket, so it holds
  /// as many watches and open transactions (each able to copy 1024 nodes) as it likes. C
  /// xenstored counts watches per domain, and a Xen domain has one connection. Fixed: counted
  /// per domain (and at most 32 connections per domain socket).
  @Test
  func watchAndTransactionQuotasHoldPerDomain() {
    let (_, first) = domain5()
    let second = h.connect(5)
    for i in 0..<128 { #expect(h.call(first, .watch, "w\(i)", "t") == "OK|") }
    #expect(h.call(second, .watch, "w-more", "t") == "E2BIG")
    for _ in 0..<10 { #expect(h.call(first, .transactionStart, "") != "ENOSPC") }
    #expect(h.call(second, .transactionStart, "") == "ENOSPC")
  }
}

extension EngineHarness {
  /// `call` with the strings as an array.
  @discardableResult
  func call(_ conn: ConnectionID, _ type: MessageType, _ strings: [String], tx: UInt32 = 0) -> String {
    callRaw(conn, type, Array(strings.map { Array($0.utf8) + [0] }.joined()), tx: tx)
  }
}
