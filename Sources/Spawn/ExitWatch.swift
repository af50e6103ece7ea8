#if canImport(Glibc)
import Glibc
#endif
import Reactor

extension Spawner {
  /// Waits, event-driven, until the recorded process `identity` has exited — from any
  /// process, child or not. Returns at once if it is not running now (gone, a zombie, or
  /// the pid belongs to another process or another boot). Cancelling the task ends the wait.
  ///
  /// The pidfd is opened first and the identity checked after, so a reused pid can never be
  /// mistaken for the process (as in `stop`). Without pidfds (ENOSYS) this throws
  /// `.stopFailed`: there is no event to wait on.
  public func waitForExit(_ identity: ProcessIdentity, what: String = "process") async throws(SpawnError) {
    guard identity.pid > 0, identity.bootID == (try? ProcessIdentity.currentBootID()) else { return }
    let pidfd: Int32
    do {
      pidfd = try system.pidfdOpen(identity.pid)
    } catch where error == .ESRCH {
      return
    } catch {
      throw SpawnError(.stopFailed, what: what, pid: identity.pid, errno: error, detail: "pidfd_open")
    }
    defer { system.close(pidfd) }
    guard (try? ProcessIdentity.of(pid: identity.pid)) == identity, !isReadableNow(pidfd) else { return }
    do {
      _ = try await loop.wait(for: .readable, on: pidfd)
    } catch {
      if Task.isCancelled { return }
      throw SpawnError(.stopFailed, what: what, pid: identity.pid, detail: "waiting for its exit failed: \(error)")
    }
  }

  /// Whether the recorded process `identity` is running now (not gone, not a zombie, not
  /// replaced by another process with its pid).
  public func isRunning(_ identity: ProcessIdentity) -> Bool {
    guard identity.pid > 0, (try? ProcessIdentity.of(pid: identity.pid)) == identity else { return false }
    guard let pidfd = try? system.pidfdOpen(identity.pid) else { return false }
    defer { system.close(pidfd) }
    return (try? ProcessIdentity.of(pid: identity.pid)) == identity && !isReadableNow(pidfd)
  }
}
