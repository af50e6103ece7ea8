import Testing
import Spawn
@testable import XenLight

/// The domain monitor's decisions (`MonitorMachine`, `MonitorPlan`), every input in every
/// state: what it does with a guest's fate is decided here, not in its I/O.
@Suite struct MonitorMachineTests {
  typealias Input = MonitorMachine.Input
  typealias Decision = MonitorMachine.Decision

  /// Every input, with each value of its facts.
  static let inputs: [Input] = {
    var all: [Input] = [.nothing, .xenstoreLost, .stopRequested]
    for going in [false, true] {
      all += ShutdownReason.allCases.map { .shutdown($0, going: going) }
      all += [.paused(going: going), .resumed(going: going), .deviceModelExited(going: going)]
    }
    for exists in [false, true] {
      for running in [false, true] { all.append(.recordsChanged(exists: exists, recordedRunning: running)) }
    }
    return all
  }()

  /// The decision in each state, written out input by input (the specification).
  static func expected(_ input: Input, live: Bool, preserved: Bool) -> Decision {
    switch input {
    case .stopRequested: return .stop
    case .xenstoreLost: return .reconnect
    case .recordsChanged(exists: false, _): return .end
    case .recordsChanged(exists: true, recordedRunning: true) where !live: return .takeOver
    case .recordsChanged: return .ignore
    case .deviceModelExited where !live: return .end
    case _ where !live: return .hold
    case .nothing: return .ignore
    case .shutdown(_, going: true), .paused(going: true), .resumed(going: true), .deviceModelExited(going: true): return .ignore
    case .shutdown where preserved, .paused where preserved, .resumed where preserved: return .ignore
    case .shutdown(let reason, _): return .act(reason)
    case .paused: return .record(.paused)
    case .resumed: return .record(.running)
    case .deviceModelExited: return preserved ? .record(.crashed) : .act(.crash)
    }
  }

  static func machine(live: Bool, preserved: Bool) -> MonitorMachine {
    var machine = MonitorMachine(live: live)
    if preserved { machine.preserve() }
    return machine
  }

  @Test(arguments: [(false, false), (true, false), (true, true)])
  func everyInputInEveryState(live: Bool, preserved: Bool) {
    for input in Self.inputs {
      var machine = Self.machine(live: live, preserved: preserved)
      let decision = machine.decide(input)
      #expect(decision == Self.expected(input, live: live, preserved: preserved), "\(input), live \(live), preserved \(preserved)")
      // Only a hand-over changes the state; nothing else, whatever the input.
      #expect(machine.live == (live || decision == .takeOver), "\(input)")
      #expect(machine.preserved == preserved, "\(input)")
    }
  }

  /// A guest's shutdown reported before create handed the domain over is held, and acted on
  /// once, after the hand-over; never before, never twice.
  @Test func aShutdownBeforeTheHandOverIsActedOnOnceAfterIt() {
    var machine = MonitorMachine(live: false)
    #expect(machine.decide(.shutdown(.reboot, going: false)) == .hold)
    #expect(machine.decide(.recordsChanged(exists: true, recordedRunning: false)) == .ignore)
    #expect(machine.decide(.recordsChanged(exists: true, recordedRunning: true)) == .takeOver)
    #expect(machine.decide(.shutdown(.reboot, going: false)) == .act(.reboot))
    #expect(machine.decide(.recordsChanged(exists: true, recordedRunning: true)) == .ignore)
  }

  /// After `preserve`, a second shutdown is not acted on; the device model's end is recorded.
  @Test func aPreservedDomainIsNotActedOnAgain() {
    var machine = MonitorMachine(live: true)
    #expect(machine.decide(.shutdown(.crash, going: false)) == .act(.crash))
    machine.preserve()
    #expect(machine.decide(.shutdown(.poweroff, going: false)) == .ignore)
    #expect(machine.decide(.deviceModelExited(going: false)) == .record(.crashed))
    #expect(machine.decide(.recordsChanged(exists: false, recordedRunning: false)) == .end)
  }

  /// A destroy in progress (`xl destroy` marks the domain dying) is never taken for a crash.
  @Test func theDeviceModelsEndUnderADestroyIsNotACrash() {
    var machine = MonitorMachine(live: true)
    #expect(machine.decide(.deviceModelExited(going: true)) == .ignore)
    #expect(machine.decide(.recordsChanged(exists: false, recordedRunning: false)) == .end)
  }

  @Test func qmpEventsAreReadAsXenReasons() {
    func input(_ name: String, _ data: JSON = .null) -> Input {
      Input.of(QMPClient.Event(name: name, data: data, timestampMicroseconds: 1), going: false)
    }
    #expect(input("SHUTDOWN", .object([("reason", .string("guest-reset"))])) == .shutdown(.reboot, going: false))
    #expect(input("SHUTDOWN", .object([("reason", .string("host-qmp-system-reset"))])) == .shutdown(.reboot, going: false))
    #expect(input("SHUTDOWN", .object([("reason", .string("guest-shutdown"))])) == .shutdown(.poweroff, going: false))
    #expect(input("SHUTDOWN", .object([("reason", .string("guest-panic"))])) == .shutdown(.crash, going: false))
    #expect(input("SHUTDOWN", .object([("reason", .string("host-signal"))])) == .nothing, "the exit decides")
    #expect(input("GUEST_PANICKED") == .shutdown(.crash, going: false))
    #expect(input("WATCHDOG") == .shutdown(.watchdog, going: false))
    #expect(input("STOP") == .paused(going: false))
    #expect(input("RESUME") == .resumed(going: false))
    #expect(input("status", .string("running")) == .nothing)
    #expect(input("status", .string("paused")) == .paused(going: false))
    #expect(input("status", .string("guest-panicked")) == .shutdown(.crash, going: false))
    #expect(input("status", .string("shutdown")) == .shutdown(.poweroff, going: false))
    #expect(input("BLOCK_JOB_READY") == .nothing)
  }

  /// Every reason under every action: xl's `handle_domain_death`.
  @Test(arguments: ShutdownReason.allCases)
  func planForEveryAction(reason: ShutdownReason) {
    let died: RunState = reason == .crash || reason == .watchdog ? .crashed : .shutdown
    let expected: [DomainAction?: MonitorPlan] = [
      nil: MonitorPlan(dump: false, then: .destroy),
      .destroy: MonitorPlan(dump: false, then: .destroy),
      .coredumpDestroy: MonitorPlan(dump: true, then: .destroy),
      .preserve: MonitorPlan(dump: false, then: .preserve(died)),
      .restart: MonitorPlan(dump: false, then: .restart(renamed: false, kept: .shutdown)),
      .softReset: MonitorPlan(dump: false, then: .restart(renamed: false, kept: .shutdown)),
      .coredumpRestart: MonitorPlan(dump: true, then: .restart(renamed: false, kept: .shutdown)),
      .renameRestart: MonitorPlan(dump: false, then: .restart(renamed: true, kept: reason == .crash ? .crashed : .shutdown)),
    ]
    #expect(expected.count == DomainAction.allCases.count + 1, "every action has its row")
    for (action, plan) in expected { #expect(MonitorPlan.of(reason, action: action) == plan, "\(String(describing: action))") }
  }
}
