#if canImport(Glibc)
import Glibc
#endif
import CSpawn
import Reactor

/// One spawn's life on its loop: the I/O layer around `StartupMachine`. It turns what
/// happens on the loop (the monitor's reports and end of stream, its reap, the readiness
/// task's end, timers, the caller's calls) into the machine's events, and carries out the
/// actions it gets back: timers, control messages, kills, reaping, closing descriptors,
/// resuming the waiters of `start` and `confirm`. Every decision is the machine's.
///
/// Confined to `loop`: every method runs on the loop thread, and only there is its state touched.
final class Startup: @unchecked Sendable {
  static let abortTickNanoseconds: UInt64 = 100_000_000

  let loop: EventLoop
  let spawner: Spawner
  let what: String
  let monitorPID: Int32
  private let log: LogFile?
  private let readiness: any ReadinessWait
  private var machine: StartupMachine

  // Resources.
  private var control: Int32
  private var monitorPIDFD: Int32?
  private var watchingMonitorPIDFD = false
  private var daemonPIDFD: Int32?
  private var timers: [StartupMachine.Timer: EventLoop.TimerID] = [:]
  private var readinessTask: Task<Void, Never>?

  // The waiters, and what progress they are shown.
  private var startWaiters: [CheckedContinuation<Result<ProcessIdentity, SpawnError>, Never>] = []
  private var startResult: Result<ProcessIdentity, SpawnError>?
  private var outcomeWaiters: [CheckedContinuation<Result<SpawnConfirmation, SpawnError>, Never>] = []
  /// The outcome as delivered (a failure with the log's tail).
  private(set) var result: Result<SpawnConfirmation, SpawnError>?
  private var abortCheck: (@Sendable (SpawnProgress) -> Bool)?
  private var tickTimer: EventLoop.TimerID?
  private var status: String?

  init(
    loop: EventLoop, spawner: Spawner, command: SpawnCommand, executable: String, began: UInt64,
    log: LogFile?, awaiting: String, readiness: any ReadinessWait, control: Int32, monitorPID: Int32,
    monitorPIDFD: Int32?
  ) {
    self.loop = loop
    self.spawner = spawner
    self.what = command.what
    self.log = log
    self.readiness = readiness
    self.control = control
    self.monitorPID = monitorPID
    self.monitorPIDFD = monitorPIDFD
    machine = StartupMachine(
      StartupMachine.Configuration(
        what: command.what, executable: executable, awaiting: awaiting, began: began,
        timeoutNanoseconds: command.timeout.nanoseconds,
        stopGraceMilliseconds: Int32(clamping: command.stopGrace.nanoseconds / 1_000_000),
        monitorKillable: monitorPIDFD != nil || spawner.reaping == .selective,
        callerReaps: spawner.reaping == .byCaller))
  }

  private var system: SystemCalls { spawner.system }

  // MARK: Entry points (loop thread)

  func begin() {
    loop.register(control, for: .readable) { [self] _ in controlReadable() }
    handle(.begin)
  }

  /// start() waits here for the daemon's identity.
  func awaitStart(_ continuation: CheckedContinuation<Result<ProcessIdentity, SpawnError>, Never>) {
    if let startResult { return continuation.resume(returning: startResult) }
    startWaiters.append(continuation)
  }

  /// confirm() waits here for the outcome; `abort` is polled from now on.
  func awaitOutcome(
    abort: (@Sendable (SpawnProgress) -> Bool)?,
    _ continuation: CheckedContinuation<Result<SpawnConfirmation, SpawnError>, Never>
  ) {
    if let result { return continuation.resume(returning: result) }
    outcomeWaiters.append(continuation)
    if let abort {
      abortCheck = abort
      scheduleTick()
      wake()
    }
  }

  /// Task cancellation or a dropped handle.
  func abort(detail: String) { handle(.abort(detail: detail)) }

  /// The pid is recorded: a confirmed daemon may now be detached. Until then the monitor
  /// stays, so a caller that dies while recording takes the daemon with it.
  func allowDetach() { handle(.recorded) }

  /// The recording hook failed: the daemon must not live on unrecorded, even if it has
  /// confirmed meanwhile (it cannot have been detached yet).
  func recordFailed(_ detail: String) { handle(.recordFailed(detail: detail)) }

  func readinessReported(status: String) {
    self.status = status
    wake()
  }

  func extendDeadline(to newDeadline: UInt64) { handle(.deadlineExtended(to: newDeadline)) }

  /// The caller, owning SIGCHLD, reaped the monitor.
  func monitorReapedByCaller(_ status: WaitStatus) { handle(.monitorReaped(status)) }

  // MARK: Events in, actions out

  private var queued: [StartupMachine.Event] = []
  private var handling = false

