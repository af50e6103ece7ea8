#if canImport(Glibc)
import Glibc
#endif
import CReactor
import Synchronization
import Testing

@testable import Reactor

/// The loop everything runs on: timers, cross-thread work, async waits and their
/// cancellation, descriptor edge cases. Deterministic: timers are due when scheduled (or
/// awaited for), orders are forced by holding the loop thread, and "registered yet?" is asked
/// of the loop, never guessed with a sleep.
@Suite struct EventLoopEdgeTests {
  /// Runs `body` with a fresh loop, shut down afterwards.
  func withLoop<T>(_ name: String, _ body: (EventLoop) async throws -> T) async throws -> T {
    let loop = EventLoop(name: name)
    defer { loop.shutdown() }
    return try await body(loop)
  }

  // MARK: Timers

  /// Due timers run in deadline order; equal deadlines in the order they were scheduled.
  @Test func dueTimersRunInDeadlineThenSchedulingOrder() async throws {
    let order = try await withLoop("t-order") { loop in
      try await loop.collect { seen, done in
        let base = EventLoop.now()
        for (deadline, label) in [(3, "c1"), (1, "a"), (3, "c2"), (2, "b"), (3, "c3"), (0, "first")] {
          loop.schedule(at: base - 10 + UInt64(deadline)) { seen.append(label) }
        }
        loop.schedule(at: base) { done() }
      }
    }
    #expect(order == ["first", "a", "b", "c1", "c2", "c3"])
  }

  @Test func aTimerCancelledBeforeItFiresNeverRuns() async throws {
    let order = try await withLoop("t-cancel") { loop in
      try await loop.collect { seen, done in
        let base = EventLoop.now()
        let cancelled = loop.schedule(at: base - 5) { seen.append("cancelled") }
        loop.schedule(at: base - 6) { seen.append("before") }
        loop.cancel(cancelled)
        loop.schedule(at: base) { done() }
      }
    }
    #expect(order == ["before"])
  }

  /// Two timers due in the same pass: the first cancels the second, which then does not run.
  @Test func aTimerCancelledByAnotherDueInTheSamePassDoesNotRun() async throws {
    let order = try await withLoop("t-same") { loop in
      try await loop.collect { seen, done in
        let base = EventLoop.now() - 100
        let second = Locked<EventLoop.TimerID?>(nil)
        loop.schedule(at: base) {
          seen.append("first")
          if let id = second.withLock({ $0 }) { loop.cancel(id) }
        }
        second.withLock { $0 = loop.schedule(at: base) { seen.append("second") } }
        loop.schedule(at: base + 1) { done() }
      }
    }
    #expect(order == ["first"])
  }

  /// Cancelling a timer that already ran is a no-op: it cancels no other timer.
  @Test func cancellingAFiredTimerTouchesNoOther() async throws {
    let order = try await withLoop("t-after") { loop in
      let fired = Locked<EventLoop.TimerID?>(nil)
      let first = try await loop.collect { seen, done in
        let id = loop.schedule(at: 0) { seen.append("one") }
        fired.withLock { $0 = id }
        loop.schedule(at: 1) { done() }
      }
      #expect(first == ["one"])
      return try await loop.collect { seen, done in
        loop.schedule(at: 0) { seen.append("a") }
        loop.cancel(fired.withLock { $0! })  // already ran: a no-op
        loop.schedule(at: 0) { seen.append("b") }
        loop.schedule(at: 1) { done() }
      }
    }
    #expect(order == ["a", "b"])
  }

  /// Ten thousand timers in a shuffled order, a third cancelled: the rest run once each, in order.
  @Test func manyTimersRunOnceEachInOrder() async throws {
    var generator = SplitMix(seed: 7)
    let deadlines = (0..<10_000).map { _ in UInt64.random(in: 1...5_000, using: &generator) }
    let order = try await withLoop("t-many") { loop in
      try await loop.collect { seen, done in
        var ids: [EventLoop.TimerID] = []
        for (index, deadline) in deadlines.enumerated() {
          ids.append(loop.schedule(at: deadline) { seen.append("\(index)") })
        }
        for index in stride(from: 0, to: ids.count, by: 3) { loop.cancel(ids[index]) }
        loop.schedule(at: 5_001) { done() }
      }
    }
    let expected = deadlines.enumerated().filter { $0.offset % 3 != 0 }
      .sorted { ($0.element, $0.offset) < ($1.element, $1.offset) }.map { "\($0.offset)" }
    #expect(order == expected)
  }

