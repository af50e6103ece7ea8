#if canImport(Glibc)
import Glibc
#endif
import XenStore

/// Thin wrappers over the Unix-socket calls the server makes; each names the C calls it wraps.
enum UnixSocket {
  /// A non-blocking, close-on-exec `AF_UNIX` stream socket bound to `path` (mode `mode`) and
  /// listening (`socket`, `bind`, `chmod`, `listen`).
  static func listen(at path: String, mode: mode_t = 0o600, backlog: Int32 = 1024) throws(XenstoredError) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw failure(.listenFailed, "socket() for \(path)") }
    let bound = withAddress(path) { bind(fd, $0, $1) }
    guard let bound, bound == 0 else {
      let error = bound == nil ? XenstoredError(.listenFailed, "socket path \(path) is longer than 107 bytes")
                               : failure(.listenFailed, "cannot bind \(path)")
      close(fd)
      throw error
    }
    // listen before chmod: the chmod (IN_ATTRIB) is the last event on the file, so whoever
    // waits for the daemon by inotify (a domain monitor) can connect once it fires.
    guard Glibc.listen(fd, backlog) == 0, chmod(path, mode) == 0 else {
      let error = failure(.listenFailed, "cannot listen on \(path)")
      close(fd)
      unlink(path)
      throw error
    }
    return fd
  }

  /// Whether a daemon accepts connections at `path` (`connect` succeeds).
  static func isAnswering(_ path: String) -> Bool {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return withAddress(path) { connect(fd, $0, $1) } == 0
  }

  /// Makes `path` free for a new listener: refuses if a daemon answers there or if it is not a
  /// socket; removes a stale socket file left by a daemon that died.
  static func claim(_ path: String) throws(XenstoredError) {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    guard info.st_mode & S_IFMT == S_IFSOCK else {
      throw XenstoredError(.listenFailed, "\(path) exists and is not a socket; remove it or choose another path")
    }
    if isAnswering(path) {
      throw XenstoredError(.alreadyRunning, "a xenstored already serves \(path)")
    }
    unlink(path)
  }

  /// Calls `body` with a `sockaddr_un` for `path`; nil if the path does not fit `sun_path`.
  static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T? {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      raw.copyBytes(from: bytes)
      raw[bytes.count] = 0
    }
    return withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
  }

  static func failure(_ code: XenstoredError.Code, _ what: String) -> XenstoredError {
    let err = errno
    return XenstoredError(code, "\(what): \(String(cString: strerror(err)))", errno: err)
  }
}
