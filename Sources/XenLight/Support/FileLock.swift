#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock(2)` on a file, held until `release()`.
///
/// The blocking `flock` runs on a thread of its own, never on Swift's cooperative pool.
struct FileLock: Sendable {
  private let fd: Int32

  /// Opens (creating) `path` and waits for the exclusive lock. Creates the directory.
  static func acquire(_ path: String) async throws(XenLightError) -> FileLock {
    if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
      try ToolstackPaths.makeDirectories(String(path[..<slash]))
    }
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      let e = errno
      throw XenLightError(.io, "cannot open lock file \(path): \(FileIO.describe(errno: e))", errno: e)
    }
    if flock(fd, LOCK_EX | LOCK_NB) == 0 { return FileLock(fd: fd) }
    let result = await BlockingCall.run { () -> Int32 in
      while flock(fd, LOCK_EX) != 0 {
        if errno != EINTR { return errno }
      }
      return 0
    }
    guard result == 0 else {
      close(fd)
      throw XenLightError(.io, "cannot lock \(path): \(FileIO.describe(errno: result))", errno: result)
    }
    return FileLock(fd: fd)
  }

  func release() {
    flock(fd, LOCK_UN)
    close(fd)
  }
}

/// Runs a blocking call on a new detached thread and resumes the caller with its result.
enum BlockingCall {
  static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
      let box = Unmanaged.passRetained(Job(body: { continuation.resume(returning: body()) }))
      var thread = pthread_t()
      let rc = pthread_create(&thread, nil, { raw in
        let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
        job.body()
        return nil
      }, box.toOpaque())
      if rc == 0 {
        pthread_detach(thread)
      } else {
        box.takeRetainedValue().body()
      }
    }
  }

  private final class Job: Sendable {
    let body: @Sendable () -> Void
    init(body: @escaping @Sendable () -> Void) { self.body = body }
  }
}

extension FileLock {
  /// The exclusive lock on `path` if nobody holds it now; nil if someone does. Creates the
  /// file and its directory.
  static func take(_ path: String) throws(XenLightError) -> FileLock? {
    if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
      try ToolstackPaths.makeDirectories(String(path[..<slash]))
    }
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      let e = errno
      throw XenLightError(.io, "cannot open lock file \(path): \(FileIO.describe(errno: e))", errno: e)
    }
    while flock(fd, LOCK_EX | LOCK_NB) != 0 {
      let e = errno
      if e == EINTR { continue }
      close(fd)
      if e == EWOULDBLOCK { return nil }
      throw XenLightError(.io, "cannot lock \(path): \(FileIO.describe(errno: e))", errno: e)
    }
    return FileLock(fd: fd)
  }
}
