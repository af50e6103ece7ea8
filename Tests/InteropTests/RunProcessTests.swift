#if canImport(Glibc)
import Glibc
#endif
import Testing
import InteropSupport
import TestSupport

/// The test helpers that wait for programs must hold no thread of Swift's cooperative pool
/// while they wait: with 2 cores the pool has 2 threads, and two tests blocked in a program's
/// run once stalled every other test of the process for 45 s (spawn confirmations timing out,
/// pure tests "passing after 40 s"), and so did two tests computing for seconds.
@Suite struct RunProcessTests {
  /// More programs than the pool has threads each wait for a line on a FIFO of their own; the
  /// lines come from one more program, started only after them. If a wait held a thread, the
  /// writer could never start and the readers would be killed at their time limit (status -1).
  @Test func waitingForProgramsHoldsNoPoolThread() async throws {
    let directory = TemporaryDirectory("runwait")
    defer { directory.remove() }
    let count = 2 * Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) + 2
    let fifos = (0..<count).map { directory.appending("fifo\($0)") }
    for fifo in fifos { try #require(mkfifo(fifo, 0o600) == 0) }
    let results = try await withThrowingTaskGroup(of: ProcessResult.self) { group in
      for fifo in fifos {
        group.addTask { try await run(["/bin/sh", "-c", "read line < \(fifo); echo $line"], timeout: 20) }
      }
      group.addTask {
        try await run(["/bin/sh", "-c", fifos.map { "echo go > \($0)" }.joined(separator: "; ")], timeout: 20)
      }
      return try await group.reduce(into: []) { $0.append($1) }
    }
    #expect(results.count == count + 1)
    #expect(results.allSatisfy { $0.status == 0 }, "\(results)")
    #expect(results.filter { $0.stdout == "go\n" }.count == count)
  }

  /// A test that computes for long without suspending runs on a thread of its own
  /// (`.ownThread`), not on the pool (a synchronous test body too).
  @Test(.ownThread) func aTestMarkedOwnThreadRunsOffThePool() throws {
    #expect(try readFile("/proc/thread-self/comm") == "test-own-thread\n")
  }

  /// A program past its time limit is killed and reported as such (-1), its end still awaited.
  @Test func aProgramPastItsLimitIsKilled() async throws {
    let result = try await run(["/bin/sleep", "30"], timeout: 1)
    #expect(result.status == -1)
  }
}
