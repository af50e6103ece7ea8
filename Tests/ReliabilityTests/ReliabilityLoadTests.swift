#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
import InteropSupport
import TestSupport
import XenStore

/// Load on the `xenstored` executable: 64 clients mixing reads, writes, listings, watches and
/// transactions for a fixed time — a quarter of them unprivileged domains on their own sockets,
/// refused everything outside their homes while they work — alongside a client that never
/// reads its events and one that never reads its replies.
///
/// - No lost update: transactions increment shared counters, retrying on EAGAIN; each counter
///   ends at exactly the number of commits.
/// - Watches: every client sees an event for each change of its own subtree; the counter
///   watchers (which Xen allows to miss intermediate values only) see the final value.
/// - Memory: the daemon's RSS after warm-up stays flat; the client that never reads its
///   events is cut off, the one that never reads its replies is paused, and others carry on.
///
/// A few seconds here, memory-only and durable; `scripts/load.sh SECONDS` runs it for longer
/// (`XS_LOAD_SECONDS`).
@Suite(.serialized, .ownThread) struct ReliabilityLoadTests {
  static let clients = 64
  static let watchers = 4
  static let counters = 4

  /// The domain client `index` acts as: every fourth worker is a domain (1...15), the rest dom0.
  static func domain(of index: Int) -> UInt32? {
    index >= watchers && index % 4 == 0 ? UInt32(index / 4) : nil
  }

  /// Where client `index` keeps its keys: under its domain's home, or /load.
  static func home(of index: Int) -> String {
    domain(of: index).map { "/local/domain/\($0)/load" } ?? "/load/c\(index)"
  }

