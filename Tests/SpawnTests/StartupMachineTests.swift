import Testing

@testable import Spawn

/// Every transition of the startup state machine, deterministically: no process, no loop, no
/// clock (each event carries its time). The orders a loaded machine produces are played here
/// one by one; the real-process suites are the integration tests of the same paths.
@Suite struct StartupMachineTests {
  static let began: UInt64 = 1_000_000_000
  static let second: UInt64 = 1_000_000_000
  static let daemon = ProcessIdentity(pid: 4242, startTime: 77, bootID: "boot")

  /// A machine as `Spawner` makes one: 10 s timeout, 2 s stop grace.
  func machine(callerReaps: Bool = false, killable: Bool = true) -> StartupMachine {
    StartupMachine(
      StartupMachine.Configuration(
        what: "fixture", executable: "/bin/fixture", awaiting: "a line on descriptor 3", began: Self.began,
        timeoutNanoseconds: 10 * Self.second, stopGraceMilliseconds: 2000, monitorKillable: killable,
        callerReaps: callerReaps))
  }

  /// At `s` seconds after the start.
  func at(_ s: Double) -> UInt64 { Self.began + UInt64(s * 1e9) }

  /// A machine past STARTED, its readiness wait running.
  func waiting(callerReaps: Bool = false, killable: Bool = true) -> StartupMachine {
    var m = machine(callerReaps: callerReaps, killable: killable)
    _ = m.handle(.begin, now: at(0))
    _ = m.handle(.report(.started(Self.daemon)), now: at(0.01))
    return m
  }

  static let exited2 = WaitStatus(rawValue: 2 << 8)
  static let killedByTERM = WaitStatus(rawValue: 15)
  static let monitorKilled = WaitStatus(rawValue: 9)

  // MARK: The confirmed path

