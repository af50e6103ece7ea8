import ArgumentParser

/// `xl help [COMMAND]`.
struct Help: XLSubcommand {
  static let configuration = CommandConfiguration(abstract: "Print help on xl, or on one command.")
  @Argument(help: "The command.") var command: String?

  func execute() async throws {
    guard let command else { return Terminal.output(XL.helpMessage()) }
    guard let subcommand = XL.configuration.subcommands.first(where: { $0._commandName == command }) else {
      Terminal.error("xl: no command \"\(command)\" (xl help lists them)")
      throw ExitCode(64)
    }
    Terminal.output(XL.helpMessage(for: subcommand))
  }
}
