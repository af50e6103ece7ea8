#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Synchronization

/// Output to the user: results on stdout, messages and progress on stderr (fd 2).
///
/// On a terminal, a status line shows what `xl` waits for and for how long, redrawn in place
/// and erased before anything else is written.
final class Terminal: Sendable {
  let quiet: Bool
  let verbose: Bool
  let isTTY: Bool
  private let began = EventLoop.now()
  private let statusShown = Atomic<Bool>(false)

  init(quiet: Bool, verbose: Bool) {
    self.quiet = quiet
    self.verbose = verbose
    self.isTTY = isatty(2) == 1
  }

  /// Writes `text` to stdout.
  static func output(_ text: String) { write(1, text) }

  /// Writes a line to stderr.
  static func error(_ line: String) { write(2, line + "\n") }

  /// A message on stderr, unless quiet.
  func note(_ line: String) {
    guard !quiet else { return }
    clearStatus()
    Terminal.error(line)
  }

  /// With -v: a timeline entry, "[   12.3 ms] what".
  func timeline(_ what: String) {
    guard verbose && !quiet else { return }
    clearStatus()
    Terminal.error("xl: [\(Terminal.milliseconds(EventLoop.now() - began))] \(what)")
  }

  /// On a terminal: replaces the status line (cut to the terminal's width, so that it never
  /// wraps and can be redrawn in place).
  func status(_ line: String) {
    guard isTTY && !quiet else { return }
    statusShown.store(true, ordering: .relaxed)
    var size = winsize()
    let width = ioctl(2, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 1 ? Int(size.ws_col) - 1 : 79
    let shown = line.count > width ? String(line.prefix(width - 1)) + "…" : line
    Terminal.write(2, "\r\u{1B}[K" + shown)
  }

  func clearStatus() {
    if statusShown.exchange(false, ordering: .relaxed) { Terminal.write(2, "\r\u{1B}[K") }
  }

  /// "   12.3 ms", right-aligned to 10 characters.
  static func milliseconds(_ nanoseconds: UInt64) -> String {
    let tenths = (nanoseconds + 50_000) / 100_000
    let text = "\(tenths / 10).\(tenths % 10) ms"
    return String(repeating: " ", count: max(0, 10 - text.count)) + text
  }

  private static func write(_ fd: Int32, _ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
      let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      if n > 0 { bytes = bytes.dropFirst(n) } else if errno != EINTR { return }
    }
  }
}
