import Testing
import XenStore
import XenStoreDaemon

/// Malformed requests get exactly the errno C xenstored 4.17 gives (checked against it).
@Suite struct BadRequestTests {
  let h = EngineHarness()

  @Test(arguments: [UInt32(20), 15, 16, 23, 24, 25, 26, 27, 99, 0xffff])
  func unknownRemovedAndReplyOnlyTypesAreENOSYS(type: UInt32) {
    let c = h.connect()
    #expect(h.callRaw(c, MessageType(rawValue: type), [0]) == "ENOSYS")
    #expect(h.callRaw(c, MessageType(rawValue: type), [], tx: 99) == "ENOSYS", "ENOSYS comes before the tx check")
  }

  @Test(arguments: [
    (MessageType.read, "/a/b"), (.read, "/a/b\0extra"), (.read, "/a/b\0\0"), (.read, ""),
    (.directory, "/a"), (.directory, ""), (.getPerms, "/a"), (.getPerms, ""),
    (.mkdir, "/t"), (.mkdir, ""), (.rm, "/t"), (.rm, ""), (.rm, "/t\0\0"),
    (.write, "/a/b"), (.write, ""), (.setPerms, "/a\0"), (.setPerms, "/a\0n0"),
    (.getDomainPath, "7"), (.getDomainPath, ""), (.transactionEnd, "T"),
    (.watch, "/w\0"), (.watch, "/w\0tok"), (.watch, "/w\0t\0extra\0"), (.unwatch, "/w\0"),
  ])
  func payloadsThatAreNotTheExpectedStrings(type: MessageType, payload: String) {
    let c = h.connect()
    h.write(c, "/a/b", "x")
    let expected: String = switch type {
    case .read, .directory, .getPerms: "ENOENT"          // C's onearg() quirk
    case .mkdir, .rm: "ENOMEM"                           // likewise
    default: "EINVAL"
    }
    if type == .transactionEnd {
      let tx = UInt32(h.call(c, .transactionStart, "").dropLast())!
      #expect(h.callRaw(c, type, Array(payload.utf8), tx: tx) == expected)
    } else {
      #expect(h.callRaw(c, type, Array(payload.utf8)) == expected)
    }
  }

  @Test(arguments: [MessageType.read, .write, .directory, .transactionEnd, .transactionStart, .resetWatches,
                    .getDomainPath, .introduce, .control, .directoryPart])
  func unknownTransactionIDIsENOENT(type: MessageType) {
    let c = h.connect()
    #expect(h.callRaw(c, type, Array("/a\0".utf8), tx: 5) == "ENOENT")
  }

  @Test func watchAndUnwatchIgnoreTheTransactionID() {
    let c = h.connect()
    #expect(h.call(c, .watch, "/zz", "t", tx: 99) == "OK|")
    #expect(h.call(c, .unwatch, "/zz", "t", tx: 99) == "OK|")
  }

  @Test func domainArgumentsAreReadLikeAtoi() {
    let c = h.connect()
    #expect(h.call(c, .getDomainPath, "7") == "/local/domain/7|")
    #expect(h.call(c, .getDomainPath, "x") == "/local/domain/0|")
    #expect(h.call(c, .getDomainPath, "-1") == "/local/domain/4294967295|")
    #expect(h.call(c, .isDomainIntroduced, "x") == "T|")
  }

  @Test func setPermsRejectsMalformedEntries() {
    let c = h.connect()
    h.write(c, "/a", "")
    #expect(h.call(c, .setPerms, "/a", "n0", "x5") == "EINVAL")
    #expect(h.call(c, .setPerms, "/a", "n0", "r") == "EINVAL")
    #expect(h.call(c, .setPerms, "/a", "n0", "r5x") == "EINVAL")
    #expect(h.call(c, .setPerms, "/nonexist", "n0") == "ENOENT")
    #expect(h.call(c, .setPerms, "@foo", "n0") == "EINVAL")
    // Only NUL-terminated entries count: the unterminated "r5" is ignored.
    #expect(h.callRaw(c, .setPerms, Array("/a\0n0\0r5".utf8)) == "OK|")
    #expect(h.call(c, .getPerms, "/a") == "n0|")
  }

  @Test func controlCommands() {
    let c = h.connect()
    #expect(h.call(c, .control, "check") == "OK|")
    #expect(h.call(c, .control, "print", "hello") == "OK|")
    #expect(h.call(c, .control, "quota").hasPrefix("Quota settings:\nnodes            :     1000 Nodes per domain\n"))
    #expect(h.call(c, .control, "help").contains("quota"))
    #expect(h.call(c, .control, "bogus") == "EINVAL")
    #expect(h.callRaw(c, .control, []) == "EINVAL")
  }

  @Test func resetWatchesAcceptsAnEmptyPayload() {
    let c = h.connect()
    #expect(h.callRaw(c, .resetWatches, []) == "OK|")
  }
}
