#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Spawn
import Synchronization

/// `guest_ready_console` / `guest_ready_timeout`: what makes `xl create` call a guest
/// started — a console line matching a regular expression — and how long it may take.
public struct GuestReadyCheck: Hashable, Sendable {
  /// The regular expression (Swift `Regex` syntax, which is Perl's for the usual cases) a
  /// console line must match.
  public var consolePattern: String
  /// `guest_ready_timeout`, seconds from the device model's confirmation (default 60).
  public var timeoutSeconds: Double = 60

  public init(consolePattern: String, timeoutSeconds: Double = 60) {
    self.consolePattern = consolePattern
    self.timeoutSeconds = timeoutSeconds
  }

  /// Why `pattern` is not a usable expression, or nil.
  static func problem(withPattern pattern: String) -> String? {
    do { _ = try Regex(pattern) } catch { return "\(ConfigValue.quoted(pattern)) is not a regular expression: \(error)" }
    return nil
  }
}

/// The guest confirmed: the line that did it and when, counted from the device model's
/// confirmation.
public struct GuestConfirmation: Sendable, Hashable {
  public var line: String
  /// The line's number in this boot's console output (1 is the first).
  public var lineNumber: Int
  public var elapsed: Duration
}

/// Waits for the first of: a console line matching the check (the guest is up), the guest
/// dying (a kernel panic on the console, pvpanic's `GUEST_PANICKED`, a poweroff or reset
/// seen as QMP `SHUTDOWN`, or `query-status` saying one of these already happened), its
/// device model exiting, or the timeout. Every source is an event: the console log is read
/// when inotify says it grew, QMP events arrive on the command socket, the timeout is a timer.
///
/// No agent is asked: libvirt confirms a guest by its QEMU guest agent only; a
/// `guest-sync` over virtio-serial would be one more source racing in the same group.
struct GuestReadiness: Sendable {
  let check: GuestReadyCheck
  let domain: String
  /// The console log QEMU appends to, and where this boot's output starts in it.
  let consoleLog: String
  let startOffset: Int64
  let qmpSocket: String
  let loop: EventLoop

  /// How the wait ended (other than confirmed).
  private enum Outcome: Sendable {
    case ready(GuestConfirmation)
    case died(String)
    case deviceModelGone(String)
    case timedOut
  }

