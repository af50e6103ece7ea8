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
    let reaper: (pid: Int32, pidfd: Int32?)
    do { reaper = try system.startReaper(uid, reaperUID, lockPath) } catch { throw failed("fork of the reaper", error) }
    var status: Int32 = 0
    if let pidfd = reaper.pidfd {
      defer { system.close(pidfd) }
      // The reaper only waits for the lock, which another reaper holds for a moment.
      guard await loop.readable(pidfd, within: Spawner.killWaitNanoseconds) else {
        try? system.pidfdSendSignal(pidfd, SIGKILL)
        _ = try? system.waitid(.pidfd(pidfd), false)
        throw failed("the reaper of uid \(uid) did not finish within 10 s")
      }
      status = (try? system.waitid(.pidfd(pidfd), false))??.status.rawValue ?? 0
    } else {
      // No clone3: a plain fork, our own unreaped child, waited for by pid.
      status = (try? system.waitid(.pid(reaper.pid), false))??.status.rawValue ?? 0
    }
    if cspawn_wifexited(status) == 0 || cspawn_wexitstatus(status) != 0 {
      let code = cspawn_wifexited(status) != 0 ? cspawn_wexitstatus(status) : 0
      throw failed("the reaper of uid \(uid) failed", code >= 100 ? SystemErrno(rawValue: code - 100) : nil)
    }
  }
}
