#if canImport(Glibc)
import Glibc
#endif
import CSpawn

/// A system error number, as a failing call left it in `errno`. Named so that it does not
/// clash with swift-system's `Errno` in a program that imports both.
public struct SystemErrno: Error, Hashable, Sendable, CustomStringConvertible {
  public let rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }

  /// The calling thread's `errno`, right after a failed call.
  static var current: SystemErrno { SystemErrno(rawValue: errno) }

  /// The symbolic name, "ENOENT" (`strerrorname_np`).
  public var name: String { cspawn_errno_name(rawValue).map { String(cString: $0) } ?? "errno \(rawValue)" }
  /// The C library's message, "No such file or directory" (`strerror`).
  public var message: String { String(cString: strerror(rawValue)) }
  /// "No such file or directory (ENOENT)".
  public var description: String { "\(message) (\(name))" }

  public static let EPERM = SystemErrno(rawValue: Glibc.EPERM)
  public static let ENOENT = SystemErrno(rawValue: Glibc.ENOENT)
  public static let ESRCH = SystemErrno(rawValue: Glibc.ESRCH)
  public static let EINTR = SystemErrno(rawValue: Glibc.EINTR)
  public static let EAGAIN = SystemErrno(rawValue: Glibc.EAGAIN)
  public static let EACCES = SystemErrno(rawValue: Glibc.EACCES)
  public static let ECHILD = SystemErrno(rawValue: Glibc.ECHILD)
  public static let EINVAL = SystemErrno(rawValue: Glibc.EINVAL)
  public static let EMFILE = SystemErrno(rawValue: Glibc.EMFILE)
  public static let ENOSYS = SystemErrno(rawValue: Glibc.ENOSYS)
  public static let ENOEXEC = SystemErrno(rawValue: Glibc.ENOEXEC)
  public static let ECONNREFUSED = SystemErrno(rawValue: Glibc.ECONNREFUSED)
}

/// A signal number with its name.
public struct Signal: Hashable, Sendable, CustomStringConvertible {
  public let rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }
  /// "SIGSEGV" (`sigabbrev_np`), or "signal 40" for one without a name.
  public var description: String { cspawn_signal_name(rawValue).map { "SIG" + String(cString: $0) } ?? "signal \(rawValue)" }

  public static let terminate = Signal(rawValue: SIGTERM)
  public static let kill = Signal(rawValue: SIGKILL)
}

/// How a process ended, decoded from a `waitpid`-format status.
public struct WaitStatus: Hashable, Sendable, CustomStringConvertible {
  public let rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }

  /// The exit code, if the process exited.
  public var exitCode: Int32? { cspawn_wifexited(rawValue) != 0 ? cspawn_wexitstatus(rawValue) : nil }
  /// The signal that killed it, if one did.
  public var signal: Signal? { cspawn_wifsignaled(rawValue) != 0 ? Signal(rawValue: cspawn_wtermsig(rawValue)) : nil }
  public var coreDumped: Bool { cspawn_wifsignaled(rawValue) != 0 && cspawn_wcoredump(rawValue) != 0 }

  /// "exited with status 1", "was killed by signal SIGSEGV (core dumped)".
  public var description: String {
    if let exitCode { return "exited with status \(exitCode)" }
    if let signal { return "was killed by signal \(signal)" + (coreDumped ? " (core dumped)" : "") }
    return "ended with unknown wait status 0x\(String(rawValue, radix: 16))"
  }
}