  /// The console's last lines, for the message when the guest does not come up.
  private final class Tail: Sendable {
    static let kept = 12
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line); if $0.count > Self.kept { $0.removeFirst() } } }
    var all: [String] { lines.withLock { $0 } }
  }

  func wait() async throws(XenLightError) -> GuestConfirmation {
    let tail = Tail()
    let began = ContinuousClock.now
    let outcome: Outcome
    do {
      outcome = try await withThrowingTaskGroup(of: Outcome.self) { group in
        group.addTask { try await followConsole(tail, began: began) }
        group.addTask { await watchDeviceModel() }
        group.addTask {
          try await Task.sleep(for: .milliseconds(Int64(check.timeoutSeconds * 1000)))
          return .timedOut
        }
        defer { group.cancelAll() }
        return try await group.next()!
      }
    } catch let error as XenLightError {
      throw error
    } catch where Task.isCancelled {
      throw XenLightError(.interrupted, "domain \"\(domain)\" not created: interrupted while waiting for its guest; its device model was stopped and its records removed")
    } catch {
      throw XenLightError(.io, "domain \"\(domain)\": cannot read its console log \(consoleLog): \(error)")
    }
    let line = "console line matching \(ConfigValue.quoted(check.consolePattern))"
    switch outcome {
    case .ready(let confirmation):
      return confirmation
    case .died(let how):
      throw failure(.guestFailed, "the guest \(how) before printing a \(line)", tail)
    case .deviceModelGone(let how):
      throw failure(.deviceModelFailed, "its device model \(how) before the guest printed a \(line)", tail)
    case .timedOut:
      let seconds = check.timeoutSeconds == check.timeoutSeconds.rounded() ? "\(Int(check.timeoutSeconds)) s" : "\(check.timeoutSeconds) s"
      throw failure(.timedOut, "the guest printed no \(line) within \(seconds) (guest_ready_timeout)", tail)
    }
  }

  private func failure(_ code: XenLightError.Code, _ what: String, _ tail: Tail) -> XenLightError {
    var message = "domain \"\(domain)\" not created: \(what); its device model was stopped and its records removed"
    let lines = tail.all.filter { !$0.allSatisfy(\.isWhitespace) }
    message += lines.isEmpty
      ? " (the console printed nothing; log: \(consoleLog))"
      : "; the console's last lines (\(consoleLog)):\n" + lines.map { "    " + $0 }.joined(separator: "\n")
    return XenLightError(code, message)
  }

  /// Reads the console log as it grows (inotify), line by line, until a line matches or says
  /// the kernel panicked.
  private func followConsole(_ tail: Tail, began: ContinuousClock.Instant) async throws -> Outcome {
    let pattern = try Regex(check.consolePattern)
    let fd = open(consoleLog, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw XenLightError(.io, "cannot open \(consoleLog): \(String(cString: strerror(errno)))", errno: errno) }
    defer { close(fd) }
    let notify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
    guard notify >= 0 else { throw XenLightError(.io, "inotify_init1: \(String(cString: strerror(errno)))", errno: errno) }
    defer { close(notify) }
    // Watched before the first read: a write between the two still wakes the wait.
    guard inotify_add_watch(notify, consoleLog, UInt32(IN_MODIFY)) >= 0 else {
      throw XenLightError(.io, "cannot watch \(consoleLog): \(String(cString: strerror(errno)))", errno: errno)
    }
    lseek(fd, off_t(startOffset), SEEK_SET)
    var partial: [UInt8] = []
    var number = 0
    var buffer = [UInt8](repeating: 0, count: 16384)
    var events = [UInt8](repeating: 0, count: 4096)
    while true {
      while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        partial += buffer[0..<n]
        while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
          var line = String(decoding: partial[..<newline], as: UTF8.self)
          partial.removeSubrange(...newline)
          while line.hasSuffix("\r") { line.removeLast() }
          number += 1
          tail.append(line)
          if line.contains(pattern) {
            return .ready(GuestConfirmation(line: line, lineNumber: number, elapsed: ContinuousClock.now - began))
          }
          if line.contains("Kernel panic - not syncing") { return .died("panicked (\(Self.trimmed(line)))") }
        }
      }
      _ = try await loop.wait(for: .readable, on: notify)
      while read(notify, &events, events.count) > 0 {}
    }
  }

  /// The kernel's line without its timestamp, "[    1.234567] ".
  private static func trimmed(_ line: String) -> String {
    guard line.hasPrefix("["), let close = line.firstIndex(of: "]") else { return line }
    return String(line[line.index(after: close)...].drop { $0 == " " })
  }

  /// The guest's fate from QMP, on the command socket (free once create's confirmation is
  /// done): what `query-status` says already happened, then the events as they come.
  private func watchDeviceModel() async -> Outcome {
    let qmp: QMPClient
    do { qmp = try await QMPClient.connect(path: qmpSocket, loop: loop, what: "domain \"\(domain)\" device model") } catch {
      return .deviceModelGone("stopped answering QMP (\(error.message))")
    }
    let outcome = await watch(qmp)
    await qmp.finish()
    return outcome
  }

  private func watch(_ qmp: QMPClient) async -> Outcome {
    let status: String?
    do { status = try await qmp.execute("query-status")["status"]?.stringValue } catch {
      return .deviceModelGone("stopped answering QMP (\(error.message))")
    }
    switch status {
    case "guest-panicked": return .died("panicked (pvpanic)")
    case "shutdown": return .died("shut down or reset")
    case "internal-error", "io-error": return .died("stopped on an \(status!)")
    default: break
    }
    for await event in qmp.events {
      switch event.name {
      case "GUEST_PANICKED": return .died("panicked (pvpanic: GUEST_PANICKED)")
      case "SHUTDOWN":
        switch event.data["reason"]?.stringValue ?? "" {
        case "guest-reset", "guest-reset-soft": return .died("reset itself")
        case "guest-panic": return .died("panicked (pvpanic)")
        default: return .died("powered off (\(event.data["reason"]?.stringValue ?? "SHUTDOWN"))")
        }
      default: continue
      }
    }
    if Task.isCancelled { return .timedOut }  // not read: the group has its result already
    return .deviceModelGone("exited")
  }
}

extension GuestReadyCheck {
  /// `guest_ready_console` and `guest_ready_timeout` from `file`; the console is read from
  /// its log, which the first serial port has only as `serial = "pty"`.
  static func read(_ r: inout SettingsReader, _ file: ConfigFile, serial: [String]) throws(XenLightError) -> GuestReadyCheck? {
    let pattern = try r.string("guest_ready_console")
    let timeout = try r.integer("guest_ready_timeout", in: 1...86400, unit: "s")
    guard let pattern else {
      if timeout != nil { throw r.error(file["guest_ready_timeout"]!, "needs guest_ready_console (the line that says the guest is up)") }
      return nil
    }
    let setting = file["guest_ready_console"]!
    if pattern.isEmpty { throw r.error(setting, "the expression must not be empty") }
    if let problem = problem(withPattern: pattern) { throw r.error(setting, problem) }
    guard serial.first == "pty" else {
      throw r.error(setting, "the console is read from its log, which needs serial = \"pty\"")
    }
    return GuestReadyCheck(consolePattern: pattern, timeoutSeconds: Double(timeout ?? 60))
  }
}

extension GuestReadiness {
  /// Where this boot's console output will start in `consoleLog` (QEMU appends to it), for a
  /// domain that asks to be confirmed by its console; 0 otherwise. Refuses the Xen target,
  /// whose console is not kept in a log here.
  static func startOffset(_ domain: DomainConfiguration, consoleLog: String?, target: DeviceModelTarget) throws(XenLightError) -> Int64 {
    guard domain.guestReady != nil else { return 0 }
    guard target == .local, let consoleLog else {
      throw XenLightError(.invalidConfig, "guest_ready_console: the guest's console is read on the local target only (device_model_target = \"local\")")
    }
    var info = stat()
    return stat(consoleLog, &info) == 0 ? Int64(info.st_size) : 0
  }
}
