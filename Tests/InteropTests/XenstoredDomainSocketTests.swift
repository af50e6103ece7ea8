#if canImport(Glibc)
import Glibc
#endif
import Testing
import InteropSupport
import TestSupport
import XenStore

/// Introduced domains reached through their own sockets: every permission and quota rule
/// applies to a process connected there, Xen's own clients included.
@Suite(.serialized, .ownThread) struct XenstoredDomainSocketTests {
  /// Dom0 introduces domain 5 and gives it its home, as a toolstack does.
  private func introduceDomain5(_ d: XenstoredUnderTest) throws -> RawClient {
    let dom0 = try RawClient(d.socketPath)
    #expect(dom0.call(.introduce, "5", "1", "2") == "OK|")
    #expect(dom0.call(.write, "/local/domain/5") == "OK|")
    #expect(dom0.call(.setPerms, "/local/domain/5", "n5", "r0") == "OK|")
    return dom0
  }

  private func mode(_ path: String) -> mode_t? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return info.st_mode
  }

  @Test func introduceCreatesASocketAndReleaseRemovesIt() throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    #expect(mode(d.socketPath).map { $0 & 0o777 } == 0o600)
    #expect(mode(d.domainSocketPath(5)) == nil)
    let dom0 = try introduceDomain5(d)
    let socketMode = try #require(mode(d.domainSocketPath(5)))
    #expect(socketMode & S_IFMT == S_IFSOCK && socketMode & 0o777 == 0o600)
    let dom5 = try RawClient(d.domainSocketPath(5))
    #expect(dom5.call(.read, "/local/domain/5") == "")
    #expect(dom0.call(.release, "5") == "OK|")
    #expect(dom5.isClosedByDaemon(), "the released domain's connections are closed")
    #expect(mode(d.domainSocketPath(5)) == nil)
    #expect(dom0.call(.isDomainIntroduced, "5") == "F|")
  }

  @Test func aDomainCannotReadWriteOrWatchWhatItMayNot() throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let dom0 = try introduceDomain5(d)
    #expect(dom0.write("/secret/key", "42") == "OK|")
    let dom5 = try RawClient(d.domainSocketPath(5))
    #expect(dom5.call(.read, "/secret/key") == "EACCES")
    #expect(dom5.call(.directory, "/") == "EACCES")
    #expect(dom5.call(.write, "/secret/key") == "EACCES")
    #expect(dom5.call(.rm, "/secret") == "EACCES")
    #expect(dom5.call(.introduce, "6", "1", "2") == "EACCES")
    #expect(dom5.call(.watch, "/secret", "s") == "OK|")
    #expect(dom5.write("data/own", "1") == "OK|")    // relative: its home
    #expect(dom5.call(.getPerms, "data/own") == "n5|r0|")
    #expect(dom0.write("/secret/key", "43") == "OK|")
    #expect(dom5.call(.read, "data/own") == "1")            // a round trip after the change
    #expect(dom5.takeEvents() == ["/secret|s|"], "only the first event, none for the secret change")
  }

  @Test func quotaExhaustionGivesTheErrno() throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    _ = try introduceDomain5(d)
    let dom5 = try RawClient(d.domainSocketPath(5))
    for i in 0..<128 { #expect(dom5.call(.watch, "w\(i)", "t") == "OK|") }
    #expect(dom5.call(.watch, "one-more", "t") == "E2BIG")
    for _ in 0..<10 { #expect(dom5.call(.transactionStart, "") != "ENOSPC") }
    #expect(dom5.call(.transactionStart, "") == "ENOSPC")
    #expect(dom5.write("big", String(repeating: "x", count: 2040)) == "ENOSPC")
    var last = ""
    for i in 0..<1000 {
      last = dom5.call(.write, "n\(i)", "")
      if last != "OK|" { break }
    }
    #expect(last == "ENOSPC", "the nodes quota (1000 per domain) ends the loop")
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.xenstoreRead])))
  func xenstoreUtilsActAsTheDomain() async throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let dom0 = try introduceDomain5(d)
    #expect(dom0.write("/secret", "x") == "OK|")
    let env = ["XENSTORED_PATH": d.domainSocketPath(5)]
    #expect(try await run(["xenstore-write", "name", "guest"], environment: env).status == 0)
    #expect(try await run(["xenstore-read", "/local/domain/5/name"], environment: env).stdout == "guest\n")
    let denied = try await run(["xenstore-read", "/secret"], environment: env)
    #expect(denied.status == 1 && denied.stderr == "xenstore-read: couldn't read path /secret\n", "\(denied)")
    #expect(dom0.call(.getPerms, "/local/domain/5/name") == "n5|r0|")
  }

  @Test func aDomainThatFloodsRequestsIsThrottledNotDropped() throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    _ = try introduceDomain5(d)
    let dom5 = try RawClient(d.domainSocketPath(5))
    // 200 requests sent without reading a reply: the daemon stops reading at 20 outstanding,
    // and carries on as the replies are read.
    var burst: [UInt8] = []
    for i in 0..<200 { burst += Message(type: .read, requestID: UInt32(i), strings: ["/local/domain/5"]).encoded() }
    dom5.sendBytes(burst)
    var ids: [UInt32] = []
    while ids.count < 200, let m = dom5.receive() { ids.append(m.requestID) }
    #expect(ids == Array(0..<200))
  }

  @Test func aDomainMayHoldOnly32Connections() throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    _ = try introduceDomain5(d)
    let held = try (0..<32).map { _ in try RawClient(d.domainSocketPath(5)) }
    for c in held { #expect(c.call(.read, "/local/domain/5") == "") }
    let extra = try RawClient(d.domainSocketPath(5))
    #expect(extra.isClosedByDaemon())
    #expect(try RawClient(d.socketPath).call(.read, "/") == "", "dom0 is not limited")
    _ = held
  }
}
