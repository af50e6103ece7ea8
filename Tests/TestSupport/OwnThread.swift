import Reactor
import Testing
import XenStore

/// Runs each test of a suite (or one test) on a thread of its own, not on Swift's cooperative
/// pool: for tests that compute for a second or more without suspending (random request
/// storms, replays, fuzzing). The pool has as many threads as cores — two here — and two such
/// tests on them held every other test's tasks: spawn confirmations resumed from the event
/// loop waited, and timed out at 30 s under load (thread stacks showed both pool threads in
/// `RandomRequestTests` and `PersistenceRecorderTests`).
public struct OwnThread: TestTrait, SuiteTrait, TestScoping {
  public var isRecursive: Bool { true }

  public func provideScope(
    for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
  ) async throws {
    // Each test case on its own thread; a suite's or a test's outer scope as it is.
    guard testCase != nil || !test.isSuite && !test.isParameterized else { return try await function() }
    let thread = EventLoop(name: "test-own-thread")
    defer { thread.shutdown() }
    try await withTaskExecutorPreference(XenStoreLoopExecutor(loop: thread)) { try await function() }
  }
}

extension Trait where Self == OwnThread {
  /// See `OwnThread`.
  public static var ownThread: Self { OwnThread() }
}