  /// A timer in the future runs no earlier than its deadline (awaited, not slept for).
  @Test func aFutureTimerIsNotEarly() async throws {
    let (scheduled, ran) = try await withLoop("t-future") { loop in
      try await withCheckedThrowingContinuation { (c: CheckedContinuation<(UInt64, UInt64), Error>) in
        loop.execute {
          let at = EventLoop.now() + 20_000_000
          loop.schedule(at: at) { c.resume(returning: (at, EventLoop.now())) }
        }
      }
    }
    #expect(ran >= scheduled)
  }

  /// Scheduled from a timer, due already: it runs in the same pass, after the current one.
  @Test func aTimerScheduledFromATimerRuns() async throws {
    let order = try await withLoop("t-nested") { loop in
      try await loop.collect { seen, done in
        loop.schedule(at: 0) {
          seen.append("outer")
          loop.schedule(at: 0) {
            seen.append("inner")
            done()
          }
        }
      }
    }
    #expect(order == ["outer", "inner"])
  }

  // MARK: Cross-thread work

  /// Work from several threads at once: all of it runs, each thread's in its order.
  @Test func workFromManyThreadsRunsInEachThreadsOrder() async throws {
    try await withLoop("x-threads") { loop in
      let seen = Locked<[(Int, Int)]>([])
      let threads = 4
      let each = 2_000
      await withTaskGroup(of: Void.self) { group in
        for thread in 0..<threads {
          group.addTask {
            for i in 0..<each { loop.execute { seen.withLock { $0.append((thread, i)) } } }
          }
        }
      }
      // Every execute above returned before this one is queued: it runs after them all.
      try await loop.submit {}
      let all = seen.withLock { $0 }
      #expect(all.count == threads * each)
      for thread in 0..<threads {
        #expect(all.filter { $0.0 == thread }.map(\.1) == Array(0..<each))
      }
    }
  }

  /// Work queued from the loop thread runs after the work in progress, in order.
  @Test func workQueuedOnTheLoopRunsAfterTheCurrentWork() async throws {
    let order = try await withLoop("x-nested") { loop in
      try await loop.collect { seen, done in
        loop.execute {
          seen.append("b")
          loop.execute {
            seen.append("d")
            done()
          }
        }
        loop.execute { seen.append("c") }
        seen.append("a")
      }
    }
    #expect(order == ["a", "b", "c", "d"])
  }

  @Test func submitReturnsAndThrowsAndRunsInlineOnTheLoop() async throws {
    struct Boom: Error {}
    try await withLoop("x-submit") { loop in
      let answer = try await loop.submit { 42 }
      #expect(answer == 42)
      await #expect(throws: Boom.self) { try await loop.submit { throw Boom() } }
      // On the loop thread itself, at once (queued, it would deadlock the blocked loop).
      let inline = try await loop.submit { try loop.runBlocking { loop.inLoop } }
      #expect(inline)
    }
  }

  // MARK: Waiting on descriptors

  @Test func readableAndHangupTogether() async throws {
    try await withLoop("fd-hup") { loop in
      let (readEnd, writeEnd) = try makePipe()
      defer { close(readEnd) }
      #expect(write(writeEnd, "x", 1) == 1)
      close(writeEnd)
      let events = try await loop.wait(for: .readable, on: readEnd)
      #expect(events.contains(.readable))
      #expect(!events.isDisjoint(with: .hangup), "EPOLLHUP is reported unasked: \(events)")
      #expect(try await loop.submit { loop.isRegistered(readEnd) } == false)
    }
  }

  /// The peer of a socket shuts down while we wait: the wait ends with a hangup.
  @Test func aPeerClosingWhileWaitingEndsTheWait() async throws {
    try await withLoop("fd-peer") { loop in
      var fds: [Int32] = [-1, -1]
      #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
      let (mine, peer) = (fds[0], fds[1])
      defer { close(mine) }
      let task = Task { try await loop.wait(for: [.readable, .hangup], on: mine) }
      await loop.until { loop.isRegistered(mine) }
      close(peer)
      let events = try await task.value
      #expect(!events.isDisjoint(with: .hangup))
    }
  }

