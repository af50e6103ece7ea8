#if canImport(Glibc)
import Glibc
#endif
import XenStore

/// A blocking raw-protocol client for tests: sends any bytes, reads replies with a timeout
/// (10 s), and keeps watch events apart from replies.
package final class RawClient {
  package let fd: Int32
  private var decoder = MessageDecoder()
  package private(set) var events: [Message] = []
  private var nextID: UInt32 = 1

  package init(_ path: String) throws {
    // Stored only once connected: a throw after every property is set would run deinit and
    // close the descriptor twice (see StressClient).
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
    let rc = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard rc == 0 else {
      let err = errno
      close(fd)
      throw StartupError(description: "connect \(path): \(String(cString: strerror(err)))")
    }
    self.fd = fd
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
  }

  deinit { close(fd) }

  package func sendBytes(_ bytes: [UInt8]) {
    var sent = 0
    while sent < bytes.count {
      let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
      if n <= 0 { return }
      sent += n
    }
  }

  /// The next message, or nil once the daemon closed the connection (or on timeout).
  package func receive() -> Message? {
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      if let m = try? decoder.next() { return m }
      let n = recv(fd, &buffer, buffer.count, 0)
      if n <= 0 { return nil }
      decoder.append(buffer[0..<n])
    }
  }

  /// Sends a request and returns its reply (events that come first are kept in `events`).
  package func request(_ type: MessageType, _ strings: String..., tx: UInt32 = 0) -> Message? {
    requestRaw(type, Array(strings.map { Array($0.utf8) + [0] }.joined()), tx: tx)
  }

  package func requestRaw(_ type: MessageType, _ payload: [UInt8], tx: UInt32 = 0) -> Message? {
    nextID += 1
    sendBytes(Message(type: type, requestID: nextID, transactionID: tx, payload: payload).encoded())
    while let m = receive() {
      if m.type == .watchEvent { events.append(m); continue }
      return m
    }
    return nil
  }

  /// The reply as text: an errno name, else the payload with NULs as `|`; "closed" if none.
  package func call(_ type: MessageType, _ strings: String..., tx: UInt32 = 0) -> String {
    text(requestRaw(type, Array(strings.map { Array($0.utf8) + [0] }.joined()), tx: tx))
  }

  /// WRITE with the value as raw bytes (not NUL-terminated, as libxenstore sends it).
  package func write(_ path: String, _ value: String, tx: UInt32 = 0) -> String {
    text(requestRaw(.write, Array(path.utf8) + [0] + Array(value.utf8), tx: tx))
  }

  package func text(_ m: Message?) -> String {
    guard let m else { return "closed" }
    if m.type == .error { return String(decoding: m.payload.dropLast(), as: UTF8.self) }
    return m.payloadDescription
  }

  /// Takes the events received so far, as `path|token|`.
  package func takeEvents() -> [String] {
    defer { events.removeAll() }
    return events.map(\.payloadDescription)
  }

  /// True once the daemon has closed this connection: reads until EOF or reset (10 s at most).
  package func isClosedByDaemon() -> Bool {
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = recv(fd, &buffer, buffer.count, 0)
      if n == 0 { return true }
      if n < 0 { return errno == ECONNRESET || errno == EPIPE }
    }
  }
}
