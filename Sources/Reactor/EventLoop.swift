#if canImport(Glibc)
import Glibc
#endif
import CReactor
import HeapModule
import Synchronization

/// An epoll event loop running on one dedicated thread.
///
/// Everything the project waits on — sockets, pidfds, pipes, timers — is waited on here,
/// never by blocking a thread of Swift's cooperative pool. Handlers run on the loop thread;
/// state they touch is confined to it (types that hold such state say so and are
/// `@unchecked Sendable` for that reason).
public final class EventLoop: @unchecked Sendable {
  /// Readiness reported by `epoll_wait`.
  public struct Events: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let readable = Events(rawValue: UInt32(EPOLLIN.rawValue))
    public static let writable = Events(rawValue: UInt32(EPOLLOUT.rawValue))
    public static let hangup = Events(rawValue: UInt32(EPOLLHUP.rawValue) | UInt32(EPOLLRDHUP.rawValue))
    public static let error = Events(rawValue: UInt32(EPOLLERR.rawValue))
    public var description: String {
      [(Events.readable, "r"), (.writable, "w"), (.hangup, "hup"), (.error, "err")]
        .filter { contains($0.0) }.map(\.1).joined(separator: "|")
    }
  }

  public typealias Handler = @Sendable (Events) -> Void

  /// A scheduled timer, to cancel it.
  public struct TimerID: Hashable, Sendable { fileprivate let value: UInt64 }

  /// The process-wide loop the libraries use unless given another.
  public static let shared = EventLoop(name: "xl-reactor")

  private let epollFD: Int32
  private let wakeFD: Int32
  private let pending = Mutex<[@Sendable () -> Void]>([])
  private let threadID = Mutex<pthread_t?>(nil)
  private let stopped = Atomic<Bool>(false)

  // Loop-thread state.
  private var handlers: [Int32: Handler] = [:]
  private var timers = Heap<Timer>()
  private var timerWork: [UInt64: @Sendable () -> Void] = [:]
  private var nextTimer: UInt64 = 0
  private var finished: (@Sendable () -> Void)?

  private struct Timer: Comparable {
    var deadline: UInt64
    var id: UInt64
    static func < (a: Timer, b: Timer) -> Bool { (a.deadline, a.id) < (b.deadline, b.id) }
  }

  /// Starts a loop on a new thread named `name`.
  public init(name: String) {
    epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
    wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
    precondition(epollFD >= 0 && wakeFD >= 0, "epoll/eventfd unavailable: errno \(errno)")
    var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(fd: wakeFD))
    epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event)
    let box = Unmanaged.passRetained(self)
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { arg in
      let loop = Unmanaged<EventLoop>.fromOpaque(arg!).takeRetainedValue()
      loop.run()
      return nil
    }, box.toOpaque())
    precondition(rc == 0, "pthread_create failed: \(rc)")
    pthread_detach(thread)
    _ = creactor_set_thread_name(thread, name)
    threadID.withLock { $0 = thread }
  }

  /// Monotonic time in nanoseconds (`clock_gettime(CLOCK_MONOTONIC)`), the loop's timebase.
  public static func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
  }

  /// True when called on this loop's thread.
  public var inLoop: Bool {
    guard let id = threadID.withLock({ $0 }) else { return false }
    return pthread_equal(pthread_self(), id) != 0
  }

  /// Runs `work` on the loop thread, soon; in order with other `execute` calls.
  public func execute(_ work: @escaping @Sendable () -> Void) {
    pending.withLock { $0.append(work) }
    var one: UInt64 = 1
    _ = write(wakeFD, &one, 8)
  }

  /// Watches `fd` for `events`. Loop thread only. The handler runs on the loop thread
  /// until `deregister`. A level-triggered registration: handle or disable what you asked for.
  public func register(_ fd: Int32, for events: Events, handler: @escaping Handler) {
    precondition(inLoop, "EventLoop.register off the loop thread")
    var event = epoll_event(events: events.rawValue, data: epoll_data_t(fd: fd))
    let op = handlers[fd] == nil ? EPOLL_CTL_ADD : EPOLL_CTL_MOD
    var rc = epoll_ctl(epollFD, op, fd, &event)
    if rc != 0 && op == EPOLL_CTL_MOD && errno == ENOENT {
      // Closed without `deregister` (the kernel dropped it), and the number reused: add it anew.
      rc = epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event)
    }
    if rc != 0 {
      handlers.removeValue(forKey: fd)
      // A regular file or a closed fd cannot be watched: report it at once as readable+error.
      let err = Events.error
      execute { handler(err.union(.readable)) }
      return
    }
    handlers[fd] = handler
  }

  /// Changes which events `fd` is watched for. Loop thread only.
  public func modify(_ fd: Int32, for events: Events) {
    precondition(inLoop)
    guard handlers[fd] != nil else { return }
    var event = epoll_event(events: events.rawValue, data: epoll_data_t(fd: fd))
    epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event)
  }

  /// Whether `fd` has a handler. Loop thread only.
  func isRegistered(_ fd: Int32) -> Bool {
    precondition(inLoop)
    return handlers[fd] != nil
  }

  /// Stops watching `fd` (call before closing it). Loop thread only.
  public func deregister(_ fd: Int32) {
    precondition(inLoop)
    guard handlers.removeValue(forKey: fd) != nil else { return }
    epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
  }

  /// Runs `work` on the loop thread at `deadline` (`EventLoop.now()` timebase). Loop thread only.
  @discardableResult
  public func schedule(at deadline: UInt64, _ work: @escaping @Sendable () -> Void) -> TimerID {
    precondition(inLoop)
    nextTimer += 1
    timers.insert(Timer(deadline: deadline, id: nextTimer))
    timerWork[nextTimer] = work
    return TimerID(value: nextTimer)
  }

  /// Runs `work` after `nanoseconds`. Loop thread only.
  @discardableResult
  public func schedule(afterNanoseconds nanoseconds: UInt64, _ work: @escaping @Sendable () -> Void) -> TimerID {
    schedule(at: EventLoop.now() &+ nanoseconds, work)
  }

  /// Cancels a timer that has not fired. Loop thread only.
  public func cancel(_ timer: TimerID) {
    precondition(inLoop)
    timerWork.removeValue(forKey: timer.value)
  }

  /// Stops the loop after the work already queued; `done` runs on the loop thread last.
  /// The loop's fds are closed. The shared loop is never shut down.
  public func shutdown(_ done: (@Sendable () -> Void)? = nil) {
    execute { [self] in
      finished = done
      stopped.store(true, ordering: .releasing)
    }
  }

  private func run() {
    var events = [epoll_event](repeating: epoll_event(), count: 64)
    while !stopped.load(ordering: .acquiring) {
      let timeout = nextTimeoutMilliseconds()
      let n = events.withUnsafeMutableBufferPointer {
        epoll_wait(epollFD, $0.baseAddress, Int32($0.count), timeout)
      }
      if n < 0 {
        if errno == EINTR { continue }
        fatalError("epoll_wait failed: errno \(errno)")
      }
      for i in 0..<Int(n) {
        let fd = events[i].data.fd
        if fd == wakeFD {
          var value: UInt64 = 0
          _ = read(wakeFD, &value, 8)
          continue
        }
        // A handler may deregister others: look each one up afresh.
        handlers[fd]?(Events(rawValue: events[i].events))
      }
      runPending()
      runDueTimers()
    }
    finished?()
    close(epollFD)
    close(wakeFD)
  }

  private func runPending() {
    while true {
      let batch = pending.withLock { queue -> [@Sendable () -> Void] in
        defer { queue.removeAll(keepingCapacity: true) }
        return queue
      }
      if batch.isEmpty { return }
      for work in batch { work() }
    }
  }

  private func runDueTimers() {
    let now = EventLoop.now()
    while let first = timers.min, first.deadline <= now {
      timers.removeMin()
      if let work = timerWork.removeValue(forKey: first.id) { work() }
    }
  }

  private func nextTimeoutMilliseconds() -> Int32 {
    while let first = timers.min, timerWork[first.id] == nil { timers.removeMin() }
    guard let first = timers.min else { return -1 }
    let now = EventLoop.now()
    if first.deadline <= now { return 0 }
    // Round up so a timer never fires early.
    return Int32(min((first.deadline - now + 999_999) / 1_000_000, 60_000))
  }
}
