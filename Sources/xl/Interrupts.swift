#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// SIGINT and SIGTERM, taken synchronously by one thread of their own (`sigwait`), which
/// runs the current handler: `xl` cancels the operation in progress, which then cleans up.
enum Interrupts {
  private static let handler = Mutex<(@Sendable (Int32) -> Void)?>(nil)
  private static let signals: [Int32] = [SIGINT, SIGTERM]

  /// Blocks the signals in the calling thread (so in every thread created after) and starts
  /// the waiting thread. Call first thing in main.
  static func blockInAllThreads() {
    var set = sigset_t()
    sigemptyset(&set)
    for s in signals { sigaddset(&set, s) }
    pthread_sigmask(SIG_BLOCK, &set, nil)
    var thread = pthread_t()
    pthread_create(&thread, nil, { _ in
      var set = sigset_t()
      sigemptyset(&set)
      for s in Interrupts.signals { sigaddset(&set, s) }
      while true {
        var received: Int32 = 0
        guard sigwait(&set, &received) == 0 else { continue }
        if let run = Interrupts.handler.withLock({ $0 }) {
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
    }, nil)
    pthread_detach(thread)
  }

  /// Runs `body` with `onInterrupt` as the handler.
  static func handling<T>(_ onInterrupt: @escaping @Sendable (Int32) -> Void, _ body: () async throws -> T) async rethrows -> T {
    handler.withLock { $0 = onInterrupt }
    defer { handler.withLock { $0 = nil } }
    return try await body()
  }
}
