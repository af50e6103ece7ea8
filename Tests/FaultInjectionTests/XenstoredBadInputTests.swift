#if canImport(Glibc)
import Glibc
#endif
import Testing
import InteropSupport
import TestSupport
import XenStore

/// Hostile and broken clients over real sockets: each gets C xenstored's reply or loses its
/// own connection, and nobody else notices.
@Suite(.serialized, .ownThread) struct XenstoredBadInputTests {
  private func header(_ type: UInt32, _ length: UInt32) -> [UInt8] {
    var bytes: [UInt8] = []
    for word in [type, 1, 0, length] { withUnsafeBytes(of: word) { bytes.append(contentsOf: $0) } }
    return bytes
  }

  @Test(arguments: [UInt32(4097), 65536, 0xffff_ffff])
  func lengthOver4096ClosesThatConnectionOnly(length: UInt32) throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let good = try RawClient(d.socketPath)
    #expect(good.write("/kept", "v") == "OK|")
    let bad = try RawClient(d.socketPath)
    bad.sendBytes(header(MessageType.write.rawValue, length) + [UInt8](repeating: 0x41, count: 100))
    #expect(bad.isClosedByDaemon())
    #expect(good.call(.read, "/kept") == "v")
    #expect(try RawClient(d.socketPath).call(.read, "/kept") == "v")
  }

  @Test func headerAndPayloadInSeparateWritesAndPipelinedRequests() throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let c = try RawClient(d.socketPath)
    let write = Message(type: .write, requestID: 9, payload: Array("/split\0value".utf8)).encoded()
    for byte in write { c.sendBytes([byte]) }
    #expect(c.text(c.receive()) == "OK|")
    var many: [UInt8] = []
    for i in 0..<50 { many += Message(type: .read, requestID: UInt32(i), strings: ["/split"]).encoded() }
    c.sendBytes(many)
    for i in 0..<50 {
      let m = c.receive()
      #expect(m?.requestID == UInt32(i) && m?.payload == Array("value".utf8))
    }
  }

  @Test func malformedRequestsGetCXenstoredsErrno() throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let c = try RawClient(d.socketPath)
    #expect(c.text(c.requestRaw(MessageType(rawValue: 99), [0])) == "ENOSYS")
    #expect(c.text(c.requestRaw(.restrict, [])) == "ENOSYS")
    #expect(c.text(c.requestRaw(.write, Array("/no-nul".utf8))) == "EINVAL")
    #expect(c.text(c.requestRaw(.read, Array("/no-nul".utf8))) == "ENOENT")
    #expect(c.call(.read, "/bad//path") == "EINVAL")
    #expect(c.call(.write, "/bad path", "v") == "EINVAL")
    #expect(c.call(.read, "/", tx: 77) == "ENOENT")
    #expect(c.call(.transactionEnd, "T", tx: 77) == "ENOENT")
    #expect(c.call(.read, "/") == "", "the connection carries on after every error")
  }

  @Test func noPermissionIsEACCES() throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let dom0 = try RawClient(d.socketPath)
    #expect(dom0.call(.introduce, "3", "0", "0") == "OK|")
    #expect(dom0.call(.write, "/private", "x") == "OK|")
    let dom3 = try RawClient(d.domainSocketPath(3))
    #expect(dom3.call(.read, "/private") == "EACCES")
    #expect(dom3.call(.setPerms, "/private", "n3") == "EACCES")
    #expect(dom3.call(.control, "check") == "EACCES")
  }

  @Test func aClientThatNeverReadsItsEventsIsCutOff() throws {
    let d = try XenstoredUnderTest.start(maxQueuedOutputBytes: 256 << 10)
    defer { d.stop() }
    let sleeper = try RawClient(d.socketPath)
    var small: Int32 = 4096
    setsockopt(sleeper.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
    #expect(sleeper.call(.watch, "/", "all") == "OK|")
    let other = try RawClient(d.socketPath)
    #expect(other.call(.watch, "/quiet", "mine") == "OK|")
    let writer = try RawClient(d.socketPath)
    let path = "/flood/" + String(repeating: "p", count: 1000)
    for i in 0..<2000 { #expect(writer.write(path + "\(i)", "v") == "OK|") }
    #expect(sleeper.isClosedByDaemon())
    #expect(writer.call(.read, path + "0") == "v")
    #expect(writer.write("/quiet", "after") == "OK|")
    #expect(other.call(.read, "/quiet") == "after")
    #expect(other.takeEvents() == ["/quiet|mine|", "/quiet|mine|"], "other watchers are unaffected")
  }

  @Test func clientsThatVanishMidMessageCostNothing() throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    for _ in 0..<20 {
      let c = try RawClient(d.socketPath)
      c.sendBytes(Array(Message(type: .write, payload: Array("/half\0value".utf8)).encoded().prefix(20)))
    }
    let c = try RawClient(d.socketPath)
    #expect(c.call(.read, "/half") == "ENOENT")
    #expect(c.call(.control, "check") == "OK|")
  }

  @Test func randomByteStreamsCostOnlyTheirOwnConnections() throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let good = try RawClient(d.socketPath)
    #expect(good.write("/steady", "1") == "OK|")
    var random = SystemRandomNumberGenerator()
    for _ in 0..<50 {
      let noisy = try RawClient(d.socketPath)
      var bytes: [UInt8] = []
      for _ in 0..<Int.random(in: 1...20, using: &random) {
        // Mostly plausible headers (small types and lengths) with random payloads.
        let length = UInt32.random(in: 0...200, using: &random)
        for word in [UInt32.random(in: 0...30, using: &random), 1, UInt32.random(in: 0...2, using: &random), length] {
          withUnsafeBytes(of: word) { bytes.append(contentsOf: $0) }
        }
        bytes += (0..<length).map { _ in [0, 0x2f, 0x61, 0x40].randomElement(using: &random)! }
      }
      bytes += (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
      noisy.sendBytes(bytes)
      #expect(good.call(.read, "/steady") == "1")
    }
    #expect(good.call(.control, "check") == "OK|")
  }
}
