import ArgumentParser
import XenLight

/// `xl pause DOMAIN`: QMP `stop`.
struct Pause: XLSubcommand {
  static let configuration = CommandConfiguration(abstract: "Pause a domain's virtual CPUs.")
  @Argument(help: "The domain's name or id.") var domain: String

  func execute() async throws { try await Toolstack.forXL().run(domain) { control, target throws(XenLightError) in try await control.pause(target) } }
}

/// `xl unpause DOMAIN`: QMP `cont`.
struct Unpause: XLSubcommand {
  static let configuration = CommandConfiguration(abstract: "Let a paused domain run again.")
  @Argument(help: "The domain's name or id.") var domain: String

  func execute() async throws { try await Toolstack.forXL().run(domain) { control, target throws(XenLightError) in try await control.unpause(target) } }
}
