#if canImport(Glibc)
import Glibc
#endif
import Testing
import InteropSupport
import TestSupport
import XenStore

/// A protocol fuzzer against the running `xenstored` executable: hostile connections (dom0's
/// socket and domains', some of which are introduced and released meanwhile) send random,
/// mutated, truncated, oversized and ill-typed messages with bad paths and close abruptly,
/// while a well-behaved dom0 client and a well-behaved domain client check every answer they
/// get. The daemon must stay up and they must notice nothing.
///
/// A few seconds here; `scripts/fuzz.sh --protocol SECONDS` runs it for longer
/// (`XS_PROTOCOL_FUZZ_SECONDS`); `XS_STRESS_SEED` replays a run.
@Suite(.serialized, .ownThread) struct ReliabilityProtocolFuzzTests {
  static let attackers = 6

  @Test func hostileClientsNeitherStopTheDaemonNorDisturbOthers() throws {
    let seconds = secondsSetting("XS_PROTOCOL_FUZZ_SECONDS", default: 3)
    let seed = stressSeed()
    let d = try DaemonProcess()
    defer { d.stop() }
    let dom0 = try StressClient(d.socketPath)
    for domid in 1...3 {
      #expect(dom0.call(.introduce, "\(domid)", "0", "0") == "OK|")
      #expect(dom0.write("/local/domain/\(domid)", "") == "OK|")
      #expect(dom0.call(.setPerms, "/local/domain/\(domid)", "n\(domid)", "r0") == "OK|")
    }
    let residentBefore = d.residentKiB
    let ledger = StressLedger()
    let deadline = monotonicSeconds() + seconds
    onThreads(Self.attackers + 2) { i in
      switch i {
      case 0: WellBehaved.dom0(d.socketPath, until: deadline, ledger)
      case 1: WellBehaved.domain(d.domainSocketPath(1), until: deadline, ledger)
      default:
        var attacker = Attacker(daemon: d, random: SeededRandom(seed: seed &+ UInt64(i)), ledger: ledger)
        attacker.run(until: deadline)
      }
    }
    #expect(d.isAlive, "xenstored died (seed \(seed)): \(d.log)")
    #expect(ledger.failures.isEmpty, "seed \(seed): \(ledger.failures)")
    #expect(ledger.count("good-ops") > 0 && ledger.count("domain-ops") > 0)
    let after = try StressClient(d.socketPath)
    if !ledger.failures.isEmpty {
      // For the open failure in RELIABILITY.md (domain 1's home vanished once): what the
      // daemon says about domains, and what is left of the home.
      let domainLines = d.log.split(separator: "\n").filter { $0.contains("domain") }.suffix(40)
      Issue.record("""
        seed \(seed): /local/domain = \(after.call(.directory, "/local/domain")), \
        /local/domain/1 perms \(after.call(.getPerms, "/local/domain/1")), \
        children \(after.call(.directory, "/local/domain/1")); the daemon's domain lines:
        \(domainLines.joined(separator: "\n"))
        """)
    }
    #expect(after.call(.control, "check") == "OK|")
    #expect(after.read("/local/domain/1/data/k0") != nil, "the domain's data is intact")
    let counts = ledger.counts
    print("protocol fuzz: seed \(seed), \(seconds) s, \(counts["connections", default: 0]) hostile connections, "
          + "\(counts["messages", default: 0]) hostile messages, \(counts["good-ops", default: 0]) + "
          + "\(counts["domain-ops", default: 0]) checked operations, daemon RSS \(residentBefore) → \(d.residentKiB) KiB")
  }
}

/// Clients that follow the protocol and check every answer against what they know.
enum WellBehaved {
  /// Dom0: writes, reads back, lists, watches and commits transactions under /good, which no
  /// one else touches.
  static func dom0(_ socket: String, until deadline: Double, _ ledger: StressLedger) {
    let c: StressClient
    do { c = try StressClient(socket) } catch { return ledger.fail("good client cannot connect: \(error)") }
    var keys: Set<String> = []
    expect(c.call(.watch, "/good/w", "gw"), "OK|", "watch", ledger)
    _ = c.call(.getDomainPath, "0")   // the watch's first event follows its reply
    _ = c.takeEvents()
    var round = 0
    while monotonicSeconds() < deadline {
      round += 1
      let key = "k\(round % 16)"
      keys.insert(key)
      expect(c.write("/good/\(key)", "v\(round)"), "OK|", "write", ledger)
      expect(c.read("/good/\(key)") ?? "error", "v\(round)", "read back", ledger)
      expect(c.write("/good/w", "\(round)"), "OK|", "write watched", ledger)
      let events = c.takeEvents().map(\.payloadDescription)
      expect(events.joined(separator: ","), "/good/w|gw|", "event of the watched node", ledger)
      let listed = Set(c.call(.directory, "/good").split(separator: "|").map(String.init))
      let known = keys.union(round == 1 ? ["w"] : ["w", "tx"])
      expect(listed.sorted().joined(separator: ","), known.sorted().joined(separator: ","), "directory", ledger)
      let tx = c.call(.transactionStart, "")
      if let id = UInt32(tx.dropLast()) {
        expect(c.write("/good/tx", "\(round)", tx: id), "OK|", "write in transaction", ledger)
        expect(c.call(.transactionEnd, "T", tx: id), "OK|", "commit", ledger)
        expect(c.read("/good/tx") ?? "error", "\(round)", "committed value", ledger)
      } else {
        ledger.fail("transaction start: \(tx)")
      }
      ledger.add("good-ops", 9)
    }
  }