  /// The descriptor is closed under a wait (a caller bug): nothing fires, cancellation still
  /// ends the wait, and the number, reused, can be waited on again.
  @Test func closedWhileWaiting() async throws {
    try await withLoop("fd-closed") { loop in
      let (readEnd, writeEnd) = try makePipe()
      let task = Task { try await loop.wait(for: .readable, on: readEnd) }
      await loop.until { loop.isRegistered(readEnd) }
      close(readEnd)
      close(writeEnd)
      task.cancel()
      await #expect(throws: CancellationError.self) { try await task.value }
      #expect(try await loop.submit { loop.isRegistered(readEnd) } == false)
      let (again, writer) = try makePipe()
      defer { close(again); close(writer) }
      #expect(write(writer, "y", 1) == 1)
      #expect(try await loop.wait(for: .readable, on: again).contains(.readable))
    }
  }

  /// Registered, its file closed without deregistering, the number reused: the new file is
  /// watched (the kernel had dropped the old registration; the loop adds it anew).
  @Test func aReusedNumberIsWatchedAfresh() async throws {
    try await withLoop("fd-reuse") { loop in
      let (again, writeEnd) = try makePipe()
      try await loop.submit { loop.register(again, for: .readable) { _ in Issue.record("the old handler ran") } }
      // The number now names another pipe (dup2 closes the old one atomically: no other
      // thread of this process can take the number in between).
      let (newRead, writer) = try makePipe()
      defer { close(again); close(writer) }
      try #require(dup2(newRead, again) == again)
      close(newRead)
      close(writeEnd)
      let got = try await withCheckedThrowingContinuation { (c: CheckedContinuation<EventLoop.Events, Error>) in
        loop.execute {
          loop.register(again, for: .readable) { events in
            loop.deregister(again)
            c.resume(returning: events)
          }
          _ = write(writer, "z", 1)
        }
      }
      #expect(got == .readable, "a real readable event, not a registration error: \(got)")
    }
  }

  /// EPOLLERR comes unasked: a pipe's write end whose reader is gone.
  @Test func errorIsReportedWithoutBeingAskedFor() async throws {
    try await withLoop("fd-err") { loop in
      let (readEnd, writeEnd) = try makePipe()
      defer { close(writeEnd) }
      close(readEnd)
      let events = try await loop.wait(for: .readable, on: writeEnd)
      #expect(events.contains(.error))
    }
  }

