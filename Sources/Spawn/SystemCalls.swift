#if canImport(Glibc)
import Glibc
#endif
import CSpawn

/// The caller-side system calls of spawning, as replaceable functions: the one choke point
/// tests use to inject failures (fork EAGAIN, pipe EMFILE, clone3/pidfd_open/P_PIDFD ENOSYS)
/// and so exercise every fallback. Each retries EINTR and throws the errno.
/// The child side (everything between fork and exec) stays in C and is not injectable.
///
/// `package`, not public: for this package's tests (`Spawner(reaping:system:)`), not an API.
package struct SystemCalls: Sendable {
  /// How `startMonitor` forks.
  package enum ForkMethod: Sendable, Hashable {
    /// `clone3(CLONE_PIDFD)`: the monitor's pidfd comes with the fork.
    case clone3
    /// `clone(SIGCHLD)`, i.e. fork(2); a pidfd, if wanted, comes from `pidfdOpen` afterwards.
    case fork
  }

  /// Whom `waitid` waits for.
  package enum WaitTarget: Sendable, Hashable {
    /// `waitid(P_PIDFD)`; EINVAL or ENOSYS before Linux 5.4.
    case pidfd(Int32)
    /// `waitid(P_PID)`.
    case pid(Int32)
  }

  /// An opaque request for `cspawn_start_monitor`, valid while `startMonitor` runs.
  package struct MonitorRequest: @unchecked Sendable {
    let pointer: UnsafePointer<cspawn_monitor_request>
  }

  /// `pipe2(O_CLOEXEC)`: (read end, write end).
  package var pipe: @Sendable () throws(SystemErrno) -> (read: Int32, write: Int32)
  /// `socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC)`: the monitor's control channel.
  package var socketPair: @Sendable () throws(SystemErrno) -> (Int32, Int32)
  /// `socket(2)` with SOCK_CLOEXEC and SOCK_NONBLOCK added.
  package var socket: @Sendable (_ domain: Int32, _ type: Int32) throws(SystemErrno) -> Int32
  /// `open(2)` with O_CLOEXEC added.
  package var open: @Sendable (_ path: String, _ flags: Int32, _ mode: mode_t) throws(SystemErrno) -> Int32
  /// `cspawn_start_monitor`: forks the startup monitor. Returns its pid and, for clone3, its pidfd.
  package var startMonitor: @Sendable (MonitorRequest, ForkMethod) throws(SystemErrno) -> (pid: Int32, pidfd: Int32?)
  /// `pidfd_open(2)`.
  package var pidfdOpen: @Sendable (_ pid: Int32) throws(SystemErrno) -> Int32
  /// `pidfd_send_signal(2)`.
  package var pidfdSendSignal: @Sendable (_ pidfd: Int32, _ signal: Int32) throws(SystemErrno) -> Void
  /// `kill(2)`, only where no pidfd can be had (and after an identity check).
  package var kill: @Sendable (_ pid: Int32, _ signal: Int32) throws(SystemErrno) -> Void
  /// `waitid(WEXITED)`, with WNOHANG if `nohang`: the reaped pid and status, or nil if none yet.
  package var waitid: @Sendable (_ target: WaitTarget, _ nohang: Bool) throws(SystemErrno) -> (pid: Int32, status: WaitStatus)?
  /// `cspawn_send_control`: one DETACH or STOP to the monitor, never blocking, never SIGPIPE.
  package var sendControl: @Sendable (_ fd: Int32, _ command: Int32, _ graceMilliseconds: Int32) throws(SystemErrno) -> Void
  /// `cspawn_receive_report`: one report from the monitor, with the pidfd it carried; nil at
  /// the end of the stream; throws EAGAIN when none is there yet.
  package var receiveReport: @Sendable (_ fd: Int32) throws(SystemErrno) -> (report: cspawn_report, pidfd: Int32?)?
  /// `lseek(fd, 0, SEEK_END)`: where a log ends before this spawn appends to it.
  package var seekEnd: @Sendable (_ fd: Int32) throws(SystemErrno) -> Int64
  /// `close(2)`, once (never retried: on Linux the descriptor is gone even after EINTR).
  package var close: @Sendable (_ fd: Int32) -> Void
  /// `cspawn_kill_uid`: forks the reaper that kills every process of `uid` (see `killAll`).
  package var startReaper: @Sendable (_ uid: UInt32, _ reaperUID: UInt32, _ lockPath: String) throws(SystemErrno)
    -> (pid: Int32, pidfd: Int32?)

  /// The real calls.
  package static let live = SystemCalls(
    pipe: { () throws(SystemErrno) in
      var fds: [Int32] = [-1, -1]
      guard cspawn_pipe_cloexec(&fds) == 0 else { throw .current }
      return (fds[0], fds[1])
    },
    socketPair: { () throws(SystemErrno) in
      var fds: [Int32] = [-1, -1]
      guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
        throw .current
      }
      return (fds[0], fds[1])
    },
    socket: { (domain, type) throws(SystemErrno) in
      let fd = Glibc.socket(domain, type | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
      guard fd >= 0 else { throw .current }
      return fd
    },
    open: { (path, flags, mode) throws(SystemErrno) in
      while true {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        if fd >= 0 { return fd }
        if errno != Glibc.EINTR { throw .current }
      }
    },
    startMonitor: { (request, method) throws(SystemErrno) in
      var pidfd: Int32 = -1
      let pid = cspawn_start_monitor(request.pointer, method == .clone3 ? 0 : 1, &pidfd)
      guard pid > 0 else { throw .current }
      return (pid, pidfd >= 0 ? pidfd : nil)
    },
    pidfdOpen: { pid throws(SystemErrno) in
      let fd = cspawn_pidfd_open(pid, 0)
      guard fd >= 0 else { throw .current }
      return fd
    },
    pidfdSendSignal: { (pidfd, signal) throws(SystemErrno) in
      guard cspawn_pidfd_send_signal(pidfd, signal) == 0 else { throw .current }
    },
    kill: { (pid, signal) throws(SystemErrno) in
      guard Glibc.kill(pid, signal) == 0 else { throw .current }
    },
    waitid: { (target, nohang) throws(SystemErrno) in
      var status: Int32 = 0
      let pid: pid_t
      switch target {
      case .pidfd(let fd): pid = cspawn_waitid(1, fd, nohang ? 1 : 0, &status)
      case .pid(let id): pid = cspawn_waitid(0, id, nohang ? 1 : 0, &status)
      }
      if pid < 0 { throw .current }
      return pid == 0 ? nil : (pid, WaitStatus(rawValue: status))
    },
    sendControl: { (fd, command, grace) throws(SystemErrno) in
      guard cspawn_send_control(fd, command, grace) == 0 else { throw .current }
    },
    receiveReport: { fd throws(SystemErrno) in
      var report = cspawn_report()
      var pidfd: Int32 = -1
      let n = cspawn_receive_report(fd, &report, &pidfd)
      if n < 0 { throw .current }
      if n == 0 { return nil }
      if n != MemoryLayout<cspawn_report>.size {
        // A torn message cannot happen on SOCK_SEQPACKET: an unknown report, ignored.
        if pidfd >= 0 { Glibc.close(pidfd) }
        return (cspawn_report(), nil)
      }
      return (report, pidfd >= 0 ? pidfd : nil)
    },
    seekEnd: { fd throws(SystemErrno) in
      let offset = lseek(fd, 0, SEEK_END)
      guard offset >= 0 else { throw .current }
      return Int64(offset)
    },
    close: { fd in _ = Glibc.close(fd) },
    startReaper: { (uid, reaperUID, lockPath) throws(SystemErrno) in
      var pidfd: Int32 = -1
      let pid = lockPath.withCString { cspawn_kill_uid(uid_t(uid), uid_t(reaperUID), $0, &pidfd) }
      guard pid > 0 else { throw .current }
      return (pid, pidfd >= 0 ? pidfd : nil)
    }
  )
}
