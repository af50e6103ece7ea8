#if canImport(Glibc)
import Glibc
#endif
import XenStore

/// The log being appended to. Written on the server's loop (`pwrite` into the page cache is
/// quick); made durable by `fdatasync`, on the journal's sync thread or inline.
///
/// The file is preallocated (`posix_fallocate`) a few MiB ahead of its records: `fdatasync` of
/// writes within the file's size need not commit a size change to the filesystem journal,
/// which on ext4 makes it several times quicker. Recovery reads the zeros after the last
/// record as unused space; a clean close cuts them off.
final class LogFile: @unchecked Sendable {
  let fd: Int32
  let generation: UInt64
  let path: String
  /// Bytes of records, the header included.
  private(set) var size = 0
  /// The file's size: records, then preallocated zeros.
  private var allocated = 0
  static let preallocation = 4 << 20

  private init(fd: Int32, generation: UInt64, path: String) {
    self.fd = fd
    self.generation = generation
    self.path = path
  }

  /// Creates `log-<generation>` (which must not exist) with its header, durably: the file's
  /// contents and its name are on disk when this returns.
  static func create(in directory: StateDirectory, generation: UInt64, bootID: String) throws(XenstoredError) -> LogFile {
    let path = directory.file(StateDirectory.logName(generation))
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw .stateIO("cannot create", path) }
    let log = LogFile(fd: fd, generation: generation, path: path)
    do throws(XenstoredError) {
      var header: [UInt8] = []
      Frame.append(FileHeader(kind: .log, generation: generation, bootID: bootID).encoded(), to: &header)
      try log.append(header)
      try log.sync()
      try directory.sync()
    } catch {
      log.close()
      unlink(path)
      throw error
    }
    return log
  }

  func append(_ bytes: [UInt8]) throws(XenstoredError) {
    if size + bytes.count > allocated { reserve(max(Self.preallocation, size + bytes.count - allocated)) }
    var done = 0
    while done < bytes.count {
      let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(size + done)) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { throw .stateIO("cannot write", path) }
      done += n
    }
    size += bytes.count
  }

  /// Extends the file by `bytes` of zeros (`posix_fallocate`); if that fails, the writes
  /// extend it instead.
  private func reserve(_ bytes: Int) {
    guard allocated != .max else { return }
    allocated = posix_fallocate(fd, off_t(allocated), off_t(bytes)) == 0 ? allocated + bytes : .max
  }

  /// Cuts the preallocated zeros off, durably (a clean close).
  func trim() throws(XenstoredError) {
    guard ftruncate(fd, off_t(size)) == 0 else { throw .stateIO("cannot truncate", path) }
    allocated = size
    try sync()
  }

  /// `fdatasync`: every byte appended so far is on disk when this returns.
  func sync() throws(XenstoredError) {
    guard fdatasync(fd) == 0 else { throw .stateIO("cannot fdatasync", path) }
  }

  func close() { _ = Glibc.close(fd) }
}
