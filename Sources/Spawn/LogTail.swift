#if canImport(Glibc)
import Glibc
#endif

/// The daemon's log file and where this spawn's part of it begins.
public struct LogFile: Sendable {
  public let path: String
  /// The end of the file when the spawn began: what follows is this spawn's.
  public let offset: Int64

  public init(path: String, offset: Int64) {
    self.path = path
    self.offset = offset
  }

  /// At most `limit` bytes of what was written since `offset`, starting at a line boundary,
  /// without trailing blank lines. Empty if nothing was written or the file is unreadable.
  public func tail(limit: Int = 1024) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0, Int64(info.st_size) > offset else { return "" }
    let end = Int64(info.st_size)
    let start = max(offset, end - Int64(limit))
    var bytes = [UInt8](repeating: 0, count: Int(end - start))
    let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(start)) }
    guard count > 0 else { return "" }
    var text = bytes[0..<count]
    // Cut into the middle of a line: start after its end, unless it is the only line.
    if start > offset, let newline = text.firstIndex(of: UInt8(ascii: "\n")), newline + 1 < text.endIndex {
      text = text[(newline + 1)...]
    }
    return String(decoding: text, as: UTF8.self).trimmingTrailingWhitespace
  }
}
