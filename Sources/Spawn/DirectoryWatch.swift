#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// An inotify watch on a directory for names that appear in it (created, moved in, or their
/// attributes changed), waited for on an event loop: for a socket that does not exist yet.
package struct DirectoryWatch: ~Copyable {
  private let fd: Int32

  /// Watches `directory`. Throws the errno of `inotify_init1` or `inotify_add_watch`.
  package init(_ directory: String) throws(SystemErrno) {
    let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
    guard fd >= 0 else { throw .current }
    guard inotify_add_watch(fd, directory, UInt32(IN_CREATE | IN_MOVED_TO | IN_ATTRIB)) >= 0 else {
      let error = SystemErrno.current
      Glibc.close(fd)
      throw error
    }
    self.fd = fd
  }

  deinit { Glibc.close(fd) }

  /// Suspends until something appeared in the directory since the last call (or the watch
  /// began). Throws `CancellationError` if the task is cancelled.
  package func next(on loop: EventLoop) async throws {
    _ = try await loop.wait(for: .readable, on: fd)
    var buffer = [UInt8](repeating: 0, count: 4096)
    while read(fd, &buffer, buffer.count) > 0 {}
  }

  /// The directory part of `path` ("." if it has none).
  package static func directory(of path: String) -> String {
    path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
  }
}
