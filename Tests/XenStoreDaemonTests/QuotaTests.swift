import Testing
import XenStore
import XenStoreDaemon

/// Quotas bind unprivileged domains only, with the errno C xenstored uses.
@Suite struct QuotaTests {
  private func domain(_ quotas: Quotas = .xenDefaults) -> (EngineHarness, ConnectionID, ConnectionID) {
    let h = EngineHarness(quotas: quotas)
    let dom0 = h.connect()
    h.call(dom0, .introduce, "5", "1", "2")
    h.write(dom0, "/local/domain/5", "")
    h.call(dom0, .setPerms, "/local/domain/5", "n5")
    return (h, dom0, h.connect(5))
  }

  @Test func nodesPerDomain() {
    var quotas = Quotas()
    quotas.nodes = 10
    let (h, dom0, dom5) = domain(quotas)
    // The domain owns its home already: 9 more.
    for i in 0..<9 { #expect(h.write(dom5, "n\(i)", "") == "OK|") }
    #expect(h.write(dom5, "one-too-many", "") == "ENOSPC")
    #expect(h.write(dom5, "a/b", "") == "ENOSPC")
    #expect(h.write(dom5, "n0", "rewrite is fine") == "OK|")
    h.call(dom5, .rm, "n0")
    #expect(h.write(dom5, "again", "") == "OK|")
    for i in 0..<20 { #expect(h.write(dom0, "/local/domain/5/by-dom0-\(i)", "") == "OK|") }
  }

  @Test func nodeSize() {
    let (h, dom0, dom5) = domain()
    let limit = 2048 - 24 - 8   // record header and one permission entry
    #expect(h.write(dom5, "big", String(repeating: "x", count: limit - 1)) == "OK|")
    #expect(h.write(dom5, "big", String(repeating: "x", count: limit)) == "ENOSPC")
    #expect(h.write(dom5, "new", String(repeating: "x", count: 3000)) == "ENOSPC")
    #expect(h.write(dom0, "/local/domain/5/big", String(repeating: "x", count: 4000)) == "OK|")
  }

  @Test func permissionsPerNode() {
    let (h, _, dom5) = domain()
    h.write(dom5, "p", "")
    #expect(h.call(dom5, .setPerms, "p", "n5", "r1", "r2", "r3", "r4") == "OK|")
    #expect(h.call(dom5, .setPerms, "p", "n5", "r1", "r2", "r3", "r4", "r6") == "ENOSPC")
  }

  @Test func watchesPerDomain() {
    let (h, dom0, dom5) = domain()
    for i in 0..<128 { #expect(h.call(dom5, .watch, "w\(i)", "t") == "OK|") }
    #expect(h.call(dom5, .watch, "w-last", "t") == "E2BIG")
    h.call(dom5, .unwatch, "w0", "t")
    #expect(h.call(dom5, .watch, "w-last", "t") == "OK|")
    for i in 0..<200 { #expect(h.call(dom0, .watch, "/w\(i)", "t") == "OK|") }
  }

  @Test func transactionsPerDomain() {
    let (h, dom0, dom5) = domain()
    for _ in 0..<10 { #expect(h.call(dom5, .transactionStart, "") != "ENOSPC") }
    #expect(h.call(dom5, .transactionStart, "") == "ENOSPC")
    h.call(dom5, .transactionEnd, "F", tx: 1)
    #expect(h.call(dom5, .transactionStart, "") == "11|")
    for _ in 0..<20 { #expect(h.call(dom0, .transactionStart, "") != "ENOSPC") }
  }

  @Test func nodesTouchedPerTransaction() {
    var quotas = Quotas()
    quotas.transactionNodes = 5
    let (h, _, dom5) = domain(quotas)
    let tx = UInt32(h.call(dom5, .transactionStart, "").dropLast())!
    var results: [String] = []
    for i in 0..<8 { results.append(h.call(dom5, .read, "n\(i)", tx: tx)) }
    #expect(results.contains("ENOSPC"))
    #expect(h.call(dom5, .transactionEnd, "F", tx: tx) == "OK|")
  }
}
