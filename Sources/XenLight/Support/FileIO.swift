#if canImport(Glibc)
import Glibc
#endif

/// Small whole-file helpers over open(2)/read(2)/write(2); no Foundation.
enum FileIO {
  /// The contents of `path` as UTF-8 text.
  static func readText(_ path: String) throws(XenLightError) -> String {
    String(decoding: try readBytes(path), as: UTF8.self)
  }

  /// The contents of `path`.
  static func readBytes(_ path: String) throws(XenLightError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      let e = errno
      throw XenLightError(.io, "cannot read \(path): \(describe(errno: e))", errno: e)
    }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        if errno == EINTR { continue }
        let e = errno
        throw XenLightError(.io, "cannot read \(path): \(describe(errno: e))", errno: e)
      }
      if n == 0 { return bytes }
      bytes.append(contentsOf: chunk[0..<n])
    }
  }

  /// Writes `text` to `path` whole: to a temporary file first, then renamed over it.
  static func writeText(_ text: String, to path: String) throws(XenLightError) {
    let temporary = path + ".tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      let e = errno
      throw XenLightError(.io, "cannot write \(temporary): \(describe(errno: e))", errno: e)
    }
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
      let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else {
        let e = errno
        close(fd)
        throw XenLightError(.io, "cannot write \(temporary): \(describe(errno: e))", errno: e)
      }
      bytes = bytes.dropFirst(n)
    }
    close(fd)
    guard rename(temporary, path) == 0 else {
      let e = errno
      throw XenLightError(.io, "cannot rename \(temporary) to \(path): \(describe(errno: e))", errno: e)
    }
  }

  /// `strerror(e)`.
  static func describe(errno e: Int32) -> String {
    String(cString: strerror(e))
  }
}
