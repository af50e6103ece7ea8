/// One spawn's startup as a pure state machine: events in, actions out. No descriptors, no
/// clock, no loop: `Startup` (the I/O layer) turns what happens on the loop into events,
/// passing the time with each, and carries out the actions. Every order of events, including
/// those only a loaded machine produces, can so be played in a unit test.
///
/// The phase of the spawn (`State`):
///
/// | state | left by |
/// | --- | --- |
/// | `starting`: the monitor is forked; its STARTED report (the daemon's pid) is awaited | STARTED → `waiting`; any end → `decided` |
/// | `waiting`: the readiness wait runs, the deadline is armed | a value → `decided(confirmed)`; a readiness failure → `settling`; a death, the deadline, an abort → `decided(failed)` |
/// | `settling(failure)`: the readiness wait failed; a death report within the settle time wins (a dying daemon closes its sockets first) | a death → `decided`; the settle timer (while the daemon neither shows as exited on its pidfd nor is exiting) → `decided(failure)` |
/// | `decided(decision)`: the outcome is fixed; the monitor is told (DETACH once the pid is recorded, else STOP) and must end and be reaped; the readiness task, cancelled, must return | the monitor both closed and reaped, and the readiness task returned → `finished` |
/// | `finished(result)`: every descriptor of the spawn closed, then delivered; later events change nothing | — |
///
/// Beside it, the monitor's own life (`MonitorPhase`): `running` → `detaching` (DETACH
/// sent) or `stopping` (STOP sent) or `exiting` (it reported the daemon's end) → `closed`
/// (its end of stream), and, in any order with that, reaped (`monitorStatus`): by the spawner
/// after the end of stream, or by a caller that owns SIGCHLD before or after it (finding 8).
/// Once told to end, or once it reported its last, it has a time limit; past it, it is
/// killed (`killMonitor`), and its end of stream follows.
struct StartupMachine: Sendable {
  static let settleNanoseconds: UInt64 = 250_000_000
  /// How late a monitor may end: after DETACH or its last report it only exits; after STOP it
  /// also waits for the daemon's death after SIGKILL, which for a large guest's QEMU (freeing
  /// its memory) can take seconds.
  static let monitorExitSlackNanoseconds: UInt64 = 5_000_000_000
  static let monitorStopSlackNanoseconds: UInt64 = 30_000_000_000

  struct Configuration: Sendable {
    var what: String
    /// The resolved executable, named by exec failures.
    var executable: String
    /// The readiness source's `awaiting`, named by timeouts.
    var awaiting: String
    /// When the spawn began (`EventLoop.now()` timebase).
    var began: UInt64
    var timeoutNanoseconds: UInt64
    var stopGraceMilliseconds: Int32
    /// Whether a monitor found stuck can be killed: through its pidfd, or by pid while it is
    /// surely our unreaped child (selective reaping). A caller that reaps by itself may have
    /// reaped it, and the pid be reused.
    var monitorKillable: Bool
    /// `Reaping.byCaller`: the caller reports the monitor's reap; the spawner never reaps.
    var callerReaps: Bool
  }

  enum Decision: Sendable {
    case confirmed(value: String, at: UInt64)
    case failed(SpawnError)
  }

  enum State: Sendable {
    case starting
    case waiting
    case settling(SpawnError)
    case decided(Decision)
    case finished(Result<SpawnConfirmation, SpawnError>)
  }

  enum MonitorPhase: Sendable, Equatable {
    /// Reporting; not told anything yet.
    case running
    /// DETACH sent: it exits at once.
    case detaching
    /// STOP sent: it stops the daemon, reports its death, exits.
    case stopping
    /// It reported the daemon's end (or its own failure) and exits next.
    case exiting
    /// Its end of stream was seen; `unexpectedly` if neither DETACH was sent nor an end reported.
    case closed(unexpectedly: Bool)
  }

  /// What the monitor reported (one control message each).
  enum Report: Sendable, Equatable {
    case started(ProcessIdentity)
    case execFailed(SystemErrno)
    case exited(WaitStatus)
    /// The monitor could not set up or fork: `errno` in `call`.
    case failed(SystemErrno, call: String)
  }

