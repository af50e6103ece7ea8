import Testing
import TestSupport
import XenStore
import XenStoreDaemon

/// Random requests of every type from privileged and unprivileged connections: the engine
/// answers each one exactly once, and the tree stays consistent.
@Suite(.ownThread) struct RandomRequestTests {
  /// A small deterministic generator (SplitMix64), so a failure can be replayed.
  struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9e37_79b9_7f4a_7c15
      var z = state
      z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
      z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
      return z ^ (z >> 31)
    }
  }

  @Test(arguments: [UInt64(1), 2, 3, 4])
  func everyRequestGetsOneReplyAndTheTreeStaysConsistent(seed: UInt64) {
    var random = SplitMix(state: seed)
    let h = EngineHarness()
    let dom0 = h.connect()
    h.call(dom0, .introduce, "5", "1", "2")
    h.call(dom0, .introduce, "6", "1", "2")
    h.write(dom0, "/local/domain/5", "")
    h.call(dom0, .setPerms, "/local/domain/5", "n5", "r6")
    var connections = [dom0, h.connect(5), h.connect(6), h.connect(5)]
    let words = ["a", "b", "local", "domain", "5", "6", "0", "x-y", "@introduceDomain", "@releaseDomain",
                 "", "/", "//", "T", "F", "n5", "r0", "b6", "w5", "n0", "check", "quota", "tok", "1", "99999"]

    func piece() -> String {
      switch Int.random(in: 0..<4, using: &random) {
      case 0: return "/" + (0..<Int.random(in: 0...4, using: &random)).map { _ in words.randomElement(using: &random)! }
        .joined(separator: "/")
      case 1: return words.randomElement(using: &random)!
      case 2: return "/local/domain/5/" + words.randomElement(using: &random)!
      default: return String(repeating: "z", count: Int.random(in: 0...3000, using: &random))
      }
    }

    for _ in 0..<10_000 {
      let index = Int.random(in: 0..<connections.count, using: &random)
      let conn = connections[index]
      let type = MessageType(rawValue: UInt32.random(in: 0...28, using: &random))
      var payload: [UInt8] = []
      for _ in 0..<Int.random(in: 0...4, using: &random) {
        payload += Array(piece().utf8)
        if Int.random(in: 0..<8, using: &random) != 0 { payload.append(0) }
      }
      if payload.count > Message.payloadMax { payload.removeLast(payload.count - Message.payloadMax) }
      let tx = Int.random(in: 0..<3, using: &random) == 0 ? UInt32.random(in: 0...4, using: &random) : 0
      let reply = h.callRaw(conn, type, payload, tx: tx)
      #expect(reply != "<no reply>", "\(type) from \(conn) got no reply")
      _ = h.events(conn)
      // RELEASE closes the domain's connections: replace them, as a reconnecting guest would.
      for notice in h.notices() where notice.hasPrefix("close ") {
        if let i = connections.firstIndex(where: { "close \($0.rawValue)" == notice }) {
          connections[i] = h.connect(i == 2 ? 6 : 5)
        }
      }
    }
    #expect(h.call(dom0, .control, "check") == "OK|")
    #expect(h.call(dom0, .read, "/") != "<no reply>")
  }
}
