#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Reactor
import XenLight

/// `xl console [-t serial|pv] [-n N] DOMAIN`: the terminal on the guest's serial console.
struct Console: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Attach to a domain's console; Ctrl-] leaves.",
    discussion: """
      The console is the pseudo-terminal QEMU opened for the guest's serial port N \
      (serial = "pty"), recorded at /local/domain/<domid>/serial/<N>/tty. Everything the \
      guest writes there is also kept in $XEN_LOG_DIR/console/guest-<name>.log.
      """)

  @Option(name: .customShort("t"), help: "Console type: serial (pv consoles need xenconsoled, which is not here).")
  var type: String?

  @Option(name: .customShort("n"), help: "The console number.")
  var number: Int = 0

  @Option(name: .customShort("e"), help: "The escape character that leaves: ^X (Ctrl-X) or one character (default ^]).")
  var escape: String?

  @Argument(help: "The domain's name or id.") var domain: String

  /// `-e`'s byte: "^]" is 0x1d, "^a" 0x01, "x" itself.
  static func escapeByte(_ text: String) -> UInt8? {
    let bytes = Array(text.utf8)
    switch bytes.count {
    case 1: return bytes[0]
    case 2 where bytes[0] == UInt8(ascii: "^") && (0x40...0x7e).contains(bytes[1]): return bytes[1] & 0x1f
    default: return nil
    }
  }

  func validate() throws {
    if let type, type != "serial", type != "pv" { throw ValidationError("console type must be \"serial\" or \"pv\"") }
    if number < 0 { throw ValidationError("-n must be 0 or more") }
    if let escape, Self.escapeByte(escape) == nil { throw ValidationError("-e takes ^X (Ctrl-X) or one character, not \"\(escape)\"") }
  }

  func execute() async throws {
    do {
      let (type, number) = (self.type, self.number)
      let tty = try await Toolstack.forXL().control(domain) { control, target throws(XenLightError) in
        try await Self.tty(of: target, type: type, number: number, store: control.store)
      }
      try await Self.attach(tty, escape: escape.flatMap(Self.escapeByte) ?? 0x1d)
    } catch {
      throw ExitStatus.fail(error)
    }
  }

  static func tty(of target: DomainControl.Target, type: String?, number: Int, store: DomainStore) async throws(XenLightError) -> String {
    if type == "pv" {
      throw XenLightError(.invalidState, "domain \(target.domid) (\(target.name)) has no PV console (there is no xenconsoled here); use -t serial")
    }
    let path = target.layout.serialTTYPath(number)
    let value = try? await DomainStore.readOptional(store.xenstore, path)
    guard let value, value.hasPrefix("/") else {
      throw XenLightError(
        .invalidState, "domain \(target.domid) (\(target.name)) has no serial console \(number) (\(path) is not set; the config needs serial = \"pty\")")
    }
    return value
  }

  /// Relays the terminal and the pty until `escape` (xl's Ctrl-] unless `-e`) or the console closes.
  static func attach(_ tty: String, escape: UInt8 = 0x1d) async throws(XenLightError) {
    let pty = open(tty, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
    guard pty >= 0 else {
      let e = errno
      throw XenLightError(.io, "cannot open the console \(tty): \(String(cString: strerror(e)))", errno: e)
    }
    defer { close(pty) }
    var raw = termios()
    if tcgetattr(pty, &raw) == 0 {
      cfmakeraw(&raw)
      tcsetattr(pty, TCSANOW, &raw)
    }
    var saved = termios()
    let interactive = isatty(0) == 1 && tcgetattr(0, &saved) == 0
    if interactive {
      var mine = saved
      cfmakeraw(&mine)
      tcsetattr(0, TCSANOW, &mine)
    }
    defer { if interactive { tcsetattr(0, TCSANOW, &saved) } }
    let stdinFlags = fcntl(0, F_GETFL)
    _ = fcntl(0, F_SETFL, stdinFlags | O_NONBLOCK)
    defer { _ = fcntl(0, F_SETFL, stdinFlags) }

    let loop = EventLoop.shared
    await withTaskGroup(of: Void.self) { group in
      group.addTask { await relay(from: pty, to: 1, loop: loop, escape: nil) }
      group.addTask { await relay(from: 0, to: pty, loop: loop, escape: escape) }
      _ = await group.next()
      group.cancelAll()
    }
  }

  /// Copies `from` to `to` until EOF, an error, cancellation, or the `escape` byte.
  static func relay(from source: Int32, to sink: Int32, loop: EventLoop, escape: UInt8?) async {
    var buffer = [UInt8](repeating: 0, count: 4096)
    while !Task.isCancelled {
      guard (try? await loop.wait(for: [.readable, .hangup], on: source)) != nil else { return }
      let n = read(source, &buffer, buffer.count)
      if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
      guard n > 0 else { return }
      var count = n
      if let escape, let at = buffer[0..<n].firstIndex(of: escape) { count = at }
      var offset = 0
      while offset < count {
        let w = buffer[offset..<count].withUnsafeBytes { write(sink, $0.baseAddress, $0.count) }
        if w < 0 && (errno == EAGAIN || errno == EINTR) {
          _ = try? await loop.wait(for: .writable, on: sink)
          continue
        }
        guard w > 0 else { return }
        offset += w
      }
      if count < n { return }
    }
  }
}
