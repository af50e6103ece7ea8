#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// Whether `fd` is readable right now (`poll` with no timeout: never blocks).
func isReadableNow(_ fd: Int32) -> Bool {
  var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
  return poll(&entry, 1, 0) == 1 && entry.revents & Int16(POLLIN) != 0
}

extension EventLoop {
  /// Whether `fd` becomes readable within `nanoseconds`. Not cancellable: for waits that
  /// must finish (a stop in progress). `fd` must not be registered with this loop by anyone else.
  func readable(_ fd: Int32, within nanoseconds: UInt64) async -> Bool {
    await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
      execute { [self] in
        let once = LoopOnce()
        register(fd, for: .readable) { [self] _ in
          guard once.claim() else { return }
          deregister(fd)
          if let timer = once.timer { cancel(timer) }
          continuation.resume(returning: true)
        }
        guard !once.done else { return }
        once.timer = schedule(afterNanoseconds: nanoseconds) { [self] in
          guard once.claim() else { return }
          deregister(fd)
          continuation.resume(returning: false)
        }
      }
    }
  }

  /// Sleeps `nanoseconds` on this loop's timers, then throws if the task was cancelled.
  func sleep(nanoseconds: UInt64) async throws {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      execute { [self] in schedule(afterNanoseconds: nanoseconds) { continuation.resume() } }
    }
    try Task.checkCancellation()
  }
}

/// A flag for "first of these loop events wins". Confined to one loop.
private final class LoopOnce: @unchecked Sendable {
  private(set) var done = false
  var timer: EventLoop.TimerID?
  func claim() -> Bool {
    if done { return false }
    done = true
    return true
  }
}

/// Whether `pid` is in the kernel's exit path (PF_EXITING, 0x4, in `/proc/<pid>/stat`'s
/// flags, field 9): set before its descriptors are closed, so a readiness channel's EOF
/// from a daemon that is exiting is seen as such, however loaded the machine.
func isExiting(_ pid: Int32) -> Bool {
  let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
  guard fd >= 0 else { return false }
  defer { close(fd) }
  var buffer = [UInt8](repeating: 0, count: 1024)
  let n = read(fd, &buffer, buffer.count)
  guard n > 0, let paren = buffer[0..<n].lastIndex(of: UInt8(ascii: ")")) else { return false }
  // After "(comm) ": state, ppid, pgrp, session, tty_nr, tpgid, flags.
  let fields = buffer[(paren + 2)..<n].split(separator: UInt8(ascii: " "))
  guard fields.count > 6, let flags = UInt64(String(decoding: fields[6], as: UTF8.self)) else { return false }
  return flags & 0x4 != 0
}
