#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// What `Spawner.stop` found and did.
public enum StopOutcome: Sendable, Hashable {
  /// Nothing was signalled: no process has the pid, or the one that has it is not the
  /// recorded one (another start time or another boot), or it had already exited.
  case alreadyExited
  /// It exited after SIGTERM, within the grace period.
  case terminated
  /// It outlived the grace period and was killed with SIGKILL.
  case killed
}

extension Spawner {
  /// How long a process may take to disappear after SIGKILL before `stop` gives up.
  static let killWaitNanoseconds: UInt64 = 10_000_000_000

  /// Stops the recorded process `identity`, from any process, never signalling another.
  ///
  /// Opens a pidfd for the pid first, then checks the live process against the identity
  /// (start time, boot id): the pidfd pins the process, so the check cannot race a reuse.
  /// Then signals only through the pidfd: SIGTERM, then SIGKILL if it has not exited after
  /// `grace`, waiting for the pidfd to become readable (event-driven). A stop in progress
  /// is not cancellable. Throws `.stopFailed` if signalling fails or the process outlives
  /// SIGKILL by 10 s.
  public func stop(_ identity: ProcessIdentity, what: String = "process", grace: Duration = .seconds(10)) async throws(SpawnError)
    -> StopOutcome
  {
    func failed(_ detail: String, _ error: SystemErrno? = nil) -> SpawnError {
      SpawnError(.stopFailed, what: what, pid: identity.pid, errno: error, detail: detail)
    }
    guard identity.pid > 0, identity.bootID == (try? ProcessIdentity.currentBootID()) else { return .alreadyExited }
    let pidfd: Int32
    do {
      pidfd = try system.pidfdOpen(identity.pid)
    } catch where error == .ESRCH {
      return .alreadyExited
    } catch where error == .ENOSYS {
      return try await stopWithoutPIDFD(identity, what: what, grace: grace)
    } catch {
      throw failed("pidfd_open", error)
    }
    defer { system.close(pidfd) }
    // The pid named this process when the pidfd was opened iff it names it now.
    guard isLive(identity) else { return .alreadyExited }
    if isReadableNow(pidfd) { return .alreadyExited }  // a zombie: it has exited, nothing to signal

    do { try system.pidfdSendSignal(pidfd, SIGTERM) } catch where error == .ESRCH {
      return .alreadyExited
    } catch {
      throw failed("pidfd_send_signal(SIGTERM)", error)
    }
    if await loop.readable(pidfd, within: grace.nanoseconds) { return .terminated }
    do { try system.pidfdSendSignal(pidfd, SIGKILL) } catch where error == .ESRCH {
      return .terminated
    } catch {
      throw failed("pidfd_send_signal(SIGKILL)", error)
    }
    if await loop.readable(pidfd, within: Spawner.killWaitNanoseconds) { return .killed }
    throw failed("still running 10 s after SIGKILL")
  }

  /// Whether the process with `identity.pid` now is the recorded one.
  private func isLive(_ identity: ProcessIdentity) -> Bool {
    guard let now = try? ProcessIdentity.of(pid: identity.pid) else { return false }
    return now.startTime == identity.startTime && now.bootID == identity.bootID
  }

  /// Kernels before 5.3 have no pidfds: check the identity right before each kill(2), and
  /// look for the end on short timers. The window between check and kill remains.
  private func stopWithoutPIDFD(_ identity: ProcessIdentity, what: String, grace: Duration) async throws(SpawnError)
    -> StopOutcome
  {
    guard isLive(identity) else { return .alreadyExited }
    do { try system.kill(identity.pid, SIGTERM) } catch where error == .ESRCH {
      return .alreadyExited
    } catch {
      throw SpawnError(.stopFailed, what: what, pid: identity.pid, errno: error, detail: "kill(SIGTERM)")
    }
    let step: UInt64 = 10_000_000
    var waited: UInt64 = 0
    while waited < grace.nanoseconds {
      try? await loop.sleep(nanoseconds: step)
      waited += step
      if !isLive(identity) || isZombie(identity.pid) { return .terminated }
    }
    guard isLive(identity) else { return .terminated }
    try? system.kill(identity.pid, SIGKILL)
    waited = 0
    while waited < Spawner.killWaitNanoseconds {
      try? await loop.sleep(nanoseconds: step)
      waited += step
      if !isLive(identity) || isZombie(identity.pid) { return .killed }
    }
    throw SpawnError(.stopFailed, what: what, pid: identity.pid, detail: "still running 10 s after SIGKILL")
  }

  private func isZombie(_ pid: Int32) -> Bool {
    let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 512)
    let n = read(fd, &buffer, buffer.count)
    guard n > 0, let paren = buffer[0..<n].lastIndex(of: UInt8(ascii: ")")), paren + 2 < n else { return false }
    return buffer[paren + 2] == UInt8(ascii: "Z")
  }
}
