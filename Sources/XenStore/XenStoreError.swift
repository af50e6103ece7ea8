/// The one error type of the xenstore libraries: a code (the errno names Xen's wire protocol
/// carries, plus local failures), the errno where there is one, and a message a user can act on.
public struct XenStoreError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What went wrong. Extensible: new codes are added as static members.
  public struct Code: Hashable, Sendable, CustomStringConvertible {
    /// The errno name on the wire (`"ENOENT"`), or a local name for non-protocol failures.
    public let name: String
    public init(name: String) { self.name = name }

    // The errno names of xs_wire.h's xsd_errors, in its order.
    public static let EINVAL = Code(name: "EINVAL")
    public static let EACCES = Code(name: "EACCES")
    public static let EEXIST = Code(name: "EEXIST")
    public static let EISDIR = Code(name: "EISDIR")
    public static let ENOENT = Code(name: "ENOENT")
    public static let ENOMEM = Code(name: "ENOMEM")
    public static let ENOSPC = Code(name: "ENOSPC")
    public static let EIO = Code(name: "EIO")
    public static let ENOTEMPTY = Code(name: "ENOTEMPTY")
    public static let ENOSYS = Code(name: "ENOSYS")
    public static let EROFS = Code(name: "EROFS")
    public static let EBUSY = Code(name: "EBUSY")
    public static let EAGAIN = Code(name: "EAGAIN")
    public static let EISCONN = Code(name: "EISCONN")
    public static let E2BIG = Code(name: "E2BIG")
    public static let EPERM = Code(name: "EPERM")
    public static let EQUOTA = Code(name: "EQUOTA")

    /// The errno names Xen's clients understand, in `xsd_errors` order.
    public static let wireNames: [String] = [
      "EINVAL", "EACCES", "EEXIST", "EISDIR", "ENOENT", "ENOMEM", "ENOSPC", "EIO",
      "ENOTEMPTY", "ENOSYS", "EROFS", "EBUSY", "EAGAIN", "EISCONN", "E2BIG", "EPERM",
    ]

    // Local failures, never sent on the wire.
    /// A header announced a payload over 4096 bytes.
    public static let invalidLength = Code(name: "invalid-length")
    /// No daemon answers at the resolved socket path.
    public static let connectFailed = Code(name: "connect-failed")
    /// The connection closed or failed mid-conversation.
    public static let connectionLost = Code(name: "connection-lost")
    /// The peer sent something the protocol does not allow.
    public static let protocolViolation = Code(name: "protocol-violation")
    /// A path that is not a valid xenstore path.
    public static let invalidPath = Code(name: "invalid-path")

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
