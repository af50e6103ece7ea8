import ArgumentParser
import XenLight

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
