#if canImport(Glibc)
import Glibc
#endif
import CSpawn

extension Spawner {
  /// Kills every process of `uid` as libxl's device-model reaper does: a child (C, between
  /// fork and exit) takes an exclusive lock on `lockPath`, sets its uids to (`reaperUID`,
  /// `uid`, 0) and sends `kill(-1, SIGKILL)`, which reaches exactly the processes whose real
  /// or saved uid is `uid` (or `reaperUID`, which must be a uid nothing else runs as), and
  /// never itself. Waits for the reaper on its pidfd, event-driven, and reaps it.
  /// `uid` 0 is refused: it would be every root process.
  public func killAll(uid: UInt32, reaperUID: UInt32, lockPath: String, what: String) async throws(SpawnError) {
    func failed(_ detail: String, _ error: SystemErrno? = nil) -> SpawnError {
      SpawnError(.stopFailed, what: what, errno: error, detail: detail)
    }
    guard uid != 0, reaperUID != 0 else { throw failed("refusing to kill the processes of uid 0") }
    var pidfd: Int32 = -1
    let pid = lockPath.withCString { cspawn_kill_uid(uid_t(uid), uid_t(reaperUID), $0, &pidfd) }
    guard pid > 0 else { throw failed("fork of the reaper", SystemErrno(rawValue: errno)) }
    var status: Int32 = 0
    if pidfd >= 0 {
      defer { close(pidfd) }
      // The reaper only waits for the lock, which another reaper holds for a moment.
      guard await loop.readable(pidfd, within: Spawner.killWaitNanoseconds) else {
        _ = cspawn_pidfd_send_signal(pidfd, SIGKILL)
        _ = cspawn_waitid(1, pidfd, 0, &status)
        throw failed("the reaper of uid \(uid) did not finish within 10 s")
      }
      _ = cspawn_waitid(1, pidfd, 0, &status)
    } else {
      // No clone3: a plain fork, our own unreaped child, waited for by pid.
      _ = cspawn_waitid(0, pid, 0, &status)
    }
    if cspawn_wifexited(status) == 0 || cspawn_wexitstatus(status) != 0 {
      let code = cspawn_wifexited(status) != 0 ? cspawn_wexitstatus(status) : 0
      throw failed("the reaper of uid \(uid) failed", code >= 100 ? SystemErrno(rawValue: code - 100) : nil)
    }
  }
}
