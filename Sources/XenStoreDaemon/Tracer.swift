#if canImport(Glibc)
import Glibc
#endif
import XenStore

/// Writes one line per request, reply and event to a trace file, as C xenstored's `-T` does:
/// `IN conn#3 2026-01-02 03:04:05 READ (/local/domain/0/name )`. Loop-confined.
final class Tracer {
  private var fd: Int32
  let path: String

  init(path: String) throws(XenstoredError) {
    self.path = path
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw UnixSocket.failure(.listenFailed, "cannot open trace file \(path)") }
    line("\n***\n")
  }

  deinit { close(fd) }

  /// Reopens the file (after log rotation; C xenstored does this on SIGHUP).
  func reopen() {
    let newFD = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
    guard newFD >= 0 else { return }
    close(fd)
    fd = newFD
  }

  func message(_ message: Message, outgoing: Bool, connection: ConnectionID) {
    let text = String(decoding: message.payload.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    line("\(outgoing ? "OUT" : "IN ") \(connection) \(Self.timestamp()) \(message.type) (\(text))\n")
  }

  func note(_ text: String) { line(text + "\n") }

  private func line(_ text: String) {
    var text = text
    text.withUTF8 { bytes in _ = write(fd, bytes.baseAddress, bytes.count) }
  }

  private static func timestamp() -> String {
    var now = time(nil)
    var parts = tm()
    localtime_r(&now, &parts)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
  }
}
