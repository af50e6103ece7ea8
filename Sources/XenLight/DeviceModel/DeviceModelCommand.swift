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
  /// The user a restricted device model runs as (nil: root, unconfined).
  public var user: DeviceModelUser?
  /// Its empty root directory (`$XEN_RUN_DIR/qemu-root-<domid>`), when restricted.
  public var chrootPath: String?
  /// Files xl opens and passes, which the restricted device model could not open itself.
  public var passedFiles: [PassedFile] = []

  /// A file opened by xl before exec and passed as descriptor `descriptor` (QEMU: `-add-fd
  /// fd=N,set=N` and `/dev/fdset/N`).
  public struct PassedFile: Hashable, Sendable {
    public var descriptor: Int32
    public var path: String
    /// open(2) flags: O_RDONLY or O_RDWR, or O_WRONLY|O_APPEND|O_CREAT for a log.
    public var flags: Int32
    /// What it is, for messages: "disk xvda", "console log".
    public var what: String
  }

  /// Bridged NICs' tap devices, which xl opens, connects and passes (`-netdev tap,fd=N`).
  public var taps: [PassedTap] = []

  /// A bridged NIC's tap device, opened by xl before exec and passed as descriptor `descriptor`.
  public struct PassedTap: Hashable, Sendable {
    public var descriptor: Int32
    public var devid: Int
    public var nic: NicSpec
    /// The name xl creates it with: libxl's `vif<domid>.<devid>-emu` when a script connects
    /// it (Xen's scripts find the NIC's records by that name, and rename it to
    /// `<vifname>-emu`); else the name it keeps.
    public var name: String
  }

  /// The descriptor of the first passed file or tap; 3 and 4 are the QMP sockets.
  public static let firstPassedDescriptor: Int32 = 5

  /// QEMU's strictest seccomp filter that still lets `-runas` change the uid (libxl's).
  public static let sandboxArgument = "on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny"

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

  /// A device model that waits, stopped, for a migration stream (restore, migrate-receive):
  /// QMP `migrate-incoming` gives it the descriptor; `-S` keeps the guest stopped once loaded.
  public static let incomingArguments = ["-S", "-incoming", "defer"]

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
    consoleLog: String? = nil, user: DeviceModelUser? = nil
  ) -> DeviceModelCommand {
    let (qmp, events) = socketPaths(runDirectory: runDirectory, domid: domid)
    let chroot = runDirectory + "/qemu-root-\(domid)"
    var command: DeviceModelCommand
    switch DeviceModelTarget.resolve(domain.deviceModel.target, host: host) {
    case .xen:
      command = DeviceModelCommand(
        target: .xen, executable: domain.deviceModel.override ?? XenCommandLine.defaultExecutable,
        arguments: XenCommandLine.arguments(for: domain, domid: domid), qmpSocketPath: qmp, eventSocketPath: events)
    case .local:
      let accelerator = Accelerator.resolve(domain.deviceModel.accelerator, host: host)
      var passed: [PassedFile] = []
      var taps: [PassedTap] = []
      command = DeviceModelCommand(
        target: .local, executable: domain.deviceModel.override ?? LocalCommandLine.defaultExecutable,
        arguments: LocalCommandLine.arguments(
          for: domain, domid: domid, accelerator: accelerator.0, consoleLog: consoleLog, passing: user != nil,
          passed: &passed, taps: &taps),
        qmpSocketPath: qmp, eventSocketPath: events)
      command.passedFiles = passed
      command.taps = taps
      (command.accelerator, command.acceleratorReason) = accelerator
    }
    if let user {
      // As libxl: QEMU chroots into an empty directory and becomes the user for good just
      // before the guest runs; its seccomp filter is on from the start. The user's own
      // device_model_args stay last.
      command.user = user
      command.chrootPath = chroot
      let restriction = ["-chroot", chroot, "-runas", "\(user.uid):\(user.gid)", "-sandbox", sandboxArgument]
      let userArguments = domain.deviceModel.args.count
        + (domain.type == .hvm ? domain.deviceModel.argsHVM.count : domain.deviceModel.argsPV.count)
      command.arguments.insert(contentsOf: restriction, at: command.arguments.count - userArguments)
    }
    return command
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
