#if canImport(Glibc)
import Glibc
#endif

/// Rotation of a daemon's log as libxl rotates device-model logs (`libxl_create_logfile`):
/// `log.<keep-1>` → `log.<keep>` … `log.1` → `log.2`, `log` → `log.1`; what was `log.<keep>`
/// is overwritten, so at most `keep` old logs remain beside the current one.
public enum LogRotation {
  /// A rename that failed (other than for a missing file, which is simply skipped).
  public struct Failure: Error, Sendable, Equatable {
    public var from: String
    public var to: String
    public var errno: Int32
  }

  /// Rotates `path` (which need not exist). Nothing is opened: the caller creates the new log.
  public static func rotate(_ path: String, keep: Int = 10) throws(Failure) {
    guard keep > 0, access(path, F_OK) == 0 else { return }
    for i in stride(from: keep - 1, through: 1, by: -1) {
      try rename("\(path).\(i)", "\(path).\(i + 1)")
    }
    try rename(path, "\(path).1")
  }

  private static func rename(_ from: String, _ to: String) throws(Failure) {
    if Glibc.rename(from, to) != 0 && errno != ENOENT {
      throw Failure(from: from, to: to, errno: errno)
    }
  }
}