  enum Event: Sendable {
    /// The control socket is watched: arm the deadline.
    case begin
    case report(Report)
    /// The control socket's end of stream.
    case endOfStream
    /// The monitor was reaped (by the spawner, or by the caller). `nil`: someone else reaped it.
    case monitorReaped(WaitStatus?)
    /// `killMonitor` was carried out: the signal went.
    case monitorKilled
    case readinessSucceeded(String)
    /// Any other error has been made a `.protocolFailed` SpawnError by then.
    case readinessFailed(SpawnError)
    /// The readiness task has returned (after either of the two above, or after a cancel).
    case readinessEnded
    /// The settle time is up. `daemonExited`: the daemon's pidfd shows it has exited;
    /// `daemonExiting`: it is in the kernel's exit path (PF_EXITING: its descriptors, the
    /// readiness one among them, close early in exit, before the pidfd shows it). Either way
    /// its death report is on its way.
    case settleTimerFired(daemonExited: Bool, daemonExiting: Bool)
    case deadlineFired
    case deadlineExtended(to: UInt64)
    case monitorLate
    /// Task cancellation, a dropped handle, or the abort callback.
    case abort(detail: String)
    /// The pid is recorded: a confirmed daemon may be detached.
    case recorded
    /// The recording hook failed.
    case recordFailed(detail: String)
  }

  enum Timer: Sendable, Hashable {
    case deadline, settle, monitorLate
  }

  enum Action: Sendable {
    /// Arms `timer` for `at`, replacing it if armed.
    case arm(Timer, at: UInt64)
    /// Cancels `timer` if armed.
    case cancel(Timer)
    /// Resumes those waiting in `start` (once).
    case deliverStart(Result<ProcessIdentity, SpawnError>)
    case startReadiness(ProcessIdentity)
    case cancelReadiness
    /// Releases what the readiness source made (once: the spawn ended and its task returned).
    case closeReadiness
    /// Closes the daemon's and the monitor's pidfds (once, at the end, before any delivery).
    case closePIDFDs
    case sendDetach
    case sendStop(graceMilliseconds: Int32)
    /// The monitor died without reporting the daemon's end: SIGKILL the daemon, through its
    /// pidfd (else by pid, after checking its identity).
    case killDaemon
    /// SIGKILL the stuck monitor; report `monitorKilled` if the signal went.
    case killMonitor
    /// Deregister and close the control socket.
    case closeControl
    /// Reap the monitor (it may take a moment to become a zombie) and report `monitorReaped`.
    case reapMonitor
    /// Resumes those waiting in `confirm` (once). Every descriptor is closed by then.
    case finish(Result<SpawnConfirmation, SpawnError>)
  }

  let configuration: Configuration
  private(set) var state: State = .starting
  private(set) var monitor: MonitorPhase = .running
  /// nil: not reaped; `.some(nil)`: reaped without a status (by someone else).
  private(set) var monitorStatus: WaitStatus??
  private(set) var monitorKilledAsStuck = false
  /// The daemon, once STARTED came (even after a decision).
  private(set) var identity: ProcessIdentity?
  private(set) var deadline: UInt64
  /// The pid is recorded (start's hook ran): a confirmed daemon may be let go.
  private(set) var recorded = false
  private(set) var startDelivered = false
  private enum Readiness: Sendable { case idle, running, ended, closed }
  private var readiness: Readiness = .idle

  init(_ configuration: Configuration) {
    self.configuration = configuration
    deadline = configuration.began.saturatingAdd(configuration.timeoutNanoseconds)
  }

  var isDecided: Bool {
    switch state {
    case .decided, .finished: true
    case .starting, .waiting, .settling: false
    }
  }

  var result: Result<SpawnConfirmation, SpawnError>? {
    if case .finished(let result) = state { return result }
    return nil
  }

  var monitorEnded: Bool {
    if case .closed = monitor { return true }
    return false
  }

  // MARK: Events