  /// One event at a time: events that carrying out an action causes (a reap that succeeds at
  /// once, an abort from the callback) wait until every action of the current one is done.
  private func handle(_ event: StartupMachine.Event) {
    queued.append(event)
    guard !handling else { return }
    handling = true
    while !queued.isEmpty {
      let next = queued.removeFirst()
      for action in machine.handle(next, now: EventLoop.now()) { perform(action) }
    }
    handling = false
    wake()
  }

  private func perform(_ action: StartupMachine.Action) {
    switch action {
    case .arm(let timer, let at):
      if let old = timers[timer] { loop.cancel(old) }
      timers[timer] = loop.schedule(at: at) { [self] in
        timers[timer] = nil
        fired(timer)
      }
    case .cancel(let timer):
      if let old = timers.removeValue(forKey: timer) { loop.cancel(old) }
    case .deliverStart(var result):
      if case .failure(let error) = result { result = .failure(withLogTail(error)) }
      startResult = result
      let waiters = startWaiters
      startWaiters = []
      for waiter in waiters { waiter.resume(returning: result) }
    case .startReadiness(let identity):
      startReadiness(identity)
    case .cancelReadiness:
      readinessTask?.cancel()
    case .closeReadiness:
      readiness.close()
    case .closePIDFDs:
      if let fd = daemonPIDFD { system.close(fd) }
      daemonPIDFD = nil
      if let fd = monitorPIDFD {
        if watchingMonitorPIDFD { loop.deregister(fd) }
        watchingMonitorPIDFD = false
        system.close(fd)
      }
      monitorPIDFD = nil
    case .sendDetach:
      // A send that fails means the monitor is gone: its end of stream follows.
      try? system.sendControl(control, Int32(CSPAWN_CONTROL_DETACH), 0)
    case .sendStop(let grace):
      try? system.sendControl(control, Int32(CSPAWN_CONTROL_STOP), grace)
    case .killDaemon:
      killDaemon()
    case .killMonitor:
      if killMonitor() { handle(.monitorKilled) }
    case .closeControl:
      loop.deregister(control)
      system.close(control)
      control = -1
    case .reapMonitor:
      tryReap()
    case .finish(let result):
      finish(result)
    }
  }

  private func fired(_ timer: StartupMachine.Timer) {
    switch timer {
    case .deadline:
      handle(.deadlineFired)
    case .settle:
      // Exiting (PF_EXITING): asked only while its pidfd is held and does not yet show the
      // exit. A pid already reaped and reused could only lengthen the wait, which the
      // deadline bounds.
      let exited = daemonPIDFD.map(isReadableNow) ?? false
      let exiting = daemonPIDFD != nil && !exited && machine.identity.map { isExiting($0.pid) } == true
      handle(.settleTimerFired(daemonExited: exited, daemonExiting: exiting))
    case .monitorLate:
      handle(.monitorLate)
    }
  }

  // MARK: The monitor

  private func controlReadable() {
    while control >= 0 {
      let received: (report: cspawn_report, pidfd: Int32?)?
      do {
        received = try system.receiveReport(control)
      } catch .EAGAIN {
        break
      } catch {
        received = nil  // an error on the socket ends it as surely as its end of stream
      }
      guard let (report, pidfd) = received else {
        handle(.endOfStream)
        break
      }
      if let event = event(for: report, pidfd: pidfd) { handle(.report(event)) }
    }
  }

  private func event(for report: cspawn_report, pidfd: Int32?) -> StartupMachine.Report? {
    switch report.kind {
    case Int32(CSPAWN_REPORT_STARTED):
      if let pidfd {
        if let old = daemonPIDFD { system.close(old) }
        daemonPIDFD = pidfd
      }
      let bootID = (try? ProcessIdentity.currentBootID()) ?? ""
      return .started(ProcessIdentity(pid: report.pid, startTime: report.start_time, bootID: bootID))
    case Int32(CSPAWN_REPORT_EXEC_FAILED):
      return .execFailed(SystemErrno(rawValue: report.value))
    case Int32(CSPAWN_REPORT_EXITED):
      return .exited(WaitStatus(rawValue: report.value))
    case Int32(CSPAWN_REPORT_FAILED):
      let call = [CSPAWN_STAGE_SIGNALFD: "signalfd", CSPAWN_STAGE_PIPE: "pipe", CSPAWN_STAGE_FORK: "fork"][Int(report.stage)]
      return .failed(SystemErrno(rawValue: report.value), call: call ?? "the startup monitor")
    default:
      if let pidfd { system.close(pidfd) }
      return nil
    }
  }

  private func killDaemon() {
    if let daemonPIDFD {
      try? system.pidfdSendSignal(daemonPIDFD, SIGKILL)
    } else if let identity = machine.identity, let now = try? ProcessIdentity.of(pid: identity.pid),
      now.startTime == identity.startTime
    {
      try? system.kill(identity.pid, SIGKILL)  // no pidfds on this kernel: checked, then signalled
    }
  }

