#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Reactor

@Suite(.serialized) struct EventLoopTests {
  @Test func executeRunsOnTheLoopThread() async throws {
    let loop = EventLoop(name: "test-exec")
    let onLoop = try await loop.submit { loop.inLoop }
    #expect(onLoop)
    #expect(!loop.inLoop)
    loop.shutdown()
  }

  @Test func waitReportsReadablePipe() async throws {
    let loop = EventLoop(name: "test-pipe")
    var fds: [Int32] = [0, 0]
    #expect(pipe(&fds) == 0)
    let (readEnd, writeEnd) = (fds[0], fds[1])
    defer { close(readEnd); close(writeEnd) }
    async let events = loop.wait(for: .readable, on: readEnd)
    try await Task.sleep(for: .milliseconds(5))
    #expect(write(writeEnd, "x", 1) == 1)
    #expect(try await events.contains(.readable))
    loop.shutdown()
  }

  @Test func waitIsCancellable() async throws {
    let loop = EventLoop(name: "test-cancel")
    var fds: [Int32] = [0, 0]
    #expect(pipe(&fds) == 0)
    let (readEnd, writeEnd) = (fds[0], fds[1])
    defer { close(readEnd); close(writeEnd) }
    let task = Task { try await loop.wait(for: .readable, on: readEnd) }
    try await Task.sleep(for: .milliseconds(5))
    task.cancel()
    await #expect(throws: CancellationError.self) { try await task.value }
    loop.shutdown()
  }

  @Test func timersFireInDeadlineOrderAndCancelledOnesDoNot() async throws {
    let loop = EventLoop(name: "test-timer")
    let order = try await withCheckedThrowingContinuation { (c: CheckedContinuation<[Int], Error>) in
      loop.execute {
        nonisolated(unsafe) var seen: [Int] = []
        let start = EventLoop.now()
        loop.schedule(at: start + 20_000_000) { seen.append(2) }
        let cancelled = loop.schedule(at: start + 10_000_000) { seen.append(99) }
        loop.schedule(at: start + 5_000_000) { seen.append(1) }
        loop.cancel(cancelled)
        loop.schedule(at: start + 30_000_000) { c.resume(returning: seen) }
      }
    }
    #expect(order == [1, 2])
    loop.shutdown()
  }
}