  /// A descriptor epoll cannot watch (a regular file) is reported at once, readable with an error.
  @Test func anUnwatchableDescriptorIsReportedAtOnce() async throws {
    try await withLoop("fd-file") { loop in
      let fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)  // a regular file
      try #require(fd >= 0)
      defer { close(fd) }
      let events = try await loop.wait(for: .readable, on: fd)
      #expect(events == [.readable, .error])
      #expect(try await loop.submit { loop.isRegistered(fd) } == false)
    }
  }

  // MARK: Cancelling a wait

  /// Cancelled before its registration ran: it throws, and nothing stays registered.
  @Test func aWaitCancelledBeforeItIsRegistered() async throws {
    try await withLoop("c-before") { loop in
      let (readEnd, writeEnd) = try makePipe()
      defer { close(readEnd); close(writeEnd) }
      let task = Task {
        withUnsafeCurrentTask { $0?.cancel() }
        return try await loop.wait(for: .readable, on: readEnd)
      }
      await #expect(throws: CancellationError.self) { try await task.value }
      // The registration, queued after the cancellation, saw it and did nothing.
      try await loop.submit {}
      #expect(try await loop.submit { loop.isRegistered(readEnd) } == false)
    }
  }

  /// Cancelled while registered: it throws and is deregistered; the fd can be waited on again.
  @Test func aWaitCancelledWhileRegistered() async throws {
    try await withLoop("c-during") { loop in
      let (readEnd, writeEnd) = try makePipe()
      defer { close(readEnd); close(writeEnd) }
      let task = Task { try await loop.wait(for: .readable, on: readEnd) }
      await loop.until { loop.isRegistered(readEnd) }
      task.cancel()
      await #expect(throws: CancellationError.self) { try await task.value }
      #expect(try await loop.submit { loop.isRegistered(readEnd) } == false)
      #expect(write(writeEnd, "x", 1) == 1)
      #expect(try await loop.wait(for: .readable, on: readEnd).contains(.readable))
    }
  }

  /// Readiness and cancellation race, forced both ways by holding the loop: exactly one wins.
  @Test func readinessAndCancellationQueuedTogetherResumeOnce() async throws {
    try await withLoop("c-race") { loop in
      let (readEnd, writeEnd) = try makePipe()
      defer { close(readEnd); close(writeEnd) }
      let task = Task { try await loop.wait(for: .readable, on: readEnd) }
      await loop.until { loop.isRegistered(readEnd) }
      // Hold the loop; make the fd readable and cancel meanwhile; let go.
      let gate = DispatchSemaphoreLite()
      loop.execute { gate.wait() }
      #expect(write(writeEnd, "x", 1) == 1)
      task.cancel()
      gate.signal()
      let outcome = await task.result
      switch outcome {
      case .success(let events): #expect(events.contains(.readable))
      case .failure(let error): #expect(error is CancellationError)
      }
      #expect(try await loop.submit { loop.isRegistered(readEnd) } == false)
    }
  }

  /// Cancelling a wait that already returned changes nothing.
  @Test func cancellingAfterTheWaitReturned() async throws {
    try await withLoop("c-after") { loop in
      let (readEnd, writeEnd) = try makePipe()
      defer { close(readEnd); close(writeEnd) }
      #expect(write(writeEnd, "x", 1) == 1)
      let task = Task { try await loop.wait(for: .readable, on: readEnd) }
      let events = try await task.value
      task.cancel()
      #expect(events.contains(.readable))
      #expect(try await task.value == events)
    }
  }

  // MARK: accept4

  @Test func acceptedConnectionsAreNonBlockingAndCloseOnExec() throws {
    let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    try #require(listener >= 0)
    defer { close(listener) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    // An abstract address: nothing on disk to clean up.
    let name = "\0reactor-accept-\(getpid())"
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      for (i, byte) in name.utf8.enumerated() { raw[i] = byte }
    }
    let length = socklen_t(MemoryLayout<sa_family_t>.size + name.utf8.count)
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) }
    }
    try #require(bound == 0)
    try #require(listen(listener, 1) == 0)
    let client = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(client) }
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) }
    }
    try #require(connected == 0)
    let fd = creactor_accept_nonblocking(listener)
    try #require(fd >= 0)
    defer { close(fd) }
    #expect(fcntl(fd, F_GETFL) & O_NONBLOCK != 0)
    #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
  }
}

extension EventLoop {
  /// Runs `body` on the loop with an append-only log and a `done` to call once; returns the log.
  func collect(
    _ body: @escaping @Sendable (_ seen: Log, _ done: @escaping @Sendable () -> Void) -> Void
  ) async throws -> [String] {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<[String], Error>) in
      execute {
        let log = Log()
        body(log) { c.resume(returning: log.items) }
      }
    }
  }

  /// Asks the loop until `condition` holds (yielding between asks; no sleep).
  func until(_ condition: @escaping @Sendable () -> Bool) async {
    while (try? await submit(condition)) != true { await Task.yield() }
  }
}

/// A value behind a lock, shareable between tasks and the loop.
final class Locked<Value: Sendable>: Sendable {
  private let mutex: Mutex<Value>
  init(_ value: Value) { mutex = Mutex(value) }
  func withLock<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

/// Confined to the loop thread, like everything a loop's handlers touch.
final class Log: @unchecked Sendable {
  private(set) var items: [String] = []
  func append(_ item: String) { items.append(item) }
}

struct PipeFailed: Error { let errno: Int32 }

func makePipe() throws -> (Int32, Int32) {
  var fds: [Int32] = [-1, -1]
  guard pipe(&fds) == 0 else { throw PipeFailed(errno: errno) }
  return (fds[0], fds[1])
}

/// A small deterministic generator (SplitMix64), so a failure replays.
struct SplitMix: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
