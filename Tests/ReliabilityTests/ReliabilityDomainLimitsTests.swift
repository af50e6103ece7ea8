#if canImport(Glibc)
import Glibc
#endif
import Testing
import InteropSupport
import TestSupport
import XenStore

/// What a domain can cost the daemon through its socket: with every quota at its limit, a
/// bounded amount of memory; and nothing it does makes the daemon's log grow without bound.
/// (Its connections are capped at 32, see XenstoredDomainSocketTests.)
@Suite(.serialized, .ownThread) struct ReliabilityDomainLimitsTests {
  /// Dom0 introduces domain 5 with its home.
  private func introduce5(_ d: DaemonProcess) throws -> StressClient {
    let dom0 = try StressClient(d.socketPath)
    #expect(dom0.call(.introduce, "5", "0", "0") == "OK|")
    #expect(dom0.write("/local/domain/5", "") == "OK|")
    #expect(dom0.call(.setPerms, "/local/domain/5", "n5", "r0") == "OK|")
    return dom0
  }

  /// A domain that takes everything the quotas allow: 32 connections, the largest nodes it may
  /// own, 128 watches with the longest paths and tokens, 10 transactions each holding the
  /// most nodes, and requests it never reads the replies of. The daemon's RSS grows by a
  /// bounded amount (measured: see RELIABILITY.md), and dom0 is served meanwhile.
  @Test func aDomainAtEveryQuotaCostsBoundedMemory() async throws {
    let d = try DaemonProcess()
    defer { d.stop() }
    let dom0 = try introduce5(d)
    let before = d.residentKiB
    let connections = try (0..<32).map { _ in try StressClient(d.domainSocketPath(5)) }
    let main = connections[0]
    let value = String(repeating: "v", count: 1900)
    // 30 to a directory: a node's record counts its child list against the node-size quota.
    func path(_ n: Int) -> String { "d\(n / 30)/n\(n % 30)" }
    var nodes = 0
    while main.write(path(nodes), value) == "OK|" { nodes += 1 }
    #expect(nodes >= 960, "the nodes quota (1000, directories included) stops the loop, not an error")
    #expect(main.write(path(nodes), value) == "ENOSPC")
    let token = String(repeating: "t", count: 2000)
    var watches = 0
    for (i, c) in connections.enumerated() {
      for j in 0..<8 where c.call(.watch, "w\(i)-\(j)/" + String(repeating: "p", count: 1900), token) == "OK|" {
        watches += 1
      }
    }
    #expect(watches == 128, "128 watches per domain, over all its connections")
    var transactions = 0
    for c in connections {
      guard let tx = UInt32(c.call(.transactionStart, "").dropLast()) else { continue }
      transactions += 1
      for n in 0..<nodes { _ = c.read(path(n), tx: tx) }
    }
    #expect(transactions == 10, "10 transactions per domain, over all its connections")
    let read = Message(type: .read, requestID: 1, strings: [path(0)]).encoded()
    for c in connections { c.send(Array([[UInt8]](repeating: read, count: 200).joined())) }
    try? await Task.sleep(for: .microseconds(500_000))
    #expect(dom0.read("/local/domain/5/" + path(1)) == value, "dom0 is served meanwhile")
    let grown = d.residentKiB - before
    print("a domain at every quota: \(nodes) nodes, \(watches) watches, \(transactions) transactions, "
          + "32 connections with unread replies; daemon RSS +\(grown) KiB")
    #expect(grown < 64 << 10, "RSS grew by \(grown) KiB")
  }

  /// Finding 4: each connection a domain opens over its quota, or spoils with an oversized
  /// header, costs a warning or notice line on the daemon's stderr, however fast it repeats.
  @Test
  func aDomainCannotFloodTheLog() async throws {
    let d = try DaemonProcess()
    defer { d.stop() }
    _ = try introduce5(d)
    let held = try (0..<32).map { _ in try StressClient(d.domainSocketPath(5)) }
    for c in held { #expect(c.read("/local/domain/5") == "") }
    let before = d.log.split(separator: "\n").count
    for _ in 0..<200 {
      let refused = try StressClient(d.domainSocketPath(5))
      _ = refused.isClosedByDaemon()
    }
    held[0].send(Message(type: .read, payload: []).encoded().prefix(12) + [0xff, 0xff, 0, 0])
    #expect(held[0].isClosedByDaemon())
    for _ in 0..<200 {
      guard let c = try? StressClient(d.domainSocketPath(5)) else { try? await Task.sleep(for: .microseconds(1000)); continue }
      c.send(Message(type: .read, payload: []).encoded().prefix(12) + [0xff, 0xff, 0, 0])
      _ = c.isClosedByDaemon()
    }
    let lines = d.log.split(separator: "\n").count - before
    #expect(lines <= 20, "\(lines) log lines for 400 refused or spoiled connections")
  }
}
