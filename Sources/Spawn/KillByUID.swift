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
    // No clone3: a plain fork, our own unreaped child, whose pidfd is opened now (before it
    // is reaped its pid cannot be another's).
    var pidfd = reaper.pidfd ?? -1
    if pidfd < 0 {
      do { pidfd = try system.pidfdOpen(reaper.pid) } catch { throw failed("no pidfd for the reaper [\(reaper.pid)]", error) }
    }
    defer { system.close(pidfd) }
    // The reaper only waits for the lock, which another reaper holds for a moment.
    guard await loop.readable(pidfd, within: Spawner.killWaitNanoseconds) else {
      try? system.pidfdSendSignal(pidfd, SIGKILL)
      if await loop.readable(pidfd, within: Spawner.killWaitNanoseconds) { _ = try? Self.reap(reaper.pid, system, nohang: true) }
      throw failed("the reaper of uid \(uid) did not finish within 10 s")
    }
    // It has exited (its pidfd is readable): this returns at once. By pid: P_PIDFD needs 5.4.
    let reaped: (pid: Int32, status: WaitStatus)?
    do { reaped = try Self.reap(reaper.pid, system, nohang: true) } catch {
      throw failed("waiting for the reaper [\(reaper.pid)]", error)
    }
    guard let status = reaped?.status.rawValue else { throw failed("the reaper [\(reaper.pid)] had not exited") }
    if cspawn_wifexited(status) == 0 || cspawn_wexitstatus(status) != 0 {
      let code = cspawn_wifexited(status) != 0 ? cspawn_wexitstatus(status) : 0
      throw failed("the reaper of uid \(uid) failed", code >= 100 ? SystemErrno(rawValue: code - 100) : nil)
    }
  }

  /// `waitid` of our child `pid`, retried on EINTR.
  private static func reap(_ pid: Int32, _ system: SystemCalls, nohang: Bool) throws(SystemErrno) -> (pid: Int32, status: WaitStatus)? {
    while true {
      do { return try system.waitid(.pid(pid), nohang) } catch where error == .EINTR { continue }
    }
  }
}
