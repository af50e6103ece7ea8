#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// Opening the client's non-blocking Unix socket without blocking the caller's thread.
enum ClientSocket {
  /// A connected, non-blocking, close-on-exec stream socket to `path`
  /// (`socket(AF_UNIX, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC)` + `connect`).
  static func connect(to path: String, loop: EventLoop) async throws(XenStoreError) -> Int32 {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
      throw connectError(path: path, errno: ENAMETOOLONG)
    }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      raw.copyBytes(from: bytes)
      raw[bytes.count] = 0
    }
    let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    let fd = socket(AF_UNIX, type, 0)
    guard fd >= 0 else { throw connectError(path: path, errno: errno) }

    // A full listen backlog makes a non-blocking AF_UNIX connect fail with EAGAIN instead of
    // waiting; there is no readiness event for "room in the backlog", so retry with backoff.
    var backoffMilliseconds = 1
    var waitedMilliseconds = 0
    while true {
      let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
      }
      if rc == 0 { return fd }
      let error = errno
      do {
        switch error {
        case EINPROGRESS, EINTR:
          _ = try await loop.wait(for: .writable, on: fd)
          let pending = socketError(fd)
          if pending == 0 { return fd }
          throw connectError(path: path, errno: pending)
        case EAGAIN where waitedMilliseconds < 10_000:
          try await Task.sleep(for: .milliseconds(backoffMilliseconds))
          waitedMilliseconds += backoffMilliseconds
          backoffMilliseconds = min(backoffMilliseconds * 2, 100)
        default:
          throw connectError(path: path, errno: error)
        }
      } catch {
        Glibc.close(fd)
        throw XenStoreError.from(error, "connecting to \(path)")
      }
    }
  }

  /// `getsockopt(SO_ERROR)`: the outcome of a connect that was in progress.
  private static func socketError(_ fd: Int32) -> Int32 {
    var value: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) == 0 else { return errno }
    return value
  }

  /// The failure of connecting to `path`, worded for the two cases users meet most.
  static func connectError(path: String, errno code: Int32) -> XenStoreError {
    let reason = String(cString: strerror(code))
    let message: String
    switch code {
    case ENOENT:
      message = "cannot connect to xenstored: no socket at \(path) (\(reason)); is xenstored running? XENSTORED_PATH selects another socket"
    case ECONNREFUSED:
      message = "cannot connect to xenstored: nothing listens on \(path) (\(reason)); the socket is stale or the daemon is gone"
    default:
      message = "cannot connect to xenstored at \(path): \(reason)"
    }
    return XenStoreError(.connectFailed, message, errno: code)
  }
}