  mutating func handle(_ event: Event, now: UInt64) -> [Action] {
    var actions: [Action] = []
    switch event {
    case .begin:
      actions.append(.arm(.deadline, at: deadline))
    case .report(let report):
      received(report, now: now, into: &actions)
    case .endOfStream:
      monitorClosed(now: now, into: &actions)
    case .monitorReaped(let status):
      if monitorStatus == nil {
        monitorStatus = .some(status)
        finishIfDone(into: &actions)
      }
    case .monitorKilled:
      monitorKilledAsStuck = true
    case .readinessSucceeded(let value):
      if !isDecided { decide(.confirmed(value: value, at: now), now: now, into: &actions) }
    case .readinessFailed(var failure):
      guard !isDecided else { break }
      failure.what = configuration.what
      failure.pid = identity?.pid
      failure.elapsed = elapsed(now)
      state = .settling(failure)
      actions.append(.arm(.settle, at: now.saturatingAdd(Self.settleNanoseconds)))
    case .readinessEnded:
      if readiness == .running { readiness = .ended }
      // A decided spawn waited for this: its readiness descriptors close now, then it finishes.
      finishIfDone(into: &actions)
    case .settleTimerFired(let daemonExited, let daemonExiting):
      guard case .settling(let failure) = state else { break }
      // The daemon has exited, or is exiting, but its monitor has not said how yet (a loaded
      // machine): that report is sure to come, and is the real reason. The deadline still
      // bounds the wait.
      if (daemonExited || daemonExiting) && !monitorEnded {
        actions.append(.arm(.settle, at: now.saturatingAdd(Self.settleNanoseconds)))
      } else {
        decide(.failed(failure), now: now, into: &actions)
      }
    case .deadlineFired:
      guard !isDecided else { break }
      if now < deadline { actions.append(.arm(.deadline, at: deadline)); break }
      var error = failure(.timedOut, now: now, detail: configuration.awaiting)
      error.elapsed = .nanoseconds(Int64(clamping: deadline &- configuration.began))
      decide(.failed(error), now: now, into: &actions)
    case .deadlineExtended(let newDeadline):
      if newDeadline > deadline { deadline = newDeadline }
    case .monitorLate:
      if !monitorEnded && configuration.monitorKillable { actions.append(.killMonitor) }
    case .abort(let detail):
      if !isDecided { decide(.failed(failure(.aborted, now: now, detail: detail)), now: now, into: &actions) }
    case .recorded:
      recorded = true
      if case .decided(.confirmed) = state { detach(now: now, into: &actions) }
    case .recordFailed(let detail):
      let error = failure(.recordFailed, now: now, detail: detail)
      if case .decided(.confirmed) = state {
        // Confirmed meanwhile, but not let go (it cannot have been detached yet): it must not
        // live on unrecorded.
        state = .decided(.failed(error))
        stop(now: now, into: &actions)
        finishIfDone(into: &actions)
      } else if !isDecided {
        decide(.failed(error), now: now, into: &actions)
      }
    }
    return actions
  }

  // MARK: The monitor

  private mutating func received(_ report: Report, now: UInt64, into actions: inout [Action]) {
    switch report {
    case .started(let identity):
      self.identity = identity
      guard case .starting = state else { return }
      state = .waiting
      startDelivered = true
      readiness = .running
      actions.append(.deliverStart(.success(identity)))
      actions.append(.startReadiness(identity))
    case .execFailed(let errno):
      endReported(now: now, into: &actions)
      if !isDecided {
        decide(.failed(failure(.execFailed, now: now, errno: errno, detail: configuration.executable)), now: now, into: &actions)
      }
    case .exited(let status):
      endReported(now: now, into: &actions)
      if !isDecided {
        let code: SpawnError.Code =
          status.exitCode == 0 ? .exitedZero : status.exitCode != nil ? .exited : .killedBySignal
        decide(.failed(failure(code, now: now, status: status)), now: now, into: &actions)
      }
    case .failed(let errno, let call):
      endReported(now: now, into: &actions)
      if !isDecided {
        decide(.failed(failure(.spawnFailed, now: now, errno: errno, detail: call)), now: now, into: &actions)
      }
    }
  }

  /// The monitor reported the daemon's end (or its own failure); it exits right after.
  private mutating func endReported(now: UInt64, into actions: inout [Action]) {
    guard !monitorEnded else { return }
    monitor = .exiting
    actions.append(.arm(.monitorLate, at: now.saturatingAdd(Self.monitorExitSlackNanoseconds)))
  }

  private mutating func detach(now: UInt64, into actions: inout [Action]) {
    guard monitor == .running else { return }
    monitor = .detaching
    actions.append(.sendDetach)
    actions.append(.arm(.monitorLate, at: now.saturatingAdd(Self.monitorExitSlackNanoseconds)))
  }

  /// Only a monitor still watching a live daemon is told to stop it.
  private mutating func stop(now: UInt64, into actions: inout [Action]) {
    guard monitor == .running else { return }
    monitor = .stopping
    actions.append(.sendStop(graceMilliseconds: configuration.stopGraceMilliseconds))
    let limit = (UInt64(configuration.stopGraceMilliseconds) * 1_000_000).saturatingAdd(Self.monitorStopSlackNanoseconds)
    actions.append(.arm(.monitorLate, at: now.saturatingAdd(limit)))
  }

