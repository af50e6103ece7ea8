#if canImport(Glibc)
import Glibc
#endif

/// A device model to run: the binary, its arguments, and where its QMP monitor listens.
public struct DeviceModelCommand: Hashable, Sendable {
  public var target: DeviceModelTarget
  /// The binary; absolute, or a name looked up on `PATH` when run.
  public var executable: String
  /// `argv[1...]`.
  public var arguments: [String]
  /// The QMP socket for commands: create's confirmation, then `xl pause`, `shutdown`… one at a time.
  public var qmpSocketPath: String
  /// The QMP socket the domain monitor holds for QEMU's events.
  public var eventSocketPath: String
  /// The local target's accelerator (nil for the xen target), and why it was chosen.
  public var accelerator: Accelerator?
  public var acceleratorReason: String?

  public init(target: DeviceModelTarget, executable: String, arguments: [String], qmpSocketPath: String, eventSocketPath: String) {
    self.target = target
    self.executable = executable
    self.arguments = arguments
    self.qmpSocketPath = qmpSocketPath
    self.eventSocketPath = eventSocketPath
  }

  /// The descriptors QEMU finds its two QMP sockets on, listening before it runs.
  public static let commandSocketDescriptor: Int32 = 3
  public static let eventSocketDescriptor: Int32 = 4

  /// Both QMP monitors, on sockets xl opened and passed (`fd=`): they exist before exec, so
  /// nobody races QEMU to connect, and a QEMU that dies takes them with it.
  static let monitorArguments = [
    "-chardev", "socket,id=libxl-cmd,fd=\(commandSocketDescriptor),server=on,wait=off",
    "-mon", "chardev=libxl-cmd,mode=control",
    "-chardev", "socket,id=xl-events,fd=\(eventSocketDescriptor),server=on,wait=off",
    "-mon", "chardev=xl-events,mode=control",
  ]

  /// `[executable] + arguments`.
  public var argv: [String] { [executable] + arguments }

  /// The command as a POSIX shell would take it, each word quoted only when it needs to be.
  public var shellCommand: String { argv.map(Self.shellQuoted).joined(separator: " ") }

  static func shellQuoted(_ word: String) -> String {
    let safe = word.utf8.allSatisfy { b in
      (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
        || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || "-_./=:,+@%".utf8.contains(b)
    }
    if safe && !word.isEmpty { return word }
    return "'" + word.replacingAll("'", with: "'\\''") + "'"
  }

  /// Builds the command for `domain` as domain `domid`, with sockets under `runDirectory`.
  ///
  /// The target comes from `device_model_target` resolved against `host`; the binary is
  /// `device_model_override` when set, else the target's default.
  /// Domain `domid`'s QMP sockets under `runDirectory`: for commands, and for the monitor's events.
  public static func socketPaths(runDirectory: String, domid: UInt32) -> (commands: String, events: String) {
    (runDirectory + "/qmp-libxl-\(domid)", runDirectory + "/qmp-events-\(domid)")
  }

  /// `consoleLog` is where the first serial port's output is kept (local target, `serial = "pty"`).
  public static func build(
    for domain: DomainConfiguration, domid: UInt32, runDirectory: String, host: HostCapabilities = .current,
    consoleLog: String? = nil
  ) -> DeviceModelCommand {
    let (qmp, events) = socketPaths(runDirectory: runDirectory, domid: domid)
    switch DeviceModelTarget.resolve(domain.deviceModel.target, host: host) {
    case .xen:
      return DeviceModelCommand(
        target: .xen, executable: domain.deviceModel.override ?? XenCommandLine.defaultExecutable,
        arguments: XenCommandLine.arguments(for: domain, domid: domid), qmpSocketPath: qmp, eventSocketPath: events)
    case .local:
      let accelerator = Accelerator.resolve(domain.deviceModel.accelerator, host: host)
      var command = DeviceModelCommand(
        target: .local, executable: domain.deviceModel.override ?? LocalCommandLine.defaultExecutable,
        arguments: LocalCommandLine.arguments(for: domain, accelerator: accelerator.0, consoleLog: consoleLog),
        qmpSocketPath: qmp, eventSocketPath: events)
      (command.accelerator, command.acceleratorReason) = accelerator
      return command
    }
  }
}

extension String {
  func replacingAll(_ target: Character, with replacement: String) -> String {
    var out = ""
    for c in self { if c == target { out += replacement } else { out.append(c) } }
    return out
  }
}

/// Where a disk sits on QEMU's buses, from its vdev name as libxl reads it
/// (`libxl__device_disk_dev_number`): hd[a-…], sd[a-…] and xvd[a-…] count from 0.
enum DiskIndex {
  static func of(_ vdev: String) -> Int? {
    for prefix in ["xvd", "hd", "sd"] where vdev.hasPrefix(prefix) {
      let letters = vdev.dropFirst(prefix.count).prefix { $0.isLetter && $0.isLowercase }
      guard !letters.isEmpty else { return nil }
      var index = 0
      for letter in letters { index = index * 26 + Int(letter.asciiValue! - UInt8(ascii: "a")) + 1 }
      return index - 1
    }
    return nil
  }
}
