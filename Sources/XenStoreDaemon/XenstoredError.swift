#if canImport(Glibc)
import Glibc
#endif

/// The error of the daemon itself (starting, listening, its state directory), apart from the
/// client library's `XenStoreError`, whose codes are what the wire protocol and a client can
/// meet. A code, the errno where there is one, and a message a user can act on.
public struct XenstoredError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What went wrong: a closed set, so a `switch` over it can be exhaustive. The raw value
  /// is the code's name ("state-corrupted").
  public enum Code: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// A live daemon already answers on the socket path.
    case alreadyRunning = "already-running"
    /// The socket could not be created, bound or listened on.
    case listenFailed = "listen-failed"
    /// A state-directory file is damaged or inconsistent: the daemon refuses to serve from it.
    case stateCorrupted = "state-corrupted"
    /// A system call on the state directory failed (the errno says which).
    case stateIOFailed = "state-io-failed"
    /// Another xenstored holds the state directory.
    case stateLocked = "state-locked"

    /// The code's name, "state-corrupted".
    public var name: String { rawValue }
    public var description: String { name }
  }

  public var code: Code
  /// The system errno, where one caused this.
  public var errno: Int32?
  public var message: String

  public init(_ code: Code, _ message: String, errno: Int32? = nil) {
    self.code = code
    self.message = message
    self.errno = errno
  }

  public var description: String { message.isEmpty ? code.name : "\(message) (\(code.name))" }
}
