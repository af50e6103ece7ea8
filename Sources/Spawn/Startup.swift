#if canImport(Glibc)
import Glibc
#endif
import CSpawn
import Reactor

/// One spawn's life on its loop, from the fork of the monitor to the outcome. Confined to
/// `loop`: every method runs on the loop thread, and only there is its state touched.
///
/// States, in order:
/// - starting: the monitor is forked; awaiting its STARTED report (the daemon's pid).
/// - waiting: the readiness wait runs in a task; the deadline is armed. First of: readiness
///   value, readiness failure, daemon death, exec failure, monitor gone, deadline, abort
///   (callback, cancellation, dropped handle).
/// - settling: the readiness wait failed; for `settleNanoseconds` a death report wins,
///   since a daemon that dies usually closes its sockets just before (QEMU's QMP socket);
///   longer while the daemon's pidfd shows it has exited (its report is then on its way).
/// - decided: the outcome is fixed. Confirmed: DETACH sent, the monitor exits, the daemon
///   lives on. Failed: STOP sent (SIGTERM, SIGKILL after the grace), the monitor reports the
///   death and exits. Either way the monitor is reaped before the outcome is delivered.
///   A monitor that has not ended well after it should have (a monitor stopped or stuck) is
///   killed through its pidfd, so no outcome waits on it for ever.
/// - finished: `result` is set and delivered; the descriptors are closed.
final class Startup: @unchecked Sendable {
  static let settleNanoseconds: UInt64 = 250_000_000
  static let abortTickNanoseconds: UInt64 = 100_000_000
  /// How late a monitor may end: after DETACH or its last report it only exits; after STOP it
  /// also waits for the daemon's death after SIGKILL, which for a large guest's QEMU (freeing
  /// its memory) can take seconds.
  static let monitorExitSlackNanoseconds: UInt64 = 5_000_000_000
  static let monitorStopSlackNanoseconds: UInt64 = 30_000_000_000

  let loop: EventLoop
  let spawner: Spawner
  let what: String
  let executable: String
  let began: UInt64
  let monitorPID: Int32
  private let timeout: Duration
  private let stopGraceMilliseconds: Int32
  private let log: LogFile?
  private let awaiting: String
  private let readiness: any ReadinessWait

  // The monitor.
  private var control: Int32
  private var monitorPIDFD: Int32?
  private var watchingMonitorPIDFD = false
  private var monitorEnded = false
  private var monitorReaped = false
  private var monitorStatus: WaitStatus?
  private var monitorDiedUnexpectedly = false
  private var monitorTimer: EventLoop.TimerID?
  private var monitorKilledUnresponsive = false
  /// Whether the pid is recorded (start's hook ran), so a confirmed daemon may be let go.
  private var detachAllowed = false
  private var detachSent = false

  // The daemon.
  private(set) var identity: ProcessIdentity?
  private var daemonPIDFD: Int32?
  private var daemonEnded = false

  // The wait.
  private var deadline: UInt64
  private var deadlineTimer: EventLoop.TimerID?
  private var settleTimer: EventLoop.TimerID?
  private var tickTimer: EventLoop.TimerID?
  private var readinessTask: Task<Void, Never>?
  private var readinessRunning = false
  private var status: String?
  private var settling: SpawnError?
  private var abortCheck: (@Sendable (SpawnProgress) -> Bool)?

  private enum Decision {
    case confirmed(value: String, at: UInt64)
    case failed(SpawnError)
  }
  private var decision: Decision?
  private(set) var result: Result<SpawnConfirmation, SpawnError>?
  private var startWaiters: [CheckedContinuation<Result<ProcessIdentity, SpawnError>, Never>] = []
  private var startDelivered = false
  private var outcomeWaiters: [CheckedContinuation<Result<SpawnConfirmation, SpawnError>, Never>] = []

  init(
    loop: EventLoop, spawner: Spawner, command: SpawnCommand, executable: String, began: UInt64,
    log: LogFile?, awaiting: String, readiness: any ReadinessWait, control: Int32, monitorPID: Int32,
    monitorPIDFD: Int32?
  ) {
    self.loop = loop
    self.spawner = spawner
    self.what = command.what
    self.executable = executable
    self.began = began
    self.timeout = command.timeout
    self.stopGraceMilliseconds = Int32(clamping: command.stopGrace.nanoseconds / 1_000_000)
    self.log = log
    self.awaiting = awaiting
    self.readiness = readiness
    self.control = control
    self.monitorPID = monitorPID
    self.monitorPIDFD = monitorPIDFD
    self.deadline = began.saturatingAdd(command.timeout.nanoseconds)
  }

  private var system: SystemCalls { spawner.system }
  private var elapsed: Duration { .nanoseconds(Int64(clamping: EventLoop.now() &- began)) }

