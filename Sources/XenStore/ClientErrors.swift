#if canImport(Glibc)
import Glibc
#endif

extension XenStoreError.Code {
  fileprivate static let errnoValues: [String: Int32] = [
    "EINVAL": Glibc.EINVAL, "EACCES": Glibc.EACCES, "EEXIST": Glibc.EEXIST, "EISDIR": Glibc.EISDIR, "ENOENT": Glibc.ENOENT,
    "ENOMEM": Glibc.ENOMEM, "ENOSPC": Glibc.ENOSPC, "EIO": Glibc.EIO, "ENOTEMPTY": Glibc.ENOTEMPTY, "ENOSYS": Glibc.ENOSYS,
    "EROFS": Glibc.EROFS, "EBUSY": Glibc.EBUSY, "EAGAIN": Glibc.EAGAIN, "EISCONN": Glibc.EISCONN, "E2BIG": Glibc.E2BIG,
    "EPERM": Glibc.EPERM,
  ]

  /// The errno a wire error name stands for (`ENOENT` for `"ENOENT"`); nil for local codes.
  public var errnoValue: Int32? { Self.errnoValues[name] }
}

extension XenStoreError {
  /// The error an ERROR reply carries. As libxenstore does, a name it does not know reads as
  /// EINVAL. `operation` says what was asked ("read /a/b"), for the message.
  init(reply: Message, operation: String) {
    let received = String(decoding: reply.fields.first ?? [], as: UTF8.self)
    let code = Code(name: received).flatMap { $0.errnoValue == nil ? nil : $0 } ?? .EINVAL
    let number = code.errnoValue ?? Glibc.EINVAL
    let reason = String(cString: strerror(number))
    let unknown = code.name == received ? "" : " (xenstored sent unknown error \"\(received)\")"
    self.init(code, "\(operation): \(reason)\(unknown)", errno: number)
  }
}
