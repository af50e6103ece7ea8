#if canImport(Glibc)
import Glibc
#endif

/// Telling a supervisor that the daemon is listening.
enum Readiness {
  /// s6-style: a newline on `fd`, then close it.
  static func signal(fd: Int32) {
    var newline: UInt8 = 10
    _ = write(fd, &newline, 1)
    close(fd)
  }

  /// systemd-style: a `READY=1` datagram to `$NOTIFY_SOCKET` (a path, or `@name` for the
  /// abstract namespace), as `sd_notify` sends it.
  static func notifySystemd() {
    guard let raw = getenv("NOTIFY_SOCKET") else { return }
    var path = Array(String(cString: raw).utf8)
    guard !path.isEmpty else { return }
    if path[0] == UInt8(ascii: "@") { path[0] = 0 }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return }
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
    let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return }
    defer { close(fd) }
    let message = Array("READY=1\nMAINPID=\(getpid())\n".utf8)
    let length = socklen_t(MemoryLayout.offset(of: \sockaddr_un.sun_path)! + path.count)
    _ = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { addr in
        message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), addr, length) }
      }
    }
  }
}
