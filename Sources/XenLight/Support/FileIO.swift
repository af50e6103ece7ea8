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

  /// `strerror(e)`.
  static func describe(errno e: Int32) -> String {
    String(cString: strerror(e))
  }
}