  /// Memory-only, and durable (`--state-dir`: every reply waits for its record's sync).
  @Test(arguments: [false, true])
  func sixtyFourClientsLoseNoUpdateAndMemoryStaysFlat(durable: Bool) throws {
    let seconds = secondsSetting("XS_LOAD_SECONDS", default: 4)
    let seed = stressSeed()
    let d = try DaemonProcess(durable: durable)
    defer { d.stop() }
    let setup = try StressClient(d.socketPath)
    for k in 0..<Self.counters {
      #expect(setup.write("/load/counter/\(k)", "0") == "OK|")
      #expect(setup.call(.setPerms, "/load/counter/\(k)", "b0") == "OK|", "every domain may count")
    }
    for domid in 1...15 {
      #expect(setup.call(.introduce, "\(domid)", "0", "0") == "OK|")
      #expect(setup.write("/local/domain/\(domid)", "") == "OK|")
      #expect(setup.call(.setPerms, "/local/domain/\(domid)", "n\(domid)", "r0") == "OK|")
    }

    // Never reads its events: a watch on everything with a long token.
    let sleeper = try StressClient(d.socketPath)
    var small: Int32 = 4096
    setsockopt(sleeper.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
    #expect(sleeper.call(.watch, "/", String(repeating: "s", count: 1000)) == "OK|")
    // Never reads its replies: requests until the socket takes no more.
    let deaf = try StressClient(d.socketPath)
    let deafRequests = floodWithoutReading(deaf)

    let ledger = StressLedger()
    let finishedWorkers = Atomic<Int>(0)
    let start = monotonicSeconds()
    let deadline = start + seconds
    let warmResident = Atomic<Int>(0)
    onThreads(Self.clients + 1) { i in
      if i == Self.clients {
        // Warm-up ends at a third of the run.
        while monotonicSeconds() < start + seconds / 3 { usleep(20_000) }
        warmResident.store(d.residentKiB, ordering: .relaxed)
      } else if i < Self.watchers {
        CounterWatcher(socket: d.socketPath, ledger: ledger).run(until: deadline) {
          finishedWorkers.load(ordering: .acquiring) == Self.clients - Self.watchers
        }
      } else {
        let socket = Self.domain(of: i).map(d.domainSocketPath) ?? d.socketPath
        var worker = LoadWorker(index: i, socket: socket, random: SeededRandom(seed: seed &+ UInt64(i)), ledger: ledger)
        worker.run(until: deadline)
        finishedWorkers.add(1, ordering: .releasing)
      }
    }
    let elapsed = monotonicSeconds() - start
    let endResident = d.residentKiB

    #expect(d.isAlive, "xenstored died: \(d.log)")
    #expect(ledger.failures.isEmpty, "seed \(seed): \(ledger.failures)")
    var lost = 0
    for k in 0..<Self.counters {
      let committed = ledger.count("committed-\(k)")
      let value = setup.read("/load/counter/\(k)").flatMap { Int($0) }
      #expect(value == committed, "counter \(k): \(value.map(String.init) ?? "unreadable") after \(committed) commits")
      lost += committed - (value ?? 0)
    }
    // Whatever the run generated, events enough for the sleeper to pass the daemon's queue
    // limit (1 MiB) beyond any socket buffer: each over 2 KiB with its path and token, 1,000 of
    // them. The cut-off is then certain, not a matter of how fast this machine ran.
    let long = "/load/" + String(repeating: "f", count: 1200)
    for i in 0..<1000 { _ = setup.write(long, "\(i)") }
    #expect(sleeper.isClosedByDaemon(), "the client that never reads its events is cut off")
    #expect(drainReplies(deaf) == deafRequests, "the paused client gets every reply once it reads")
    let warm = warmResident.load(ordering: .relaxed)
    #expect(endResident - warm < 16 << 10, "RSS grew from \(warm) KiB after warm-up to \(endResident) KiB")
    #expect(setup.call(.control, "check") == "OK|")

    let c = ledger.counts
    let ops = c["ops", default: 0]
    let rate = Int(Double(ops) / elapsed)
    let duration = Double(Int(elapsed * 10)) / 10
    let requests = c["requests", default: 0]
    var report = "load\(durable ? " (durable)" : ""): \(Self.clients) clients (\(c["domain-clients", default: 0]) of them domains), "
    report += "\(duration) s, \(ops) operations (\(rate)/s), "
    report += "\(requests) requests (\(Int(Double(requests) / elapsed))/s), "
    report += "\(c["commits", default: 0]) counter commits, \(c["eagain", default: 0]) EAGAIN retries, "
    report += "lost updates \(lost), watch events \(c["events", default: 0]), "
    report += "RSS \(warm) KiB after warm-up → \(endResident) KiB at the end, seed \(seed)"
    print(report)
  }

  /// Sends READ requests without reading a reply until the socket would block; how many.
  private func floodWithoutReading(_ c: StressClient) -> Int {
    let request = Message(type: .read, requestID: 7, strings: ["/load/counter/0"]).encoded()
    var sent = 0
    while true {
      let n = request.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
      if n == request.count { sent += 1; continue }
      // A partial request: finish it blocking, so the stream stays whole.
      if n > 0 { c.send(Array(request[n...])); sent += 1 }
      return sent
    }
  }

  /// Reads replies until none comes for a second; how many.
  private func drainReplies(_ c: StressClient) -> Int {
    c.setTimeout(seconds: 1)
    var replies = 0
    while let m = c.receive() { if m.type == .read { replies += 1 } }
    return replies
  }
}

/// One of the 60 working clients: a seeded mix of operations on its own subtree (checked
/// exactly), on others' (checked for shape; a domain must be refused them), and counter
/// increments in transactions.
struct LoadWorker {
  let index: Int
  let socket: String
  var random: SeededRandom
  let ledger: StressLedger