  // MARK: Entry points (loop thread)

  func begin() {
    loop.register(control, for: .readable) { [self] _ in controlReadable() }
    deadlineTimer = loop.schedule(at: deadline) { [self] in deadlinePassed() }
  }

  /// start() waits here for the daemon's identity.
  func awaitStart(_ continuation: CheckedContinuation<Result<ProcessIdentity, SpawnError>, Never>) {
    if startDelivered, let identity {
      continuation.resume(returning: .success(identity))
    } else if case .failure(let error)? = result {
      continuation.resume(returning: .failure(error))
    } else {
      startWaiters.append(continuation)
    }
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
  func abort(detail: String) {
    decide(.failed(failure(.aborted, detail: detail)))
  }

  /// The pid is recorded: a confirmed daemon may now be detached. Until then the monitor
  /// stays, so a caller that dies while recording takes the daemon with it.
  func allowDetach() {
    detachAllowed = true
    if case .confirmed? = decision { detach() }
  }

  /// The recording hook failed: the daemon must not live on unrecorded, even if it has
  /// confirmed meanwhile (it cannot have been detached yet).
  func recordFailed(_ detail: String) {
    let error = failure(.recordFailed, detail: detail)
    if case .confirmed? = decision, result == nil {
      decision = .failed(error)
      if !monitorEnded { _ = cspawn_send_control(control, Int32(CSPAWN_CONTROL_STOP), stopGraceMilliseconds) }
      expectMonitorEnd(stopping: true)
      return finishIfDone()
    }
    decide(.failed(error))
  }

  private func detach() {
    guard !detachSent, !monitorEnded else { return }
    detachSent = true
    _ = cspawn_send_control(control, Int32(CSPAWN_CONTROL_DETACH), 0)
    expectMonitorEnd(stopping: false)
  }

  /// The monitor has been told to end, or to stop the daemon (or reported the daemon's end,
  /// and exits after it): if it has not ended in time, it is stuck, and killed.
  private func expectMonitorEnd(stopping: Bool) {
    guard !monitorEnded else { return }
    if let monitorTimer { loop.cancel(monitorTimer) }
    let limit = stopping
      ? (UInt64(stopGraceMilliseconds) * 1_000_000).saturatingAdd(Startup.monitorStopSlackNanoseconds)
      : Startup.monitorExitSlackNanoseconds
    monitorTimer = loop.schedule(afterNanoseconds: limit) { [self] in
      monitorTimer = nil
      killUnresponsiveMonitor()
    }
  }

  /// Only through its pidfd, or by pid while it is surely our unreaped child (selective
  /// reaping): a caller that reaps by itself may have reaped it, and the pid be reused.
  private func killUnresponsiveMonitor() {
    guard !monitorEnded else { return }
    if let fd = monitorPIDFD {
      guard (try? system.pidfdSendSignal(fd, SIGKILL)) != nil else { return }
    } else if spawner.reaping == .selective {
      guard (try? system.kill(monitorPID, SIGKILL)) != nil else { return }
    } else {
      return
    }
    // Its end of stream follows: `monitorClosed` kills the daemon unless it was let go.
    monitorKilledUnresponsive = true
  }

  func readinessReported(status: String) {
    self.status = status
    wake()
  }

  func extendDeadline(to newDeadline: UInt64) {
    if newDeadline > deadline { deadline = newDeadline }
    wake()
  }

  /// The caller, owning SIGCHLD, reaped the monitor.
  func monitorReapedByCaller(_ status: WaitStatus) {
    monitorWasReaped(status)
  }

  // MARK: The monitor's reports

  private func controlReadable() {
    while control >= 0 {
      var report = cspawn_report()
      var pidfd: Int32 = -1
      let n = cspawn_receive_report(control, &report, &pidfd)
      if n == MemoryLayout<cspawn_report>.size {
        received(report, pidfd: pidfd >= 0 ? pidfd : nil)
      } else if n > 0 {
        if pidfd >= 0 { close(pidfd) }  // a torn message cannot happen on SOCK_SEQPACKET; ignore it
      } else if n < 0 && errno == EAGAIN {
        break
      } else {
        monitorClosed()
      }
    }
    wake()
  }

  private func received(_ report: cspawn_report, pidfd: Int32?) {
    switch report.kind {
    case Int32(CSPAWN_REPORT_STARTED):
      daemonPIDFD = pidfd
      daemonStarted(pid: report.pid, startTime: report.start_time)
    case Int32(CSPAWN_REPORT_EXEC_FAILED):
      endReported()
      decide(.failed(failure(.execFailed, errno: Errno(rawValue: report.value), detail: executable)))
    case Int32(CSPAWN_REPORT_EXITED):
      endReported()
      daemonExited(WaitStatus(rawValue: report.value))
    case Int32(CSPAWN_REPORT_FAILED):
      endReported()
      let call = [CSPAWN_STAGE_SIGNALFD: "signalfd", CSPAWN_STAGE_PIPE: "pipe", CSPAWN_STAGE_FORK: "fork"][Int(report.stage)]
      decide(.failed(failure(.spawnFailed, errno: Errno(rawValue: report.value), detail: call ?? "the startup monitor")))
    default:
      if let pidfd { close(pidfd) }
    }
  }

  /// The monitor reported the daemon's end (or its own failure); it exits right after.
  private func endReported() {
    daemonEnded = true
    expectMonitorEnd(stopping: false)
  }

  private func daemonStarted(pid: Int32, startTime: UInt64) {
    let bootID = (try? ProcessIdentity.currentBootID()) ?? ""
    let identity = ProcessIdentity(pid: pid, startTime: startTime, bootID: bootID)
    self.identity = identity
    guard decision == nil else { return }
    startDelivered = true
    for waiter in startWaiters { waiter.resume(returning: .success(identity)) }
    startWaiters = []
    startReadiness(identity)
  }

  private func daemonExited(_ status: WaitStatus) {
    guard decision == nil else { return }
    let code: SpawnError.Code =
      status.exitCode == 0 ? .exitedZero : status.exitCode != nil ? .exited : .killedBySignal
    decide(.failed(failure(code, status: status)))
  }

  /// End of the control stream: the monitor exited (or is exiting).
  private func monitorClosed() {
    loop.deregister(control)
    close(control)
    control = -1
    monitorEnded = true
    if !daemonEnded && !detachSent {
      // The monitor died without reporting the daemon's end: the daemon may live on
      // unwatched. Kill it, through its pidfd where there is one.
      monitorDiedUnexpectedly = true
      killDaemon()
      if case .confirmed? = decision {
        decision = .failed(failure(.monitorFailed))  // confirmed, but not let go: it is dead now
      } else if decision == nil {
        decide(.failed(failure(.monitorFailed)))
      }
    }
    reapMonitor()
  }

  private func killDaemon() {
    if let daemonPIDFD {
      try? system.pidfdSendSignal(daemonPIDFD, SIGKILL)
    } else if let identity, let now = try? ProcessIdentity.of(pid: identity.pid), now.startTime == identity.startTime {
      try? system.kill(identity.pid, SIGKILL)  // no pidfds on this kernel: checked, then signalled
    }
  }

  // MARK: Reaping the monitor

  private func reapMonitor() {
    // Reaped by the caller: `Spawner.reaped(pid:status:)` reports it, before or after this.
    // Before: the outcome waited only for this end of stream (finding 8: it was not
    // delivered then, and confirm never returned).
    if spawner.reaping == .byCaller { return finishIfDone() }
    tryReap()
  }

  /// Selective reaping: only our monitor, by pidfd, else by pid; never waitpid(-1).
  private func tryReap() {
    guard !monitorReaped else { return }
    do {
      if let status = try reapMonitorNow() { return monitorWasReaped(status) }
    } catch {
      // ECHILD: someone reaped it for us, against the reaping mode. It is gone all the same.
      return monitorWasReaped(nil)
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

  private func reapMonitorNow() throws(Errno) -> WaitStatus? {
    if let fd = monitorPIDFD {
      do {
        return try system.waitid(.pidfd(fd), true)?.status
      } catch where error == .EINVAL || error == .ENOSYS {
        // No waitid(P_PIDFD) before Linux 5.4: by pid, still only ours.
      }
    }
    return try system.waitid(.pid(monitorPID), true)?.status
  }

  private func monitorWasReaped(_ status: WaitStatus?) {
    guard !monitorReaped else { return }
    monitorReaped = true
    monitorStatus = status
    finishIfDone()
  }

  // MARK: Readiness

  private func startReadiness(_ identity: ProcessIdentity) {
    let context = ReadinessContext(what: what, identity: identity, loop: loop, startup: self)
    let readiness = self.readiness
    readinessRunning = true
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
    readinessRunning = false
    // Its descriptors are closed only now that nothing in the task can still use them.
    if result != nil { readiness.close() }
    guard decision == nil else { return }
    switch outcome {
    case .success(let value):
      decide(.confirmed(value: value, at: EventLoop.now()))
    case .failure(let error):
      var failure: SpawnError
      if let error = error as? SpawnError {
        failure = error
        failure.what = what
        failure.pid = identity?.pid
        failure.elapsed = elapsed
      } else {
        failure = self.failure(.protocolFailed, detail: "\(error)")
      }
      settling = failure
      settleTimer = loop.schedule(afterNanoseconds: Startup.settleNanoseconds) { [self] in settled() }
      wake()
    }
  }

  private func settled() {
    settleTimer = nil
    guard let settling else { return }
    // The daemon has exited, or is exiting (its descriptors, the readiness one among them,
    // close early in exit), but its monitor has not said how yet (a loaded machine): that
    // report is sure to come, and is the real reason. The deadline still bounds the wait.
    if let fd = daemonPIDFD, isReadableNow(fd) || identity.map({ isExiting($0.pid) }) == true, !monitorEnded {
      settleTimer = loop.schedule(afterNanoseconds: Startup.settleNanoseconds) { [self] in settled() }
      return
    }
    decide(.failed(settling))
  }

  // MARK: Timers and abort

  private func deadlinePassed() {
    deadlineTimer = nil
    guard decision == nil else { return }
    if EventLoop.now() < deadline {
      deadlineTimer = loop.schedule(at: deadline) { [self] in deadlinePassed() }
      return
    }
    var error = failure(.timedOut, detail: awaiting)
    error.elapsed = .nanoseconds(Int64(clamping: deadline &- began))
    decide(.failed(error))
  }

  private func scheduleTick() {
    guard tickTimer == nil, decision == nil else { return }
    tickTimer = loop.schedule(afterNanoseconds: Startup.abortTickNanoseconds) { [self] in
      tickTimer = nil
      wake()
      scheduleTick()
    }
  }

  /// Every wake-up asks the abort callback, which also feeds progress displays.
  private func wake() {
    guard decision == nil, let abortCheck else { return }
    let progress = SpawnProgress(
      what: what, pid: identity?.pid ?? 0, elapsed: elapsed, awaiting: awaiting, status: status)
    if abortCheck(progress) { abort(detail: "aborted by the caller") }
  }

  // MARK: The outcome

  private func failure(
    _ code: SpawnError.Code, errno: Errno? = nil, status: WaitStatus? = nil, detail: String = ""
  ) -> SpawnError {
    SpawnError(code, what: what, pid: identity?.pid, elapsed: elapsed, errno: errno, status: status, detail: detail)
  }

  private func decide(_ newDecision: Decision) {
    if decision != nil { return }
    decision = newDecision
    settling = nil
    for timer in [deadlineTimer, settleTimer, tickTimer].compactMap({ $0 }) { loop.cancel(timer) }
    deadlineTimer = nil
    settleTimer = nil
    tickTimer = nil
    readinessTask?.cancel()
    if !monitorEnded {
      switch newDecision {
      case .confirmed:
        if detachAllowed { detach() }
      case .failed:
        if !daemonEnded {
          _ = cspawn_send_control(control, Int32(CSPAWN_CONTROL_STOP), stopGraceMilliseconds)
          expectMonitorEnd(stopping: true)
        }
      }
    }
    // A send that fails means the monitor is gone: its end of stream follows.
    finishIfDone()
  }

  private func finishIfDone() {
    guard let decision, result == nil, monitorEnded, monitorReaped else { return }
    if let monitorTimer { loop.cancel(monitorTimer) }
    monitorTimer = nil
    let result: Result<SpawnConfirmation, SpawnError>
    switch decision {
    case .confirmed(let value, let at):
      let identity = self.identity ?? ProcessIdentity(pid: 0, startTime: 0, bootID: "")
      result = .success(
        SpawnConfirmation(what: what, identity: identity, elapsed: .nanoseconds(Int64(clamping: at &- began)), value: value))
    case .failed(var error):
      // The monitor's own wait status, when it died of itself (not when killed as stuck).
      if error.code == .monitorFailed || (monitorDiedUnexpectedly && !monitorKilledUnresponsive && error.status == nil) {
        error.status = monitorStatus
      }
      error.logTail = log?.tail() ?? ""
      result = .failure(error)
    }
    self.result = result
    abortCheck = nil
    if let fd = daemonPIDFD { close(fd) }
    daemonPIDFD = nil
    if let fd = monitorPIDFD {
      if watchingMonitorPIDFD { loop.deregister(fd) }
      close(fd)
    }
    monitorPIDFD = nil
    if !readinessRunning { readiness.close() }
    let startWaiters = self.startWaiters
    let outcomeWaiters = self.outcomeWaiters
    self.startWaiters = []
    self.outcomeWaiters = []
    for waiter in startWaiters {
      switch result {
      case .failure(let error): waiter.resume(returning: .failure(error))
      case .success(let confirmation): waiter.resume(returning: .success(confirmation.identity))
      }
    }
    for waiter in outcomeWaiters { waiter.resume(returning: result) }
  }
}
