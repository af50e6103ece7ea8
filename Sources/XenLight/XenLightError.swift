import Spawn
import XenStore

/// The one error type of the toolstack library: a code, a message a user can act on, the
/// place in a config file it concerns (if any), the errno where there is one, and the
/// library error it came from (`cause`), kept whole rather than flattened into the message.
public struct XenLightError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What went wrong: a closed set, so a `switch` over it can be exhaustive. The raw value
  /// is the code's name ("device-model-failed").
  public enum Code: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The config file is not valid xl.cfg syntax.
    case syntax = "syntax"
    /// The config parses but a setting is wrong (missing, wrong type, bad value).
    case invalidConfig = "invalid-config"
    /// A file could not be read or written.
    case io = "io"
    /// xenstore could not be reached or answered with an error.
    case xenstore = "xenstore"
    /// The connection to xenstored was lost (the daemon died or closed it).
    case xenstoreLost = "xenstore-lost"
    /// A domain with the requested name already exists.
    case duplicateName = "duplicate-name"
    /// No domain with the given name or id.
    case notFound = "not-found"
    /// The device model failed to start (exec error, exit, signal, protocol violation).
    case deviceModelFailed = "device-model-failed"
    /// The device model did not confirm startup in time.
    case timedOut = "timed-out"
    /// The operation was interrupted (SIGINT, SIGTERM, task cancellation).
    case interrupted = "interrupted"
    /// The domain is not in a state the verb can act on (paused for shutdown, no console…).
    case invalidState = "invalid-state"
    /// The guest has no PV control interface and the ACPI fallback was not asked for (libxl's ERROR_NOPARAVIRT).
    case noParavirt = "no-paravirt"
    /// The domain monitor did not start or confirm.
    case monitorFailed = "monitor-failed"
    /// The guest died (panicked, powered off or reset) before it confirmed (`guest_ready_console`).
    case guestFailed = "guest-failed"

    /// The code's name, "device-model-failed".
    public var name: String { rawValue }
    public var description: String { name }
  }

  /// The error of a library below that this one came from, whole: for a device model that
  /// did not start, the `SpawnError` with its pid, how it ended and its log tail; for a
  /// xenstore failure, the `XenStoreError` with its code.
  public enum Cause: Hashable, Sendable {
    case spawn(SpawnError)
    case xenstore(XenStoreError)

    /// `error` as a cause, if it is a `SpawnError` or a `XenStoreError`.
    public init?(_ error: any Error) {
      if let error = error as? SpawnError {
        self = .spawn(error)
      } else if let error = error as? XenStoreError {
        self = .xenstore(error)
      } else {
        return nil
      }
    }

    /// The `SpawnError`, if that is the cause.
    public var spawnError: SpawnError? {
      if case .spawn(let error) = self { return error }
      return nil
    }

    /// The `XenStoreError`, if that is the cause.
    public var xenStoreError: XenStoreError? {
      if case .xenstore(let error) = self { return error }
      return nil
    }
  }

  public var code: Code
  public var message: String
  /// Where in a config file (or the command line) the problem is.
  public var location: SourceLocation?
  /// The system errno, where one caused this.
  public var errno: Int32?
  /// The library error this one came from; the message already says what it says.
  public var cause: Cause?

  public init(
    _ code: Code, _ message: String, at location: SourceLocation? = nil, errno: Int32? = nil, cause: Cause? = nil
  ) {
    self.code = code
    self.message = message
    self.location = location
    self.errno = errno
    self.cause = cause
  }

  /// `file:line:column: message`, the form compilers and xl use.
  public var description: String {
    guard let location else { return message }
    return "\(location): \(message)"
  }
}

/// A position in a config source: the file name (or "command line"), 1-based line and column.
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
  public var file: String
  public var line: Int
  public var column: Int

  public init(file: String, line: Int, column: Int) {
    self.file = file
    self.line = line
    self.column = column
  }

  public var description: String { "\(file):\(line):\(column)" }
}

extension Duration {
  /// "0.4 ms", "23 ms", "1.5 s": short, for messages.
  public var readable: String {
    let (seconds, attoseconds) = components
    let microseconds = max(0, seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
    if microseconds < 1000 { return "0.\(microseconds / 100) ms" }
    if microseconds < 1_000_000 { return "\((microseconds + 500) / 1000) ms" }
    let tenths = (microseconds + 50_000) / 100_000
    return tenths % 10 == 0 ? "\(tenths / 10) s" : "\(tenths / 10).\(tenths % 10) s"
  }
}