  mutating func run(until deadline: Double) {
    let c: StressClient
    do { c = try StressClient(socket) } catch { return ledger.fail("client \(index) cannot connect: \(error)") }
    let home = ReliabilityLoadTests.home(of: index)
    let isDomain = ReliabilityLoadTests.domain(of: index) != nil
    if isDomain { ledger.add("domain-clients") }
    check(c.call(.mkdir, home), "OK|", "mkdir home")
    check(c.call(.watch, home, "mine"), "OK|", "watch")
    _ = c.call(.getDomainPath, "0")   // the watch's first event follows its reply
    _ = c.takeEvents()
    var changes = 0, sequence = 0
    while monotonicSeconds() < deadline {
      sequence += 1
      switch Int.random(in: 0..<16, using: &random) {
      case 0..<6:
        let key = "\(home)/k\(sequence % 8)", value = "\(index)-\(sequence)"
        check(c.write(key, value), "OK|", "write")
        check(c.read(key) ?? "error", value, "read back")
        changes += 1
      case 6..<9:
        let other = Int.random(in: ReliabilityLoadTests.watchers..<ReliabilityLoadTests.clients, using: &random)
        guard other != index else { break }
        let reply = c.call(.read, ReliabilityLoadTests.home(of: other) + "/k\(Int.random(in: 0..<8, using: &random))")
        if isDomain ? reply != "EACCES" : reply != "ENOENT" && !reply.hasPrefix("\(other)-") {
          ledger.fail("client \(index) read client \(other)'s key: \(reply)")
        }
      case 9..<11:
        let names = c.call(.directory, home).split(separator: "|")
        if !names.allSatisfy({ $0.hasPrefix("k") || $0 == "tmp" }) { ledger.fail("directory \(home): \(names)") }
      case 11..<13:
        check(c.call(.mkdir, "\(home)/tmp"), "OK|", "mkdir")
        check(c.call(.rm, "\(home)/tmp"), "OK|", "rm")
        changes += 2
      default:
        increment(c, counter: Int.random(in: 0..<ReliabilityLoadTests.counters, using: &random))
      }
      ledger.add("ops")
    }
    // Every change of its subtree was this client's, and each fires its watch.
    _ = c.call(.read, home)
    let mine = c.takeEvents().filter { $0.payloadDescription.hasSuffix("|mine|") }.count
    ledger.add("events", mine)
    ledger.add("requests", c.requestCount)
    if mine < changes { ledger.fail("client \(index): \(mine) events for \(changes) changes of its subtree") }
  }

  /// Read, add one, write, commit; again from the start on EAGAIN.
  private func increment(_ c: StressClient, counter k: Int) {
    let path = "/load/counter/\(k)"
    for _ in 0..<10_000 {
      guard let tx = UInt32(c.call(.transactionStart, "").dropLast()) else { return ledger.fail("transaction start") }
      guard let value = c.read(path, tx: tx).flatMap({ Int($0) }) else { return ledger.fail("counter read") }
      check(c.write(path, "\(value + 1)", tx: tx), "OK|", "counter write")
      switch c.call(.transactionEnd, "T", tx: tx) {
      case "OK|":
        ledger.add("committed-\(k)")
        ledger.add("commits")
        return
      case "EAGAIN":
        ledger.add("eagain")
      case let other:
        return ledger.fail("commit: \(other)")
      }
    }
    ledger.fail("counter \(k): 10000 conflicts in a row")
  }

  private func check(_ actual: String, _ expected: String, _ what: String) {
    if actual != expected { ledger.fail("client \(index) \(what): got \(actual.prefix(100)), expected \(expected)") }
  }
}

/// Watches the counters and reads one whenever its event comes. Xen may coalesce events for
/// a slow reader, so what is guaranteed is that values never go back and that an event comes
/// after the last change: once the workers are done, each counter's last read value must be
/// its final value.
struct CounterWatcher {
  let socket: String
  let ledger: StressLedger

  func run(until deadline: Double, workersDone: () -> Bool) {
    let c: StressClient
    do { c = try StressClient(socket) } catch { return ledger.fail("watcher cannot connect: \(error)") }
    guard c.call(.watch, "/load/counter", "counters") == "OK|" else { return ledger.fail("watcher watch") }
    var last = [Int](repeating: 0, count: ReliabilityLoadTests.counters)
    var final: [Int]?
    c.setTimeout(seconds: 0, microseconds: 100_000)
    var quietSince = monotonicSeconds()
    while true {
      if final == nil && monotonicSeconds() >= deadline && workersDone() {
        final = (0..<ReliabilityLoadTests.counters).map { ledger.count("committed-\($0)") }
      }
      if let final, last == final { return }
      if monotonicSeconds() - quietSince > 10 {
        return ledger.fail("watcher: last values \(last), final \(final.map { "\($0)" } ?? "not known") after 10 s without events")
      }
      let pending = c.takeEvents() + (c.receive().map { [$0] } ?? [])
      for event in pending where event.type == .watchEvent {
        quietSince = monotonicSeconds()
        let path = String(decoding: event.payload.split(separator: 0).first ?? [], as: UTF8.self)
        guard let k = Int(path.split(separator: "/").last ?? ""), k < last.count else { continue }
        c.setTimeout(seconds: 10)
        let value = c.read(path).flatMap { Int($0) } ?? -1
        c.setTimeout(seconds: 0, microseconds: 100_000)
        if value < last[k] { ledger.fail("counter \(k) went back from \(last[k]) to \(value)") }
        last[k] = max(last[k], value)
      }
    }
  }
}