  /// Only through its pidfd, or by pid while it is surely our unreaped child (selective
  /// reaping; the machine asks only then). True if the signal went.
  private func killMonitor() -> Bool {
    if let fd = monitorPIDFD { return (try? system.pidfdSendSignal(fd, SIGKILL)) != nil }
    return (try? system.kill(monitorPID, SIGKILL)) != nil
  }

  /// Selective reaping: only our monitor, by pidfd, else by pid; never waitpid(-1).
  private func tryReap() {
    guard machine.monitorStatus == nil else { return }
    do {
      if let status = try reapMonitorNow() { return handle(.monitorReaped(status)) }
    } catch where error == .EINTR {
      return tryReap()
    } catch where error == .ECHILD {
      // Someone reaped it for us, against the reaping mode. It is gone all the same.
      return handle(.monitorReaped(nil))
    } catch {
      // Anything else says nothing of its end: only its pidfd does (readable once it exited).
      if let fd = monitorPIDFD, isReadableNow(fd) { return handle(.monitorReaped(nil)) }
    }
    // Not yet a zombie (the control socket closes a moment before the exit completes).
    if let fd = monitorPIDFD {
      if !watchingMonitorPIDFD {
        watchingMonitorPIDFD = true
        loop.register(fd, for: .readable) { [self] _ in
          loop.deregister(fd)
          watchingMonitorPIDFD = false
          tryReap()
        }
      }
    } else {
      // No pidfd to watch (kernels before 5.3): look again shortly.
      loop.schedule(afterNanoseconds: 1_000_000) { [self] in tryReap() }
    }
  }

  private func reapMonitorNow() throws(SystemErrno) -> WaitStatus? {
    if let fd = monitorPIDFD {
      do {
        return try system.waitid(.pidfd(fd), true)?.status
      } catch where error == .EINVAL || error == .ENOSYS {
        // No waitid(P_PIDFD) before Linux 5.4: by pid, still only ours.
      }
    }
    return try system.waitid(.pid(monitorPID), true)?.status
  }

  // MARK: Readiness

  private func startReadiness(_ identity: ProcessIdentity) {
    let context = ReadinessContext(what: what, identity: identity, loop: loop, startup: self)
    let readiness = self.readiness
    readinessTask = Task { [self] in
      let outcome: Result<String, any Error>
      do {
        outcome = .success(try await readiness.wait(context))
      } catch {
        outcome = .failure(error)
      }
      loop.execute { [self] in readinessEnded(outcome) }
    }
  }

  private func readinessEnded(_ outcome: Result<String, any Error>) {
    switch outcome {
    case .success(let value):
      handle(.readinessSucceeded(value))
    case .failure(let error as SpawnError):
      handle(.readinessFailed(error))
    case .failure(let error):
      handle(.readinessFailed(SpawnError(.protocolFailed, what: what, detail: "\(error)")))
    }
    // Its descriptors are closed only now that nothing in the task can still use them.
    handle(.readinessEnded)
  }

  // MARK: Abort and progress

  private func scheduleTick() {
    guard tickTimer == nil, !machine.isDecided else { return }
    tickTimer = loop.schedule(afterNanoseconds: Startup.abortTickNanoseconds) { [self] in
      tickTimer = nil
      wake()
      scheduleTick()
    }
  }

  /// Every wake-up asks the abort callback, which also feeds progress displays.
  private func wake() {
    guard !machine.isDecided, let abortCheck else { return }
    let progress = SpawnProgress(
      what: what, pid: machine.identity?.pid ?? 0,
      elapsed: .nanoseconds(Int64(clamping: EventLoop.now() &- machine.configuration.began)),
      awaiting: machine.configuration.awaiting, status: status)
    if abortCheck(progress) { abort(detail: "aborted by the caller") }
  }

  // MARK: The outcome

  private func withLogTail(_ error: SpawnError) -> SpawnError {
    var error = error
    error.logTail = log?.tail() ?? ""
    return error
  }

  private func finish(_ outcome: Result<SpawnConfirmation, SpawnError>) {
    var outcome = outcome
    if case .failure(let error) = outcome { outcome = .failure(withLogTail(error)) }
    result = outcome
    abortCheck = nil
    if let tickTimer { loop.cancel(tickTimer) }
    tickTimer = nil
    // Every descriptor is closed (`closeControl`, `closeReadiness`, `closePIDFDs`), and start
    // waiters were resumed just before (`deliverStart`).
    let waiters = outcomeWaiters
    outcomeWaiters = []
    for waiter in waiters { waiter.resume(returning: outcome) }
  }
}
