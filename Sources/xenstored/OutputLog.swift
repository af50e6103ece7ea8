#if canImport(Glibc)
import Glibc
#endif
import Logging
import RotatingLogs
import Synchronization

/// `--log-file`: the daemon's stdout and stderr (its log) go to a file it keeps bounded.
/// Once the file outgrows the limit it is rotated as libxl rotates device-model logs
/// (`PATH` → `PATH.1` … `PATH.10`) and a new one takes its place; SIGHUP reopens it, for an
/// outside logrotate. A long-lived daemon started by `xl` must not fill the disk.
struct OutputLog {
  let path: String
  /// Bytes after which the file is rotated.
  let limit: Int

  /// Opens `path` (appending, created if missing) as stdout and stderr.
  init(path: String, limit: Int) throws(OutputLogError) {
    self.path = path
    self.limit = limit
    try reopen()
  }

  /// Opens `path` again as stdout and stderr (the old file may have been moved away).
  func reopen() throws(OutputLogError) {
    let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw OutputLogError("cannot open log file \(path): \(String(cString: strerror(errno)))") }
    // dup2 clears O_CLOEXEC on 1 and 2: they stay this process's stdout and stderr only.
    dup2(fd, STDOUT_FILENO)
    dup2(fd, STDERR_FILENO)
    close(fd)
  }

  /// Rotates the log if it has grown past the limit. A failure is reported in the log and
  /// writing goes on in the same file (nothing is lost; the next check tries again).
  func rotateIfLarge() {
    var info = stat()
    guard fstat(STDERR_FILENO, &info) == 0, Int(info.st_size) > limit else { return }
    do {
      try LogRotation.rotate(path)
      try reopen()
    } catch let error as LogRotation.Failure {
      printError("xenstored: cannot rotate \(error.from) to \(error.to): \(String(cString: strerror(error.errno)))")
    } catch {
      printError("xenstored: \(error)")
    }
  }
}

struct OutputLogError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// The daemon's log handler with `--log-file`: each line written, then the file's size
/// checked (`OutputLog.rotateIfLarge`), so the log is rotated when it grows — no timer.
struct RotatingLogHandler: LogHandler {
  var inner: StreamLogHandler
  let rotation: OutputLogRotation

  var metadata: Logger.Metadata {
    get { inner.metadata }
    set { inner.metadata = newValue }
  }
  var logLevel: Logger.Level {
    get { inner.logLevel }
    set { inner.logLevel = newValue }
  }
  var metadataProvider: Logger.MetadataProvider? {
    get { inner.metadataProvider }
    set { inner.metadataProvider = newValue }
  }
  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { inner[metadataKey: key] }
    set { inner[metadataKey: key] = newValue }
  }

  func log(event: LogEvent) {
    inner.log(event: event)
    rotation.check()
  }
}

/// One size check and rotation at a time, whichever thread logged.
final class OutputLogRotation: Sendable {
  private let log: Mutex<OutputLog>

  init(_ log: OutputLog) { self.log = Mutex(log) }

  func check() { log.withLock { $0.rotateIfLarge() } }

  func reopen() throws(OutputLogError) {
    try log.withLock { (log: inout OutputLog) throws(OutputLogError) in try log.reopen() }
  }
}
