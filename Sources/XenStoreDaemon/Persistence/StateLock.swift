#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import XenStore

/// One daemon per state directory: a POSIX write lock (`fcntl(F_SETLK)`) on `DIR/lock`.
///
/// Not `flock`: a child forked by this process (a helper being spawned, between its fork and
/// its exec) shares an `flock` and keeps it after the daemon let go, but does not inherit a
/// POSIX lock. Both go with the process, so a killed daemon never leaves one behind. POSIX
/// locks belong to the process, not the file descriptor, so holders within this process are
/// told apart by a registry.
final class StateLock: @unchecked Sendable {
  private static let heldHere = Mutex<Set<String>>([])
  private let fd: Int32
  private let key: String
  private let released = Atomic(false)

  init(_ directory: StateDirectory) throws(XenstoredError) {
    let path = directory.file("lock")
    let inUse = XenstoredError(.stateLocked, "state directory \(directory.path) is in use by another xenstored")
    var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let key = realpath(directory.path, &resolved) != nil ? String(cString: resolved) : directory.path
    guard Self.heldHere.withLock({ $0.insert(key).inserted }) else { throw inUse }
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      let error = XenstoredError.stateIO("cannot open", path)
      Self.heldHere.withLock { _ = $0.remove(key) }
      throw error
    }
    var lock = flock(l_type: Int16(F_WRLCK), l_whence: Int16(SEEK_SET), l_start: 0, l_len: 0, l_pid: 0)
    guard fcntl(fd, F_SETLK, &lock) == 0 else {
      let code = errno
      var holder = flock(l_type: Int16(F_WRLCK), l_whence: Int16(SEEK_SET), l_start: 0, l_len: 0, l_pid: 0)
      let pid = fcntl(fd, F_GETLK, &holder) == 0 && holder.l_type != Int16(F_UNLCK) ? holder.l_pid : 0
      close(fd)
      Self.heldHere.withLock { _ = $0.remove(key) }
      if code == EACCES || code == EAGAIN {
        throw XenstoredError(.stateLocked, inUse.message + (pid > 0 ? " (pid \(pid))" : ""), errno: code)
      }
      throw .stateIO("cannot lock", path, errno: code)
    }
    self.fd = fd
    self.key = key
  }

  /// Lets the directory go. Idempotent.
  func release() {
    guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
    close(fd)
    Self.heldHere.withLock { _ = $0.remove(key) }
  }

  deinit { release() }
}
