#if canImport(Glibc)
import Glibc
#endif
import Synchronization

extension EventLoop {
  /// Suspends until `fd` reports one of `events`, then stops watching it.
  ///
  /// Throws `CancellationError` if the task is cancelled first. The fd must not be
  /// registered with this loop by anyone else while this waits.
  public func wait(for events: Events, on fd: Int32) async throws -> Events {
    let once = OnceResume<Events>()
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Events, Error>) in
        once.set(continuation)
        execute { [self] in
          guard !once.isDone else { return }
          register(fd, for: events) { [self] got in
            deregister(fd)
            once.resume(returning: got)
          }
        }
      }
    } onCancel: {
      execute { [self] in
        if once.resume(throwing: CancellationError()) { deregister(fd) }
      }
    }
  }

  /// Runs `body` on the loop thread and returns its result.
  public func submit<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    if inLoop { return try body() }
    return try await withCheckedThrowingContinuation { continuation in
      execute { continuation.resume(with: Result { try body() }) }
    }
  }

  /// Runs `body` on the loop thread and blocks the calling thread until it returns.
  /// For synchronous callers only (never from the loop itself, never from async code).
  public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
    if inLoop { return try body() }
    let result = Mutex<Result<T, Error>?>(nil)
    let done = DispatchSemaphoreLite()
    execute {
      result.withLock { $0 = Result { try body() } }
      done.signal()
    }
    done.wait()
    return try result.withLock { $0! }.get()
  }
}

/// A continuation resumed at most once, from whichever side comes first.
public final class OnceResume<T: Sendable>: Sendable {
  private struct State {
    var continuation: CheckedContinuation<T, Error>?
    var early: Result<T, Error>?
    var done = false
  }
  private let state = Mutex(State())

  public init() {}

  public var isDone: Bool { state.withLock { $0.done } }

  /// Installs the continuation; resumes it at once if a result came first.
  public func set(_ continuation: CheckedContinuation<T, Error>) {
    let early = state.withLock { s -> Result<T, Error>? in
      if let early = s.early { s.early = nil; return early }
      s.continuation = continuation
      return nil
    }
    if let early { continuation.resume(with: early) }
  }

  @discardableResult public func resume(returning value: T) -> Bool { resume(with: .success(value)) }
  @discardableResult public func resume(throwing error: Error) -> Bool { resume(with: .failure(error)) }

  /// Returns false if already resumed.
  @discardableResult public func resume(with result: Result<T, Error>) -> Bool {
    let continuation = state.withLock { s -> CheckedContinuation<T, Error>?? in
      if s.done { return .none }
      s.done = true
      if let c = s.continuation { s.continuation = nil; return .some(c) }
      s.early = result
      return .some(nil)
    }
    guard case .some(let c) = continuation else { return false }
    c?.resume(with: result)
    return true
  }
}

/// A counting semaphore on a futex-free pipe-less primitive: pthread mutex + condition.
final class DispatchSemaphoreLite: @unchecked Sendable {
  private var mutex = pthread_mutex_t()
  private var cond = pthread_cond_t()
  private var count = 0
  init() {
    pthread_mutex_init(&mutex, nil)
    pthread_cond_init(&cond, nil)
  }
  deinit {
    pthread_cond_destroy(&cond)
    pthread_mutex_destroy(&mutex)
  }
  func signal() {
    pthread_mutex_lock(&mutex)
    count += 1
    pthread_cond_signal(&cond)
    pthread_mutex_unlock(&mutex)
  }
  func wait() {
    pthread_mutex_lock(&mutex)
    while count == 0 { pthread_cond_wait(&cond, &mutex) }
    count -= 1
    pthread_mutex_unlock(&mutex)
  }
}