  @Test func confirmedThenRecordedDetachesThenFinishesOnceEndedAndReaped() throws {
    var m = machine()
    #expect(describe(m.handle(.begin, now: at(0))) == ["arm deadline @10.0"])
    #expect(describe(m.handle(.report(.started(Self.daemon)), now: at(0.01))) == ["start ok 4242", "start readiness"])
    guard case .waiting = m.state else { Issue.record("not waiting: \(m.state)"); return }
    // Confirmed before the pid is recorded: no DETACH yet (a caller dying now takes the daemon along).
    #expect(
      describe(m.handle(.readinessSucceeded("up"), now: at(0.5)))
        == ["cancel deadline", "cancel settle", "cancel readiness"])
    #expect(m.monitor == .running)
    #expect(describe(m.handle(.readinessEnded, now: at(0.5))) == [])
    #expect(describe(m.handle(.recorded, now: at(0.6))) == ["detach", "arm monitorLate @5.6"])
    #expect(describe(m.handle(.endOfStream, now: at(0.7))) == ["close control", "reap"])
    #expect(m.result == nil, "not reaped yet")
    #expect(
      describe(m.handle(.monitorReaped(WaitStatus(rawValue: 0)), now: at(0.71)))
        == ["cancel monitorLate", "close readiness", "close pidfds", "finish ok up 0.5"])
    let confirmation = try #require(try m.result?.get())
    #expect(confirmation.identity == Self.daemon)
    #expect(confirmation.elapsed == .milliseconds(500))
  }

  @Test func recordedBeforeConfirmationDetachesAtConfirmation() {
    var m = waiting()
    #expect(describe(m.handle(.recorded, now: at(0.02))) == [])
    #expect(
      describe(m.handle(.readinessSucceeded("up"), now: at(1)))
        == ["cancel deadline", "cancel settle", "cancel readiness", "detach", "arm monitorLate @6.0"])
    #expect(m.monitor == .detaching)
  }

  /// The readiness task returns after the monitor is reaped: the outcome waits for it, and
  /// its source is closed once, before the outcome is delivered.
  @Test func theOutcomeWaitsForTheReadinessTaskAndItsSourceIsClosedOnceBeforeIt() {
    var m = waiting()
    _ = m.handle(.recorded, now: at(0.02))
    _ = m.handle(.readinessSucceeded("up"), now: at(1))
    _ = m.handle(.endOfStream, now: at(1.1))
    #expect(describe(m.handle(.monitorReaped(nil), now: at(1.1))) == [], "the readiness task has not returned")
    #expect(m.result == nil)
    #expect(
      describe(m.handle(.readinessEnded, now: at(1.2)))
        == ["cancel monitorLate", "close readiness", "close pidfds", "finish ok up 1.0"])
    #expect(describe(m.handle(.readinessEnded, now: at(1.3))) == [])
  }

  /// The stress test's leak (fds 9 -> 12): a spawn aborted, or timed out, at once cancels a
  /// readiness task that has not even run yet; the monitor stops the daemon, ends and is
  /// reaped before the task returns. The outcome used to be delivered then, and the source
  /// closed only when the task's late return came, after `confirm` had returned. Now nothing
  /// is delivered until then, and every close comes before every delivery.
  @Test func anAbortedOrTimedOutSpawnClosesEveryDescriptorBeforeItsOutcome() {
    for ending in ["abort", "deadline"] {
      var m = waiting()
      _ = m.handle(.recorded, now: at(0.02))
      let decided = ending == "abort" ? m.handle(.abort(detail: "aborted by the caller"), now: at(0.03)) : m.handle(.deadlineFired, now: at(10))
      #expect(describe(decided).contains("cancel readiness"), "\(ending)")
      var all = decided
      for (event, time) in [
        (StartupMachine.Event.report(.exited(Self.killedByTERM)), 10.1), (.endOfStream, 10.2),
        (.monitorReaped(WaitStatus(rawValue: 0)), 10.3),
      ] {
        let actions = m.handle(event, now: at(time))
        #expect(!describe(actions).contains { $0.hasPrefix("finish") || $0 == "close readiness" }, "\(ending) \(event)")
        all += actions
      }
      #expect(m.result == nil, "\(ending): delivered before the readiness task returned")
      let last = m.handle(.readinessEnded, now: at(10.4))
      #expect(
        describe(last) == ["cancel monitorLate", "close readiness", "close pidfds", "finish fail \(ending == "abort" ? "aborted" : "timed-out")"],
        "\(ending)")
      all += last
      // Each descriptor closed exactly once, all of them before the outcome.
      let steps = describe(all)
      for close in ["close control", "close readiness", "close pidfds"] {
        #expect(steps.filter { $0 == close }.count == 1, "\(ending): \(close)")
        #expect(steps.firstIndex(of: close)! < steps.firstIndex { $0.hasPrefix("finish") }!, "\(ending): \(close)")
      }
      #expect(describe(m.handle(.readinessEnded, now: at(10.5))) == [])
    }
  }

  // MARK: Finding 8: a caller that reaps

  /// The caller's reap reaches the spawner before the monitor's end of stream.
  @Test func callerReapsBeforeTheEndOfStream() {
    var m = waiting(callerReaps: true)
    _ = m.handle(.report(.exited(Self.exited2)), now: at(0.2))
    _ = m.handle(.readinessEnded, now: at(0.2))
    #expect(describe(m.handle(.monitorReaped(WaitStatus(rawValue: 0)), now: at(0.3))) == [])
    #expect(m.result == nil)
    #expect(
      describe(m.handle(.endOfStream, now: at(0.4)))
        == ["close control", "cancel monitorLate", "close readiness", "close pidfds", "finish fail exited"])
    #expect(m.result.map { if case .failure(let e) = $0 { e.status == Self.exited2 } else { false } } == true)
  }

  @Test func callerReapsAfterTheEndOfStream() {
    var m = waiting(callerReaps: true)
    _ = m.handle(.report(.exited(Self.exited2)), now: at(0.2))
    _ = m.handle(.readinessEnded, now: at(0.2))
    #expect(describe(m.handle(.endOfStream, now: at(0.3))) == ["close control"], "the caller reaps: no reap here")
    #expect(
      describe(m.handle(.monitorReaped(WaitStatus(rawValue: 0)), now: at(0.4)))
        == ["cancel monitorLate", "close readiness", "close pidfds", "finish fail exited"])
    #expect(describe(m.handle(.monitorReaped(WaitStatus(rawValue: 0)), now: at(0.5))) == [])
  }

  // MARK: The detach race

  /// DETACH crosses the daemon's death: the monitor reports the death (it looks at its child
  /// first) instead of exiting at once. The outcome stays confirmed; nothing is killed.
  @Test func detachCrossingTheDaemonsDeath() {
    var m = waiting()
    _ = m.handle(.recorded, now: at(0.02))
    _ = m.handle(.readinessSucceeded("up"), now: at(1))
    _ = m.handle(.readinessEnded, now: at(1))
    #expect(describe(m.handle(.report(.exited(Self.exited2)), now: at(1.01))) == ["arm monitorLate @6.01"])
    #expect(m.monitor == .exiting)
    #expect(describe(m.handle(.endOfStream, now: at(1.02))) == ["close control", "reap"])
    #expect(describe(m.handle(.monitorReaped(WaitStatus(rawValue: 0)), now: at(1.03))) == ["cancel monitorLate", "close readiness", "close pidfds", "finish ok up 1.0"])
  }

  /// Confirmed while the pid is being recorded, then the monitor dies: the daemon was not let
  /// go, so it is killed, and the spawn fails with the monitor's status.
  @Test func confirmedButNotRecordedWhenTheMonitorDies() {
    var m = waiting()
    _ = m.handle(.readinessSucceeded("up"), now: at(1))
    _ = m.handle(.readinessEnded, now: at(1))
    #expect(describe(m.handle(.endOfStream, now: at(1.1))) == ["close control", "kill daemon", "reap"])
    #expect(
      describe(m.handle(.monitorReaped(Self.monitorKilled), now: at(1.2)))
        == ["cancel monitorLate", "close readiness", "close pidfds", "finish fail monitor-failed"])
    guard case .failure(let error)? = m.result else { Issue.record("not failed"); return }
    #expect(error.code == .monitorFailed)
    #expect(error.status == Self.monitorKilled)
    #expect(error.pid == 4242)
  }

  /// The recording hook fails after the daemon confirmed (not yet let go): it is stopped.
  @Test func recordFailedAfterConfirmationStopsTheDaemon() {
    var m = waiting()
    _ = m.handle(.readinessSucceeded("up"), now: at(1))
    _ = m.handle(.readinessEnded, now: at(1))
    #expect(
      describe(m.handle(.recordFailed(detail: "quota"), now: at(1.5)))
        == ["stop 2000", "arm monitorLate @33.5"])
    #expect(describe(m.handle(.recorded, now: at(1.6))) == [], "never detached after a failed record")
    _ = m.handle(.report(.exited(Self.killedByTERM)), now: at(1.7))
    _ = m.handle(.endOfStream, now: at(1.8))
    _ = m.handle(.monitorReaped(WaitStatus(rawValue: 0)), now: at(1.8))
    guard case .failure(let error)? = m.result else { Issue.record("not failed"); return }
    #expect(error.code == .recordFailed)
    #expect(error.detail == "quota")
    #expect(error.status == nil, "the monitor exited normally: no status to report")
  }

  @Test func recordFailedBeforeConfirmationStopsTheDaemon() {
    var m = waiting()
    #expect(
      describe(m.handle(.recordFailed(detail: "quota"), now: at(0.1)))
        == ["cancel deadline", "cancel settle", "cancel readiness", "stop 2000", "arm monitorLate @32.1"])
    #expect(describe(m.handle(.readinessSucceeded("up"), now: at(0.2))) == [], "decided: a late confirmation changes nothing")
  }

  // MARK: Failures

  @Test func aDeathBeforeConfirmingIsTheOutcomeAndNothingIsStopped() {
    var m = waiting()
    #expect(
      describe(m.handle(.report(.exited(Self.exited2)), now: at(0.3)))
        == ["arm monitorLate @5.3", "cancel deadline", "cancel settle", "cancel readiness"])
    #expect(describe(m.handle(.readinessFailed(SpawnError(.protocolFailed, what: "", detail: "closed")), now: at(0.31))) == [])
    _ = m.handle(.readinessEnded, now: at(0.31))
    _ = m.handle(.endOfStream, now: at(0.32))
    #expect(describe(m.handle(.monitorReaped(WaitStatus(rawValue: 0)), now: at(0.33))) == ["cancel monitorLate", "close readiness", "close pidfds", "finish fail exited"])
    guard case .failure(let error)? = m.result else { return }
    #expect(error.status == Self.exited2)
    #expect(error.elapsed == .milliseconds(300))
    #expect(error.pid == 4242)
  }

  @Test func exitCodesNameTheEnd() {
    for (status, code) in [(0, SpawnError.Code.exitedZero), (3 << 8, .exited), (9, .killedBySignal)] {
      var m = waiting()
      _ = m.handle(.report(.exited(WaitStatus(rawValue: Int32(status)))), now: at(0.1))
      _ = m.handle(.readinessEnded, now: at(0.1))
      _ = m.handle(.endOfStream, now: at(0.1))
      _ = m.handle(.monitorReaped(WaitStatus(rawValue: 0)), now: at(0.1))
      guard case .failure(let error)? = m.result else { Issue.record("no failure"); continue }
      #expect(error.code == code)
    }
  }

  @Test func execFailedNamesTheExecutable() {
    var m = waiting()
    _ = m.handle(.report(.execFailed(.ENOENT)), now: at(0.1))
    _ = m.handle(.readinessEnded, now: at(0.1))
    _ = m.handle(.endOfStream, now: at(0.1))
    _ = m.handle(.monitorReaped(WaitStatus(rawValue: 0)), now: at(0.1))
    guard case .failure(let error)? = m.result else { Issue.record("no failure"); return }
    #expect(error.code == .execFailed)
    #expect(error.errno == .ENOENT)
    #expect(error.detail == "/bin/fixture")
  }

  /// The monitor could not fork: no STARTED ever came; start waiters get the failure.
  @Test func theMonitorFailingBeforeStartedFailsTheStart() {
    var m = machine()
    _ = m.handle(.begin, now: at(0))
    #expect(
      describe(m.handle(.report(.failed(.EAGAIN, call: "fork")), now: at(0.01)))
        == ["arm monitorLate @5.01", "cancel deadline", "cancel settle"])
    _ = m.handle(.endOfStream, now: at(0.02))
    #expect(
      describe(m.handle(.monitorReaped(WaitStatus(rawValue: 1 << 8)), now: at(0.02)))
        == ["cancel monitorLate", "close readiness", "close pidfds", "start fail spawn-failed", "finish fail spawn-failed"])
    guard case .failure(let error)? = m.result else { return }
    #expect(error.detail == "fork")
    #expect(error.pid == nil)
  }

  /// The monitor ends without a word while the daemon's pid is awaited.
  @Test func theMonitorEndingBeforeStartedIsAMonitorFailure() {
    var m = machine()
    _ = m.handle(.begin, now: at(0))
    #expect(
      describe(m.handle(.endOfStream, now: at(0.01)))
        == ["close control", "kill daemon", "cancel deadline", "cancel settle", "reap"])
    _ = m.handle(.monitorReaped(Self.monitorKilled), now: at(0.02))
    guard case .failure(let error)? = m.result else { Issue.record("no failure"); return }
    #expect(error.code == .monitorFailed)
    #expect(error.status == Self.monitorKilled)
  }

  // MARK: Settling

  @Test func aDeathReportedWhileSettlingWinsOverTheReadinessFailure() {
    var m = waiting()
    #expect(
      describe(m.handle(.readinessFailed(SpawnError(.protocolFailed, what: "", detail: "closed")), now: at(0.5)))
        == ["arm settle @0.75"])
    guard case .settling(let failure) = m.state else { Issue.record("not settling"); return }
    #expect(failure.what == "fixture")
    #expect(failure.pid == 4242)
    #expect(failure.elapsed == .milliseconds(500))
    _ = m.handle(.report(.exited(Self.exited2)), now: at(0.6))
    guard case .decided(.failed(let error)) = m.state else { Issue.record("not decided"); return }
    #expect(error.code == .exited)
  }

  @Test func settlingWaitsWhileThePidfdShowsTheDaemonExited() {
    var m = waiting()
    _ = m.handle(.readinessFailed(SpawnError(.protocolFailed, what: "", detail: "closed")), now: at(0.5))
    _ = m.handle(.readinessEnded, now: at(0.5))
    #expect(describe(m.handle(.settleTimerFired(daemonExited: true, daemonExiting: false), now: at(0.75))) == ["arm settle @1.0"])
    #expect(
      describe(m.handle(.settleTimerFired(daemonExited: false, daemonExiting: false), now: at(1.0)))
        == ["cancel deadline", "cancel settle", "stop 2000", "arm monitorLate @33.0"])
    guard case .decided(.failed(let error)) = m.state else { Issue.record("not decided"); return }
    #expect(error.code == .protocolFailed)
    #expect(error.detail == "closed")
  }

  /// Main's fix, ported: the readiness EOF came from a daemon in its exit path (PF_EXITING:
  /// its descriptors close early in exit, before its pidfd shows the exit). The settle time
  /// is over before the monitor's report, under load; the wait goes on for it, and the death,
  /// not a protocol failure, is the outcome.
  @Test func settlingWaitsWhileTheDaemonIsExiting() {
    var m = waiting()
    _ = m.handle(.readinessFailed(SpawnError(.protocolFailed, what: "", detail: "closed")), now: at(0.5))
    _ = m.handle(.readinessEnded, now: at(0.5))
    #expect(describe(m.handle(.settleTimerFired(daemonExited: false, daemonExiting: true), now: at(0.75))) == ["arm settle @1.0"])
    guard case .settling = m.state else { Issue.record("left settling: \(m.state)"); return }
    #expect(describe(m.handle(.settleTimerFired(daemonExited: true, daemonExiting: false), now: at(1.0))) == ["arm settle @1.25"])
    _ = m.handle(.report(.exited(Self.exited2)), now: at(1.1))
    guard case .decided(.failed(let error)) = m.state else { Issue.record("not decided"); return }
    #expect(error.code == .exited)
    #expect(error.status == Self.exited2)
    // Its monitor gone, an exiting daemon no longer holds the decision back.
    var n = waiting()
    _ = n.handle(.readinessFailed(SpawnError(.protocolFailed, what: "", detail: "closed")), now: at(0.5))
    _ = n.handle(.endOfStream, now: at(0.6))
    guard case .decided(.failed(let monitorError)) = n.state else { Issue.record("not decided"); return }
    #expect(monitorError.code == .monitorFailed)
    // And the deadline still bounds the wait.
    var o = waiting()
    _ = o.handle(.readinessFailed(SpawnError(.protocolFailed, what: "", detail: "closed")), now: at(9.5))
    _ = o.handle(.settleTimerFired(daemonExited: false, daemonExiting: true), now: at(9.75))
    _ = o.handle(.deadlineFired, now: at(10))
    guard case .decided(.failed(let timeout)) = o.state else { Issue.record("not decided"); return }
    #expect(timeout.code == .timedOut)
  }

  @Test func aStaleSettleTimerDoesNothing() {
    var m = waiting()
    #expect(describe(m.handle(.settleTimerFired(daemonExited: false, daemonExiting: true), now: at(0.5))) == [])
    guard case .waiting = m.state else { Issue.record("left waiting"); return }
  }

  // MARK: Deadline and abort

  @Test func theDeadlineTimesOutAndStops() {
    var m = waiting()
    #expect(
      describe(m.handle(.deadlineFired, now: at(10.001)))
        == ["cancel deadline", "cancel settle", "cancel readiness", "stop 2000", "arm monitorLate @42.001"])
    guard case .decided(.failed(let error)) = m.state else { Issue.record("not decided"); return }
    #expect(error.code == .timedOut)
    #expect(error.detail == "a line on descriptor 3")
    #expect(error.elapsed == .seconds(10), "the deadline's own time, not when the timer ran")
  }

  @Test func anExtendedDeadlineIsReArmedWhenTheOldOneFires() {
    var m = waiting()
    _ = m.handle(.deadlineExtended(to: at(20)), now: at(1))
    _ = m.handle(.deadlineExtended(to: at(15)), now: at(2))  // never shortened
    #expect(m.deadline == at(20))
    #expect(describe(m.handle(.deadlineFired, now: at(10))) == ["arm deadline @20.0"])
    guard case .waiting = m.state else { Issue.record("left waiting"); return }
    _ = m.handle(.deadlineFired, now: at(20))
    guard case .decided(.failed(let error)) = m.state else { Issue.record("not decided"); return }
    #expect(error.elapsed == .seconds(20))
  }

  @Test func theDeadlineWhileSettlingIsATimeout() {
    var m = waiting()
    _ = m.handle(.readinessFailed(SpawnError(.protocolFailed, what: "", detail: "closed")), now: at(9.9))
    _ = m.handle(.deadlineFired, now: at(10))
    guard case .decided(.failed(let error)) = m.state else { Issue.record("not decided"); return }
    #expect(error.code == .timedOut)
  }

  /// Aborted before the pid is known: STOP goes at once; the late STARTED starts nothing.
  @Test func abortBeforeStarted() {
    var m = machine()
    _ = m.handle(.begin, now: at(0))
    #expect(
      describe(m.handle(.abort(detail: "the task was cancelled"), now: at(0.001)))
        == ["cancel deadline", "cancel settle", "stop 2000", "arm monitorLate @32.001"])
    #expect(describe(m.handle(.report(.started(Self.daemon)), now: at(0.002))) == [])
    #expect(m.identity == Self.daemon)
    _ = m.handle(.report(.exited(Self.killedByTERM)), now: at(0.01))
    _ = m.handle(.endOfStream, now: at(0.01))
    #expect(
      describe(m.handle(.monitorReaped(WaitStatus(rawValue: 0)), now: at(0.01)))
        == ["cancel monitorLate", "close readiness", "close pidfds", "start fail aborted", "finish fail aborted"])
    guard case .failure(let error)? = m.result else { return }
    #expect(error.detail == "the task was cancelled")
  }

  @Test func abortAfterTheOutcomeChangesNothing() {
    var m = waiting()
    _ = m.handle(.readinessSucceeded("up"), now: at(1))
    #expect(describe(m.handle(.abort(detail: "late"), now: at(1.1))) == [])
    guard case .decided(.confirmed) = m.state else { Issue.record("not confirmed"); return }
  }

  // MARK: A stuck monitor

  @Test func aMonitorLateAfterDetachIsKilledAndTheDaemonLivesOn() {
    var m = waiting()
    _ = m.handle(.recorded, now: at(0.02))
    _ = m.handle(.readinessSucceeded("up"), now: at(1))
    _ = m.handle(.readinessEnded, now: at(1))
    #expect(describe(m.handle(.monitorLate, now: at(6))) == ["kill monitor"])
    _ = m.handle(.monitorKilled, now: at(6))
    #expect(describe(m.handle(.endOfStream, now: at(6.01))) == ["close control", "reap"], "DETACH was sent: no kill of the daemon")
    _ = m.handle(.monitorReaped(Self.monitorKilled), now: at(6.02))
    #expect(m.result.map { (try? $0.get())?.value } == "up")
  }

  @Test func aMonitorLateAfterStopIsKilledAndItsStatusIsNotTheDaemons() {
    var m = waiting()
    _ = m.handle(.abort(detail: "aborted by the caller"), now: at(0.1))
    _ = m.handle(.readinessEnded, now: at(0.1))
    #expect(describe(m.handle(.monitorLate, now: at(32.1))) == ["kill monitor"])
    _ = m.handle(.monitorKilled, now: at(32.1))
    #expect(describe(m.handle(.endOfStream, now: at(32.2))) == ["close control", "kill daemon", "reap"])
    _ = m.handle(.monitorReaped(Self.monitorKilled), now: at(32.2))
    guard case .failure(let error)? = m.result else { Issue.record("no failure"); return }
    #expect(error.code == .aborted)
    #expect(error.status == nil)
  }

  @Test func aMonitorThatCannotBeSafelyKilledIsLeft() {
    var m = waiting(callerReaps: true, killable: false)
    _ = m.handle(.abort(detail: "x"), now: at(0.1))
    #expect(describe(m.handle(.monitorLate, now: at(40))) == [])
  }

  @Test func aLateTimerAfterTheEndOfStreamDoesNothing() {
    var m = waiting(callerReaps: true)
    _ = m.handle(.report(.exited(Self.exited2)), now: at(0.1))
    _ = m.handle(.endOfStream, now: at(0.1))
    #expect(describe(m.handle(.monitorLate, now: at(5.1))) == [])
  }

  // MARK: After the end

  @Test func nothingChangesAFinishedStartup() {
    var m = waiting()
    _ = m.handle(.report(.exited(Self.exited2)), now: at(0.1))
    _ = m.handle(.endOfStream, now: at(0.1))
    _ = m.handle(.monitorReaped(WaitStatus(rawValue: 0)), now: at(0.1))
    _ = m.handle(.readinessEnded, now: at(0.1))
    for event: StartupMachine.Event in [
      .abort(detail: "x"), .recordFailed(detail: "x"), .recorded, .deadlineFired, .monitorLate,
      .settleTimerFired(daemonExited: true, daemonExiting: true), .readinessSucceeded("x"), .readinessEnded, .endOfStream,
      .monitorReaped(nil), .report(.exited(Self.exited2)),
    ] {
      #expect(describe(m.handle(event, now: at(1))) == [], "\(event)")
    }
    guard case .failure(let error)? = m.result else { return }
    #expect(error.code == .exited)
  }
}

