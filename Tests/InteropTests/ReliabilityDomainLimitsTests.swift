#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
import XenStore

/// What a domain can cost the daemon through its socket beyond the quotas (its connections
/// are capped at 32, see XenstoredDomainSocketTests): nothing it does makes the daemon's log
/// grow without bound.
@Suite(.serialized) struct ReliabilityDomainLimitsTests {
  /// Dom0 introduces domain 5 with its home.
  private func introduce5(_ d: DaemonProcess) throws -> StressClient {
    let dom0 = try StressClient(d.socketPath)
    #expect(dom0.call(.introduce, "5", "0", "0") == "OK|")
    #expect(dom0.write("/local/domain/5", "") == "OK|")
    #expect(dom0.call(.setPerms, "/local/domain/5", "n5", "r0") == "OK|")
    return dom0
  }

  /// Finding 4: each connection a domain opens over its quota, or spoils with an oversized
  /// header, costs a warning or notice line on the daemon's stderr, however fast it repeats.
  @Test
  func aDomainCannotFloodTheLog() throws {
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
      guard let c = try? StressClient(d.domainSocketPath(5)) else { usleep(1000); continue }
      c.send(Message(type: .read, payload: []).encoded().prefix(12) + [0xff, 0xff, 0, 0])
      _ = c.isClosedByDaemon()
    }
    let lines = d.log.split(separator: "\n").count - before
    #expect(lines <= 20, "\(lines) log lines for 400 refused or spoiled connections")
  }
}
