import ArgumentParser
import XenLight

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