  /// End of the control stream: the monitor exited (or is exiting).
  private mutating func monitorClosed(now: UInt64, into actions: inout [Action]) {
    guard !monitorEnded else { return }
    let unexpectedly = monitor == .running || monitor == .stopping
    monitor = .closed(unexpectedly: unexpectedly)
    actions.append(.closeControl)
    if unexpectedly {
      // It died without reporting the daemon's end: the daemon may live on unwatched.
      actions.append(.killDaemon)
      let error = failure(.monitorFailed, now: now)
      switch state {
      case .decided(.confirmed):
        state = .decided(.failed(error))  // confirmed, but not let go: it is dead now
      case .starting, .waiting, .settling:
        decide(.failed(error), now: now, into: &actions)
      case .decided(.failed), .finished:
        break
      }
    }
    // Reaped by the caller: it reports the reap, before or after this. Before: the outcome
    // waited only for this end of stream (finding 8: it was not delivered then).
    if !configuration.callerReaps && monitorStatus == nil { actions.append(.reapMonitor) }
    finishIfDone(into: &actions)
  }

  // MARK: The outcome

  private func elapsed(_ now: UInt64) -> Duration {
    .nanoseconds(Int64(clamping: now &- configuration.began))
  }

  private func failure(
    _ code: SpawnError.Code, now: UInt64, errno: SystemErrno? = nil, status: WaitStatus? = nil, detail: String = ""
  ) -> SpawnError {
    SpawnError(
      code, what: configuration.what, pid: identity?.pid, elapsed: elapsed(now), errno: errno, status: status,
      detail: detail)
  }

  /// Fixes the outcome: a confirmed daemon is let go once recorded; a failed one is stopped
  /// unless its end was reported already. Either way the monitor ends, and then it is done.
  private mutating func decide(_ decision: Decision, now: UInt64, into actions: inout [Action]) {
    state = .decided(decision)
    actions.append(contentsOf: [.cancel(.deadline), .cancel(.settle)])
    if readiness == .running { actions.append(.cancelReadiness) }
    switch decision {
    case .confirmed:
      if recorded { detach(now: now, into: &actions) }
    case .failed:
      stop(now: now, into: &actions)
    }
    finishIfDone(into: &actions)
  }

  /// Finishes once the outcome is decided, the monitor has ended and been reaped, and the
  /// readiness task (cancelled at the decision) has returned: every descriptor of the spawn is
  /// then closed — the control socket at the end of stream, the readiness source here, the
  /// pidfds by `finish` — before the outcome is delivered, so a caller counting descriptors
  /// after `confirm` sees none left. (Closing the readiness source earlier is not safe: its
  /// task may still read the descriptor, and the number be reused.)
  private mutating func finishIfDone(into actions: inout [Action]) {
    guard case .decided(let decision) = state, monitorEnded, let reaped = monitorStatus, readiness != .running else {
      return
    }
    let result: Result<SpawnConfirmation, SpawnError>
    switch decision {
    case .confirmed(let value, let at):
      let identity = self.identity ?? ProcessIdentity(pid: 0, startTime: 0, bootID: "")
      result = .success(
        SpawnConfirmation(
          what: configuration.what, identity: identity,
          elapsed: .nanoseconds(Int64(clamping: at &- configuration.began)), value: value))
    case .failed(var error):
      // The monitor's own wait status, when it died of itself (not when killed as stuck).
      if error.code == .monitorFailed
        || (monitor == .closed(unexpectedly: true) && !monitorKilledAsStuck && error.status == nil)
      {
        error.status = reaped
      }
      result = .failure(error)
    }
    state = .finished(result)
    actions.append(.cancel(.monitorLate))
    // Every descriptor first (the control socket closed at the end of stream): a waiter resumed
    // runs at once on another thread. The readiness source was prepared (and maybe never
    // started: a failure before STARTED), or its task has returned.
    readiness = .closed
    actions.append(.closeReadiness)
    actions.append(.closePIDFDs)
    if !startDelivered {
      startDelivered = true
      actions.append(.deliverStart(result.map(\.identity)))
    }
    actions.append(.finish(result))
  }
}
