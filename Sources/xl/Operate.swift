#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import XenLight

/// `xl trigger DOMAIN nmi|reset|init|power|sleep|s3resume [VCPU]`.
struct Trigger: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Send a trigger to a domain: nmi, reset, power, s3resume (init and sleep need Xen).",
    discussion: "Through QMP: inject-nmi, system_reset, system_powerdown, system_wakeup.")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "nmi, reset, init, power, sleep or s3resume.") var trigger: String
  @Argument(help: "The vCPU (accepted for xl's sake; QEMU's NMI goes to every vCPU).") var vcpu: String?

  func execute() async throws {
    guard let chosen = DomainTrigger(rawValue: trigger) else {
      Terminal.error("xl: invalid trigger \"\(trigger)\" (expected \(DomainTrigger.allCases.map(\.rawValue).joined(separator: ", ")))")
      throw ExitCode(1)
    }
    try await Toolstack.forXL().run(domain) { control, target throws(XenLightError) in try await control.send(chosen, to: target) }
  }
}

/// `xl button-press DOMAIN power|sleep` (deprecated in xl for `trigger`).
struct ButtonPress: XLSubcommand {
  static let configuration = CommandConfiguration(commandName: "button-press", abstract: "Press a domain's power or sleep button (deprecated: use trigger).")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "power or sleep.") var button: String

  func execute() async throws {
    Terminal.error("WARNING: \"button-press\" is deprecated. Please use \"trigger\"")
    guard button == "power" || button == "sleep", let chosen = DomainTrigger(rawValue: button) else {
      Terminal.error("\(button) is an invalid button identifier")
      throw ExitCode(1)
    }
    try await Toolstack.forXL().run(domain) { control, target throws(XenLightError) in try await control.send(chosen, to: target) }
  }
}

/// `xl sysrq DOMAIN KEY`.
struct Sysrq: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Send a magic SysRq key to a domain.",
    discussion: "Written to control/sysrq as libxl does, and on the local target pressed on the guest's keyboard (Alt+SysRq+KEY, QMP send-key).")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "One letter or digit.") var key: String

  func execute() async throws {
    guard key.count == 1, let letter = key.first else {
      Terminal.error("Invalid sysrq.\n")
      throw ExitCode(1)
    }
    try await Toolstack.forXL().run(domain) { control, target throws(XenLightError) in try await control.sysrq(letter, to: target) }
  }
}

/// `xl qemu-monitor-command DOMAIN COMMAND`.
struct QemuMonitorCommand: XLSubcommand {
  static let configuration = CommandConfiguration(
    commandName: "qemu-monitor-command", abstract: "Run a QEMU human monitor command (\"info status\") and print its output.")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The monitor command, one argument.") var command: String

  func execute() async throws {
    let output = try await Toolstack.forXL().run(domain) { control, target throws(XenLightError) in
      try await control.monitorCommand(command, on: target)
    }
    Terminal.output(output.hasSuffix("\n") ? output : output + "\n")
  }
}

/// `xl dump-core DOMAIN FILE`.
struct DumpCore: XLSubcommand {
  static let configuration = CommandConfiguration(
    commandName: "dump-core", abstract: "Write a domain's memory to FILE as an ELF core (QMP dump-guest-memory).")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The core file.") var file: String

  func execute() async throws {
    let path = file.hasPrefix("/") ? file : (Self.currentDirectory + "/" + file)
    try await Toolstack.forXL().run(domain) { control, target throws(XenLightError) in try await control.dumpCore(target, to: path) }
  }

  static var currentDirectory: String {
    var buffer = [CChar](repeating: 0, count: 4096)
    return getcwd(&buffer, buffer.count) != nil ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "."
  }
}

/// `xl rename DOMAIN NEW-NAME`.
struct Rename: XLSubcommand {
  static let configuration = CommandConfiguration(abstract: "Give a domain a new name (refused if another domain has it: exit 4).")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The new name.") var name: String

  func execute() async throws {
    let toolstack = Toolstack.forXL()
    let paths = toolstack.paths
    try await toolstack.run(domain) { control, target throws(XenLightError) in try await control.rename(target, to: name, paths: paths) }
  }
}

/// `xl config-update DOMAIN [FILE] [KEY=VALUE...]`.
struct ConfigUpdate: XLSubcommand {
  static let configuration = CommandConfiguration(
    commandName: "config-update", abstract: "Replace the config a domain is re-created from when it restarts (the running domain is unchanged).")
  @Option(name: [.customShort("f"), .customLong("defconfig")], help: "The xl.cfg file.") var defconfig: String?
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The xl.cfg file (unless -f), then KEY=VALUE settings.") var arguments: [String] = []

  func execute() async throws {
    let file = defconfig ?? arguments.first
    guard let file else {
      Terminal.error("Config file not specified")
      throw ExitCode(1)
    }
    let settings = defconfig == nil ? Array(arguments.dropFirst()) : arguments
    Terminal.error("WARNING: xl now has better capability to manage domain configuration, avoid using this command when possible")
    let toolstack = Toolstack.forXL()
    let paths = toolstack.paths
    try await toolstack.run(domain) { control, target throws(XenLightError) in
      let text = try SavedConfig.text(file: file, settings: settings)
      Terminal.error("setting dom\(target.domid) configuration")
      try await control.updateConfig(target, text: text, source: file, paths: paths)
    }
  }
}
