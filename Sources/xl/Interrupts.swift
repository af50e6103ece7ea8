#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// SIGINT and SIGTERM, taken synchronously by the main thread (`sigwait`), which runs the
/// current handler: `xl` cancels the operation in progress, which then cleans up. With no
/// handler installed, xl dies of the signal as usual.
enum Interrupts {
  private static let handler = Mutex<(@Sendable (Int32) -> Void)?>(nil)

  /// Blocks SIGINT and SIGTERM in the calling thread, and so in every thread created after.
  /// Call first thing in main. A signal the parent set to be ignored (a shell does so for
  /// SIGINT in background jobs) stays ignored.
  static func block() {
    var set = handledSignals()
    pthread_sigmask(SIG_BLOCK, &set, nil)
  }

  /// Waits for the blocked signals forever, running the handler for each. Never returns.
  static func takeSignals() -> Never {
    var set = handledSignals()
    while true {
      var received: Int32 = 0
      guard sigwait(&set, &received) == 0 else { continue }
      if let run = handler.withLock({ $0 }) {
        run(received)
      } else {
        // Nothing to clean up: die of the signal, as a shell expects.
        signal(received, SIG_DFL)
        var one = sigset_t()
        sigemptyset(&one)
        sigaddset(&one, received)
        pthread_sigmask(SIG_UNBLOCK, &one, nil)
        raise(received)
      }
    }
  }

  /// Runs `body` with `onInterrupt` as the handler.
  static func handling<T>(_ onInterrupt: @escaping @Sendable (Int32) -> Void, _ body: () async throws -> T) async rethrows -> T {
    handler.withLock { $0 = onInterrupt }
    defer { handler.withLock { $0 = nil } }
    return try await body()
  }

  private static func handledSignals() -> sigset_t {
    var set = sigset_t()
    sigemptyset(&set)
    for s in [SIGINT, SIGTERM] where !isIgnored(s) { sigaddset(&set, s) }
    return set
  }

  private static func isIgnored(_ signal: Int32) -> Bool {
    var current = sigaction()
    sigaction(signal, nil, &current)
    // SIG_IGN is the handler address 1.
    return current.__sigaction_handler.sa_handler.map { unsafeBitCast($0, to: Int.self) } == 1
  }
}
