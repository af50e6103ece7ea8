#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// Exact reads and writes on a descriptor — a save file, or a migration transport's pipe —
/// waiting on the event loop when a non-blocking pipe has nothing yet (never on the pool).
/// Nothing is read ahead: what follows the bytes asked for stays in the descriptor for the
/// device model, which is handed the same descriptor.
public struct DescriptorStream: Sendable {
  public let fd: Int32
  /// Names the stream in messages ("migration stream", a file's path).
  public let source: String
  public let loop: EventLoop

  public init(fd: Int32, source: String, loop: EventLoop = .shared) {
    self.fd = fd
    self.source = source
    self.loop = loop
  }

  /// Makes a pipe or socket non-blocking, so that waits go through the loop.
  public func makeNonBlocking() {
    let flags = fcntl(fd, F_GETFL)
    if flags >= 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
  }

  /// Up to `count` bytes: fewer only at the end of the stream, or — `partial` — as soon as
  /// some are there.
  public func read(_ count: Int, what: String, partial: Bool = false) async throws(XenLightError) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var filled = 0
    while filled < count {
      let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, count - filled) }
      if n > 0 {
        filled += n
        if partial { break }
      } else if n == 0 {
        break
      } else if errno == EINTR {
        continue
      } else if errno == EAGAIN {
        try await wait(.readable, what: what)
      } else {
        let e = errno
        throw XenLightError(.io, "\(source): cannot read the \(what): \(FileIO.describe(errno: e))", errno: e)
      }
    }
    return Array(bytes[0..<filled])
  }

  /// Exactly `count` bytes, or `.io` naming what was cut short.
  public func readExactly(_ count: Int, what: String) async throws(XenLightError) -> [UInt8] {
    let bytes = try await read(count, what: what)
    guard bytes.count == count else {
      throw XenLightError(.io, "\(source): ended before the \(what) (\(bytes.count) of \(count) bytes)")
    }
    return bytes
  }

  /// Reads `message` exactly; anything else is an error naming what was expected.
  public func expect(_ message: [UInt8], what: String) async throws(XenLightError) {
    let got = try await readExactly(message.count, what: what)
    guard got == message else {
      throw XenLightError(.io, "\(source) contained unexpected data instead of the \(what)")
    }
  }

  /// Writes all of `bytes`.
  public func write(_ bytes: [UInt8], what: String) async throws(XenLightError) {
    var written = 0
    while written < bytes.count {
      let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
      if n > 0 {
        written += n
      } else if n < 0 && errno == EINTR {
        continue
      } else if n < 0 && errno == EAGAIN {
        try await wait(.writable, what: what)
      } else {
        let e = errno
        throw XenLightError(.io, "\(source): cannot write the \(what): \(FileIO.describe(errno: e))", errno: e)
      }
    }
  }

  /// A connected pair of Unix stream sockets (close-on-exec), for a device model to write
  /// into or read from where a file would not do.
  public static func socketPair() throws(XenLightError) -> (Int32, Int32) {
    var pair: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
      let e = errno
      throw XenLightError(.io, "socketpair: \(FileIO.describe(errno: e))", errno: e)
    }
    return (pair[0], pair[1])
  }

  /// Copies everything this (non-blocking) stream delivers into `output` until its end;
  /// returns the bytes copied.
  public func copy(to output: DescriptorStream) async throws(XenLightError) -> Int64 {
    var total: Int64 = 0
    while true {
      let chunk = try await read(1 << 20, what: "device model's state", partial: true)
      if chunk.isEmpty { return total }
      try await output.write(chunk, what: "device model's state")
      total += Int64(chunk.count)
    }
  }

  private func wait(_ events: EventLoop.Events, what: String) async throws(XenLightError) {
    do { _ = try await loop.wait(for: events, on: fd) } catch {
      throw XenLightError(.interrupted, "interrupted while waiting for the \(what) on \(source)")
    }
  }
}
