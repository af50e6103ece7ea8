#if canImport(Glibc)
import Glibc
#endif
import XenStore

/// The log being appended to. Written on the server's loop (`write` into the page cache is
/// quick); made durable by `fdatasync`, on the journal's sync thread or inline.
final class LogFile: @unchecked Sendable {
  let fd: Int32
  let generation: UInt64
  let path: String
  /// Bytes in the file.
  private(set) var size: Int

  private init(fd: Int32, generation: UInt64, path: String, size: Int) {
    self.fd = fd
    self.generation = generation
    self.path = path
    self.size = size
  }

  /// Creates `log-<generation>` (which must not exist) with its header, durably: the file's
  /// contents and its name are on disk when this returns.
  static func create(in directory: StateDirectory, generation: UInt64, bootID: String) throws(XenStoreError) -> LogFile {
    let path = directory.file(StateDirectory.logName(generation))
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw .stateIO("cannot create", path) }
    let log = LogFile(fd: fd, generation: generation, path: path, size: 0)
    do throws(XenStoreError) {
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

  func append(_ bytes: [UInt8]) throws(XenStoreError) {
    try StateDirectory.writeAll(fd, bytes, path: path)
    size += bytes.count
  }

  /// `fdatasync`: every byte appended so far is on disk when this returns.
  func sync() throws(XenStoreError) {
    guard fdatasync(fd) == 0 else { throw .stateIO("cannot fdatasync", path) }
  }

  func close() { _ = Glibc.close(fd) }
}
