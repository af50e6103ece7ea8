/// The one error of the spawn library: what failed, how, and what the daemon printed.
///
/// Every error names the daemon (`what`), its pid once known, the time since the spawn
/// began, and the tail of what it wrote to its log since this spawn. `description` is one
/// message a user can act on, e.g.
/// `device model [1234] exited with status 1 during startup after 23 ms: qemu: -bogus: invalid option`.
public struct SpawnError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What went wrong: a closed set, so a `switch` over it can be exhaustive. The raw value
  /// is the code's name ("timed-out").
  public enum Code: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// A resource for the spawn could not be had (pipe, socket, fork, log file): `errno`, `detail` names the call.
    case spawnFailed = "spawn-failed"
    /// The daemon could not be executed: `errno` (ENOENT, EACCES, ENOEXEC...).
    case execFailed = "exec-failed"
    /// The daemon exited with a non-zero `status` before confirming.
    case exited = "exited"
    /// The daemon exited with status 0 before confirming.
    case exitedZero = "exited-zero"
    /// A signal killed the daemon before it confirmed: `status.signal`, `status.coreDumped`.
    case killedBySignal = "killed-by-signal"
    /// No confirmation within the timeout (`elapsed`); the daemon was stopped.
    case timedOut = "timed-out"
    /// The abort callback or task cancellation ended the wait (`detail` says which); the daemon was stopped.
    case aborted = "aborted"
    /// The confirmation protocol went wrong: `detail` says what was received; the daemon was stopped.
    case protocolFailed = "protocol-failed"
    /// The pid recording hook failed (`detail`); the daemon was stopped.
    case recordFailed = "record-failed"
    /// The startup monitor died unexpectedly (`status`); the daemon was killed.
    case monitorFailed = "monitor-failed"
    /// A stop could not finish: the process outlived SIGKILL, or signalling failed (`errno`).
    case stopFailed = "stop-failed"
    /// The spawn command is not usable (`detail`).
    case invalidCommand = "invalid-command"

    /// The code's name, "timed-out".
    public var name: String { rawValue }
    public var description: String { name }
  }

  public var code: Code
  /// The daemon, as the caller named it: "device model".
  public var what: String
  /// The daemon's pid, once it was known.
  public var pid: Int32?
  /// Time from the start of the spawn to the outcome.
  public var elapsed: Duration
  /// The system error, where one caused this.
  public var errno: SystemErrno?
  /// How the daemon (or, for `monitorFailed`, the monitor) ended.
  public var status: WaitStatus?
  /// The failing call, what the protocol received, or why the wait was aborted.
  public var detail: String
  /// At most about 1 KiB of what the daemon wrote to its log since this spawn, from a line start.
  public var logTail: String

  public init(
    _ code: Code, what: String, pid: Int32? = nil, elapsed: Duration = .zero, errno: SystemErrno? = nil,
    status: WaitStatus? = nil, detail: String = "", logTail: String = ""
  ) {
    self.code = code
    self.what = what
    self.pid = pid
    self.elapsed = elapsed
    self.errno = errno
    self.status = status
    self.detail = detail
    self.logTail = logTail
  }

  public var description: String {
    let name = pid.map { "\(what) [\($0)]" } ?? what
    let after = "after \(elapsed.spawnFormatted)"
    let sentence: String
    switch code {
    case .spawnFailed:
      sentence = "\(name) could not be spawned: \(detail) failed: \(errno?.description ?? "unknown error")"
    case .execFailed:
      sentence = "\(name) could not execute \(detail): \(errno?.description ?? "unknown error")"
    case .exited, .exitedZero, .killedBySignal:
      let how = status?.description ?? "ended"
      let when = code == .exitedZero ? "before confirming startup" : "during startup"
      sentence = "\(name) \(how) \(when) \(after)"
    case .timedOut:
      sentence = "\(name) did not confirm startup within \(elapsed.spawnFormatted) (awaiting \(detail)); it was stopped"
    case .aborted:
      sentence = "\(name) startup was aborted \(after) (\(detail)); it was stopped"
    case .protocolFailed:
      sentence = "\(name) startup confirmation failed \(after): \(detail); it was stopped"
    case .recordFailed:
      sentence = "\(name) could not be recorded: \(detail); it was stopped"
    case .monitorFailed:
      sentence = "\(name) startup monitor \(status?.description ?? "ended") unexpectedly \(after); the daemon was killed"
    case .stopFailed:
      sentence = "\(name) could not be stopped: \(detail)" + (errno.map { ": \($0)" } ?? "")
    case .invalidCommand:
      sentence = "\(name): invalid spawn command: \(detail)"
    }
    return logTail.isEmpty ? sentence : "\(sentence): \(logTail)"
  }
}

extension Duration {
  /// "40 µs", "23 ms", "1.5 s", "10 s": short and readable in one line.
  var spawnFormatted: String {
    let nanoseconds = self.nanoseconds
    if nanoseconds < 999_500 { return "\((nanoseconds + 500) / 1000) µs" }
    if nanoseconds < 1_000_000_000 { return "\((nanoseconds + 500_000) / 1_000_000) ms" }
    let tenths = (nanoseconds + 50_000_000) / 100_000_000
    return tenths % 10 == 0 ? "\(tenths / 10) s" : "\(tenths / 10).\(tenths % 10) s"
  }

  /// Whole nanoseconds, saturating; negative durations count as zero.
  var nanoseconds: UInt64 {
    let (seconds, attoseconds) = components
    guard seconds >= 0, attoseconds >= 0 else { return 0 }
    let (wide, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
    return overflow ? .max : wide.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000)).partialValue
  }
}

extension UInt64 {
  /// `self + other`, or `.max` where that overflows (a timeout of "forever").
  func saturatingAdd(_ other: UInt64) -> UInt64 {
    let (sum, overflow) = addingReportingOverflow(other)
    return overflow ? .max : sum
  }
}
