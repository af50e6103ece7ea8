/// The domain monitor's decisions, without I/O: what it saw (with what the records said at
/// that moment) in, what to do out. `DomainMonitor` reads the facts, asks, and carries the
/// decision out; every choice it makes about a guest's fate is here, tested exhaustively
/// (`MonitorMachineTests`), as `StartupMachine` is for the spawn library.
struct MonitorMachine: Sendable {
  /// What happened, with the facts the decision needs.
  enum Input: Sendable, Hashable {
    /// QEMU reported the guest stopped for `reason`; `going`: the domain is being destroyed.
    case shutdown(ShutdownReason, going: Bool)
    /// QEMU reported the guest paused or resumed (a user's `xl pause`/`unpause`).
    case paused(going: Bool)
    case resumed(going: Bool)
    /// Any other QMP event, or the QMP session's end (the device model's exit decides).
    case nothing
    /// The device model's process ended.
    case deviceModelExited(going: Bool)
    /// The domain's name or run state changed: whether it still exists, and whether create
    /// has recorded it running (or a later state).
    case recordsChanged(exists: Bool, recordedRunning: Bool)
    case xenstoreLost
    /// `xl monitor` was asked to stop (SIGTERM).
    case stopRequested

    /// The input a QMP event stands for (`status`: `query-status`'s answer, first of all).
    static func of(_ event: QMPClient.Event, going: Bool) -> Input {
      let isStatus = event.name == "status"
      if let reason = isStatus ? ShutdownReason.of(status: event.data.stringValue ?? "") : ShutdownReason.of(event) {
        return .shutdown(reason, going: going)
      }
      if event.name == "STOP" || (isStatus && event.data.stringValue == "paused") { return .paused(going: going) }
      if event.name == "RESUME" { return .resumed(going: going) }
      return .nothing
    }
  }

  /// What to do.
  enum Decision: Sendable, Hashable {
    /// Nothing now.
    case ignore
    /// Create has not handed the domain over (no run state yet): keep the event for then.
    case hold
    /// Create recorded the domain running: handle what was held, in order.
    case takeOver
    /// Apply the `on_*` action for this reason (`MonitorPlan`).
    case act(ShutdownReason)
    /// Record this run state.
    case record(RunState)
    /// The domain is gone, or never ran: the monitor ends.
    case end
    /// Wait for xenstored to come back, then go on.
    case reconnect
    /// Stop watching (between actions), leaving the domain unmonitored.
    case stop
  }

  /// Whether create has handed the domain over (it recorded a run state).
  private(set) var live: Bool
  /// `preserve` was applied: the domain stays as it died; only its device model's end is noted.
  private(set) var preserved = false

  init(live: Bool) { self.live = live }

  /// The decision for `input`, and the machine's next state.
  mutating func decide(_ input: Input) -> Decision {
    if input == .stopRequested { return .stop }
    if input == .xenstoreLost { return .reconnect }
    guard live else {
      switch input {
      case .recordsChanged(exists: false, _): return .end
      case .recordsChanged(exists: true, recordedRunning: true):
        live = true
        return .takeOver
      case .recordsChanged: return .ignore
      // Create failed (or was killed) before the domain ran: its records are create's.
      case .deviceModelExited: return .end
      default: return .hold
      }
    }
    switch input {
    case .shutdown(let reason, let going): return preserved || going ? .ignore : .act(reason)
    case .paused(let going): return preserved || going ? .ignore : .record(.paused)
    case .resumed(let going): return preserved || going ? .ignore : .record(.running)
    case .nothing: return .ignore
    case .deviceModelExited(let going):
      if going { return .ignore }  // `xl destroy` stopped it
      return preserved ? .record(.crashed) : .act(.crash)
    case .recordsChanged(let exists, _): return exists ? .ignore : .end
    case .xenstoreLost, .stopRequested: return .ignore  // decided above
    }
  }

  /// The action applied was `preserve`.
  mutating func preserve() { preserved = true }
}

/// What the monitor does for a shutdown (xl's `handle_domain_death`): maybe a core dump, then
/// one of keep the domain, re-create it, or destroy it.
struct MonitorPlan: Sendable, Hashable {
  enum Then: Sendable, Hashable {
    /// Keep the domain as it died, recorded in this state.
    case preserve(RunState)
    /// Re-create it under its name; `renamed`: the old one is kept, renamed, in `kept` state.
    case restart(renamed: Bool, kept: RunState)
    /// Destroy it.
    case destroy
  }

  /// Dump the guest's memory first (`coredump-*`).
  var dump: Bool
  var then: Then

  /// The plan for `reason` under `action` (nil: no saved config, so no action: destroy).
  static func of(_ reason: ShutdownReason, action: DomainAction?) -> MonitorPlan {
    let died: RunState = reason == .crash || reason == .watchdog ? .crashed : .shutdown
    switch action ?? .destroy {
    case .destroy: return MonitorPlan(dump: false, then: .destroy)
    case .coredumpDestroy: return MonitorPlan(dump: true, then: .destroy)
    case .preserve: return MonitorPlan(dump: false, then: .preserve(died))
    case .restart, .softReset: return MonitorPlan(dump: false, then: .restart(renamed: false, kept: .shutdown))
    case .coredumpRestart: return MonitorPlan(dump: true, then: .restart(renamed: false, kept: .shutdown))
    case .renameRestart: return MonitorPlan(dump: false, then: .restart(renamed: true, kept: reason == .crash ? .crashed : .shutdown))
    }
  }
}