/// Actions as short strings, times in seconds after the start.
private func describe(_ actions: [StartupMachine.Action]) -> [String] {
  func time(_ t: UInt64) -> String {
    let s = Double(t &- StartupMachineTests.began) / 1e9
    let millis = Int((s * 1000).rounded())
    var text = "\(millis / 1000)." + String("00\(millis % 1000)".suffix(3))
    while text.hasSuffix("0") && !text.hasSuffix(".0") { text.removeLast() }
    return text
  }
  return actions.map { action in
    switch action {
    case .arm(let timer, let at): "arm \(timer) @\(time(at))"
    case .cancel(let timer): "cancel \(timer)"
    case .deliverStart(.success(let identity)): "start ok \(identity.pid)"
    case .deliverStart(.failure(let error)): "start fail \(error.code)"
    case .startReadiness: "start readiness"
    case .cancelReadiness: "cancel readiness"
    case .closeReadiness: "close readiness"
    case .closePIDFDs: "close pidfds"
    case .sendDetach: "detach"
    case .sendStop(let grace): "stop \(grace)"
    case .killDaemon: "kill daemon"
    case .killMonitor: "kill monitor"
    case .closeControl: "close control"
    case .reapMonitor: "reap"
    case .finish(.success(let confirmation)):
      "finish ok \(confirmation.value) \(time(StartupMachineTests.began &+ UInt64(confirmation.elapsed.nanoseconds)))"
    case .finish(.failure(let error)): "finish fail \(error.code)"
    }
  }
}
