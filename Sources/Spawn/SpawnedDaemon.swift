import Reactor

/// A daemon started and not yet confirmed: the handle `Spawner.start` returns.
///
/// Keep it while doing other work, then `confirm()`. A death in between is reported by
/// `confirm`, never lost. Dropping the handle without confirming stops the daemon.
public final class SpawnedDaemon: Sendable {
  /// The daemon's name in messages.
  public var what: String { startup.what }
  /// The daemon, as recorded: pid, start time, boot id.
  public let identity: ProcessIdentity
  public var pid: Int32 { identity.pid }
  /// The startup monitor's pid: the daemon's parent until it detaches.
  public var monitorPID: Int32 { startup.monitorPID }
  let startup: Startup

  init(startup: Startup, identity: ProcessIdentity) {
    self.startup = startup
    self.identity = identity
  }

  /// Waits for the first of confirmation, death, timeout or abort.
  ///
  /// Confirmed: the monitor has exited and been reaped, and the daemon runs on, no longer
  /// the caller's child. Otherwise throws the one `SpawnError` that says what happened; a
  /// daemon that was still running (timeout, abort, protocol failure) has been stopped and
  /// reaped by then. `abort` is asked on every wake-up and at least every 100 ms, on the
  /// spawner's loop thread (keep it quick); returning true aborts. Cancelling the task
  /// aborts too. Calling `confirm` again returns the same outcome.
  public func confirm(abort: (@Sendable (SpawnProgress) -> Bool)? = nil) async throws(SpawnError) -> SpawnConfirmation {
    let startup = self.startup
    let loop = startup.loop
    let result = await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        loop.execute { startup.awaitOutcome(abort: abort, continuation) }
      }
    } onCancel: {
      loop.execute { startup.abort(detail: "the task was cancelled") }
    }
    return try result.get()
  }

  deinit {
    // Not confirmed (or still confirming in nobody's task): stop the daemon.
    let startup = self.startup
    startup.loop.execute { if startup.result == nil { startup.abort(detail: "the spawn was dropped unconfirmed") } }
  }
}
