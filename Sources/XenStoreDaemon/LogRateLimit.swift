import Reactor

/// Bounds what one domain can make the daemon log: per domain, the first `burst` lines of an
/// interval are written and the rest only counted; the count is reported with the next line
/// that gets through (as the kernel's `printk_ratelimit`). Confined to the server's loop.
struct LogRateLimit {
  var burst = 5
  var intervalNanoseconds: UInt64 = 60_000_000_000

  private struct Window {
    var start: UInt64
    var lines = 0
    var suppressed = 0
  }
  private var windows: [UInt32: Window] = [:]

  /// Whether a line about `domid` may be logged now, and how many were suppressed before it.
  mutating func admit(_ domid: UInt32, now: UInt64 = EventLoop.now()) -> (allowed: Bool, suppressed: Int) {
    var window = windows[domid] ?? Window(start: now)
    if now &- window.start >= intervalNanoseconds {
      window = Window(start: now, suppressed: window.suppressed)
    }
    guard window.lines < burst else {
      window.suppressed += 1
      windows[domid] = window
      return (false, 0)
    }
    window.lines += 1
    let suppressed = window.suppressed
    window.suppressed = 0
    windows[domid] = window
    return (true, suppressed)
  }
}
