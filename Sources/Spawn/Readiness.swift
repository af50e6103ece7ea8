import Reactor

/// A way a daemon confirms it started: QMP, a newline on a descriptor, sd_notify, a xenstore
/// node, a caller's check. `prepare` runs once per spawn, before the fork, and returns the
/// wait for that spawn.
///
/// A source that needs nothing from the daemon's side conforms to `ReadinessWait` too, and
/// `prepare` returns it as is. For example, confirming by "an AsyncSequence of values until
/// one matches":
///
/// ```swift
/// struct StateNode: ReadinessSource, ReadinessWait {
///   let values: @Sendable () -> AsyncThrowingStream<String, Error>
///   var awaiting: String { "state = running" }
///   func wait(_ context: ReadinessContext) async throws -> String {
///     for try await value in values() {
///       if value == "running" { return value }
///       context.report(status: value)
///     }
///     throw SpawnError(.protocolFailed, what: context.what, detail: "the state watch ended")
///   }
/// }
/// ```
public protocol ReadinessSource: Sendable {
  /// What the wait is for, in progress reports and timeout messages: "QMP on /run/q.sock".
  var awaiting: String { get }
  /// Arranges what the daemon needs (a descriptor to pass, an environment variable) and
  /// returns the wait for this spawn. Runs before the fork; throw to fail the spawn.
  func prepare(_ plan: inout LaunchPlan) throws(SpawnError) -> any ReadinessWait
}

/// One spawn's wait for its daemon's confirmation.
public protocol ReadinessWait: Sendable {
  /// Waits until the daemon confirms and returns the confirming value. Runs as soon as the
  /// daemon's pid is known, in its own task, cancelled when anything else decides the
  /// outcome (death, timeout, abort). Throw `SpawnError` (code `.protocolFailed`, `detail`
  /// saying what was received) when confirmation can no longer come; other errors count as
  /// protocol failures too. A daemon death reported shortly after takes precedence.
  /// Return promptly once cancelled (the loop's waits and sleeps throw then): the outcome is
  /// delivered only after this returns and `close` has run.
  func wait(_ context: ReadinessContext) async throws -> String
  /// Releases what `prepare` made. Called once, when the spawn ends, after `wait` has
  /// returned and before the outcome is delivered.
  func close()
}

extension ReadinessWait {
  public func close() {}
}

extension ReadinessSource where Self: ReadinessWait {
  public func prepare(_ plan: inout LaunchPlan) throws(SpawnError) -> any ReadinessWait { self }
}

/// What a wait knows of its spawn, and how it reports progress.
public struct ReadinessContext: Sendable {
  /// The daemon's name in messages.
  public let what: String
  /// The daemon, as recorded.
  public let identity: ProcessIdentity
  public var pid: Int32 { identity.pid }
  /// The loop the spawn runs on, for waiting on descriptors.
  public let loop: EventLoop
  let startup: Startup

  /// Publishes a progress line (the abort callback sees it as `SpawnProgress.status`).
  public func report(status: String) {
    let startup = self.startup
    loop.execute { startup.readinessReported(status: status) }
  }

  /// Moves the deadline to at least `duration` from now (sd_notify's EXTEND_TIMEOUT_USEC).
  public func extendDeadline(by duration: Duration) {
    let startup = self.startup
    let deadline = EventLoop.now().saturatingAdd(duration.nanoseconds)
    loop.execute { startup.extendDeadline(to: deadline) }
  }
}

/// Where a spawn stands, for the abort callback and progress displays.
public struct SpawnProgress: Sendable {
  public var what: String
  /// 0 until the daemon's pid is known.
  public var pid: Int32
  /// Since the spawn began.
  public var elapsed: Duration
  /// What confirmation is awaited: the source's `awaiting`.
  public var awaiting: String
  /// The last status the daemon reported (sd_notify STATUS=, a xenstore value...), if any.
  public var status: String?
}

/// A daemon that confirmed its startup and now runs on its own.
public struct SpawnConfirmation: Sendable {
  public var what: String
  public var identity: ProcessIdentity
  public var pid: Int32 { identity.pid }
  /// From the start of the spawn to the confirmation.
  public var elapsed: Duration
  /// What confirmed it: the QMP status, the line on the notification fd, "READY=1", the checked value.
  public var value: String
}

/// The earlier name of `SpawnConfirmation`, renamed because Swift Testing has a `Confirmation`.
@available(*, deprecated, renamed: "SpawnConfirmation")
public typealias Confirmation = SpawnConfirmation
