import ArgumentParser
import XenLight

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
