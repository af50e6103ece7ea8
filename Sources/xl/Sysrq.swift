import ArgumentParser
import XenLight

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
