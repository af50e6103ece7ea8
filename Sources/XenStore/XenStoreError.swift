/// The one error type of the xenstore libraries: a code (the errno names Xen's wire protocol
/// carries, plus local failures), the errno where there is one, and a message a user can act on.
public struct XenStoreError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What went wrong: a closed set, so a `switch` over it can be exhaustive. The raw value
  /// is the code's name: the errno name on the wire (`"ENOENT"`), or a local name for
  /// non-protocol failures (`"connection-lost"`).
  public enum Code: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    // The errno names of xs_wire.h's xsd_errors, in its order.
    case EINVAL = "EINVAL"
    case EACCES = "EACCES"
    case EEXIST = "EEXIST"
    case EISDIR = "EISDIR"
    case ENOENT = "ENOENT"
    case ENOMEM = "ENOMEM"
    case ENOSPC = "ENOSPC"
    case EIO = "EIO"
    case ENOTEMPTY = "ENOTEMPTY"
    case ENOSYS = "ENOSYS"
    case EROFS = "EROFS"
    case EBUSY = "EBUSY"
    case EAGAIN = "EAGAIN"
    case EISCONN = "EISCONN"
    case E2BIG = "E2BIG"
    case EPERM = "EPERM"
    case EQUOTA = "EQUOTA"

    /// The errno names Xen's clients understand, in `xsd_errors` order.
    public static let wireNames: [String] = [
      "EINVAL", "EACCES", "EEXIST", "EISDIR", "ENOENT", "ENOMEM", "ENOSPC", "EIO",
      "ENOTEMPTY", "ENOSYS", "EROFS", "EBUSY", "EAGAIN", "EISCONN", "E2BIG", "EPERM",
    ]

    // Local failures, never sent on the wire.
    /// A header announced a payload over 4096 bytes.
    case invalidLength = "invalid-length"
    /// No daemon answers at the resolved socket path.
    case connectFailed = "connect-failed"
    /// The connection closed or failed mid-conversation.
    case connectionLost = "connection-lost"
    /// The peer sent something the protocol does not allow.
    case protocolViolation = "protocol-violation"
    /// A path that is not a valid xenstore path.
    case invalidPath = "invalid-path"
    /// The waiting task was cancelled (what was sent may still be carried out).
    case cancelled = "cancelled"

    /// The code with this name; nil for a name that is not one of them.
    public init?(name: String) { self.init(rawValue: name) }

    /// The errno name on the wire (`"ENOENT"`), or a local name for non-protocol failures.
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

extension XenStoreError {
  /// `error` as the client's typed error: itself if it is one, `.cancelled` for a cancelled
  /// wait (the request may still be carried out), else a lost connection saying what failed.
  static func from(_ error: any Error, _ operation: String) -> XenStoreError {
    if let error = error as? XenStoreError { return error }
    if error is CancellationError { return XenStoreError(.cancelled, "\(operation): the waiting task was cancelled") }
    return XenStoreError(.connectionLost, "\(operation): \(error)")
  }
}