  /// Domain 1 through its own socket: works in its home, and is refused dom0's nodes.
  static func domain(_ socket: String, until deadline: Double, _ ledger: StressLedger) {
    let c: StressClient
    do { c = try StressClient(socket) } catch { return ledger.fail("domain client cannot connect: \(error)") }
    var round = 0
    while monotonicSeconds() < deadline {
      round += 1
      expect(c.write("data/k\(round % 8)", "d\(round)"), "OK|", "domain write", ledger)
      expect(c.read("data/k\(round % 8)") ?? "error", "d\(round)", "domain read back", ledger)
      expect(c.call(.getPerms, "data/k\(round % 8)"), "n1|r0|", "domain perms", ledger)
      expect(c.call(.read, "/good/w"), "EACCES", "dom0 node hidden", ledger)
      ledger.add("domain-ops", 4)
    }
  }

  private static func expect(_ actual: String, _ expected: String, _ what: String, _ ledger: StressLedger) {
    if actual != expected { ledger.fail("\(what): got \(actual.prefix(200)), expected \(expected.prefix(200))") }
  }
}

/// One hostile client: connection after connection, each a burst of generated or mutated
/// messages, read or not, then closed (sometimes with a reset). On dom0's socket it keeps to
/// requests that cannot touch the well-behaved clients' data (dom0 may do anything, so that
/// is the daemon's promise only for domains); on the domains' sockets anything goes.
struct Attacker {
  let daemon: DaemonProcess
  var random: SeededRandom
  let ledger: StressLedger
  /// The last generated message does not end where its header says (truncated, or a header
  /// announcing more than the daemon takes).
  private var misframed = false

  init(daemon: DaemonProcess, random: SeededRandom, ledger: StressLedger) {
    self.daemon = daemon
    self.random = random
    self.ledger = ledger
  }

  mutating func run(until deadline: Double) {
    while monotonicSeconds() < deadline {
      let privileged = Bool.random(using: &random)
      // Domains 2 and 3 stay; 100–105 come and go as the privileged attackers introduce and
      // release them, so connections race their domain's release.
      let domid: UInt32 = privileged ? 0 : [2, 3, 100, 101, 102, 103, 104, 105].randomElement(using: &random)!
      let path = privileged ? daemon.socketPath : daemon.domainSocketPath(domid)
      guard let c = try? StressClient(path, timeout: 1) else { continue }
      c.setTimeout(seconds: 0, microseconds: 20_000)
      ledger.add("connections")
      for _ in 0..<Int.random(in: 1...40, using: &random) {
        var bytes = privileged ? safeMessage() : anyMessage()
        if !privileged && Int.random(in: 0..<3, using: &random) == 0 { mutate(&bytes) }
        // Split writes, as libxenstore's are, at a random point.
        let cut = Int.random(in: 0...bytes.count, using: &random)
        guard c.send(Array(bytes[..<cut])), c.send(Array(bytes[cut...])) else { break }
        ledger.add("messages")
        if Int.random(in: 0..<4, using: &random) == 0 { _ = c.receive() }
        // After a truncated message the daemon reads the next message's bytes as its end and
        // frames whatever follows anew: dom0 would then send requests none of the generators
        // made (seen: SET_TARGET 102 → 1, after which domain 102 may rightly remove domain 1's
        // home). So a misframed message is the last one of a dom0 connection.
        if privileged && misframed { break }
      }
      switch Int.random(in: 0..<4, using: &random) {
      case 0:
        var reset = linger(l_onoff: 1, l_linger: 0)
        setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
      case 1:
        c.send(Array(Message(type: .write, payload: Array("/fuzz/half\0value".utf8)).encoded().prefix(20)))
      case 2:
        while c.receive() != nil {}
      default:
        break
      }
    }
  }

  // MARK: Messages (`FuzzMessages`, shared by the fuzz test and its replay)

  private mutating func safeMessage() -> [UInt8] {
    let message = FuzzMessages.safe(using: &random)
    misframed = message.misframed
    return message.bytes
  }

  private mutating func anyMessage() -> [UInt8] { FuzzMessages.any(using: &random) }

  private mutating func mutate(_ bytes: inout [UInt8]) { FuzzMessages.mutate(&bytes, using: &random) }
}
