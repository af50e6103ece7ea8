#if canImport(Glibc)
import Glibc
#endif
import XenStore

/// The files of a state directory and the system calls on them (each retried on EINTR):
///
///     lock                  locked by the daemon using the directory (StateLock)
///     snapshot-<gen>        the whole state when log-<gen> began (none for generation 1)
///     log-<gen>             the changes since, one checksummed record per request
///     *.tmp                 a snapshot being written; left over only by a crash
///
/// Generations count up; recovery loads the newest snapshot and replays every log from its
/// generation on. Older files are deleted once a newer snapshot is durable.
struct StateDirectory: Sendable {
  let path: String

  init(_ path: String) { self.path = path }

  static func snapshotName(_ generation: UInt64) -> String { "snapshot-" + padded(generation) }
  static func logName(_ generation: UInt64) -> String { "log-" + padded(generation) }

  private static func padded(_ n: UInt64) -> String {
    let digits = String(n)
    return String(repeating: "0", count: max(0, 10 - digits.count)) + digits
  }

  func file(_ name: String) -> String { path + "/" + name }

  /// What the directory holds.
  struct Listing {
    var snapshots: [UInt64] = []
    var logs: [UInt64] = []
    var temporaries: [String] = []
  }

  /// Creates the directory (mode 0700) if needed.
  func create() throws(XenstoredError) {
    if mkdir(path, 0o700) != 0 && errno != EEXIST { throw .stateIO("cannot create", path) }
  }

  func listing() throws(XenstoredError) -> Listing {
    guard let dir = opendir(path) else { throw .stateIO("cannot list", path) }
    defer { closedir(dir) }
    var listing = Listing()
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
      }
      if name.hasSuffix(".tmp") {
        listing.temporaries.append(name)
      } else if name.hasPrefix("snapshot-"), let g = UInt64(name.dropFirst(9)) {
        listing.snapshots.append(g)
      } else if name.hasPrefix("log-"), let g = UInt64(name.dropFirst(4)) {
        listing.logs.append(g)
      }
    }
    listing.snapshots.sort()
    listing.logs.sort()
    return listing
  }

  /// Makes created, renamed and removed names durable (`fsync` on the directory).
  func sync() throws(XenstoredError) {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw .stateIO("cannot open", path) }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw .stateIO("cannot fsync", path) }
  }

  func read(_ name: String) throws(XenstoredError) -> [UInt8] {
    let fd = open(file(name), O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .stateIO("cannot open", file(name)) }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let n = Glibc.read(fd, &chunk, chunk.count)
      if n < 0 && errno == EINTR { continue }
      guard n >= 0 else { throw .stateIO("cannot read", file(name)) }
      if n == 0 { return out }
      out.append(contentsOf: chunk[0..<n])
    }
  }

  /// Writes `bytes` as `name` all or nothing: a temporary file, `fsync`, `rename`, `fsync`
  /// of the directory.
  func writeAtomically(_ name: String, _ bytes: [UInt8]) throws(XenstoredError) {
    let temporary = file(name + ".tmp")
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw .stateIO("cannot create", temporary) }
    do throws(XenstoredError) {
      try Self.writeAll(fd, bytes, path: temporary)
      guard fsync(fd) == 0 else { throw XenstoredError.stateIO("cannot fsync", temporary) }
    } catch {
      close(fd)
      unlink(temporary)
      throw error
    }
    close(fd)
    guard rename(temporary, file(name)) == 0 else { throw .stateIO("cannot rename", temporary) }
    try sync()
  }

  func remove(_ name: String) throws(XenstoredError) {
    guard unlink(file(name)) == 0 || errno == ENOENT else { throw .stateIO("cannot remove", file(name)) }
  }

  /// Cuts `name` to `length` bytes, durably.
  func truncate(_ name: String, to length: Int) throws(XenstoredError) {
    let fd = open(file(name), O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .stateIO("cannot open", file(name)) }
    defer { close(fd) }
    guard ftruncate(fd, off_t(length)) == 0, fdatasync(fd) == 0 else { throw .stateIO("cannot truncate", file(name)) }
  }

  /// `write` until every byte is written.
  static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(XenstoredError) {
    var done = 0
    while done < bytes.count {
      let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { throw .stateIO("cannot write", path) }
      done += n
    }
  }

  /// This boot's id (`/proc/sys/kernel/random/boot_id`); empty if the kernel has none.
  static let currentBootID: String = {
    let fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 64)
    let n = Glibc.read(fd, &buffer, buffer.count)
    guard n > 0 else { return "" }
    return String(decoding: buffer[0..<n].filter { $0 != 10 }, as: UTF8.self)
  }()
}
