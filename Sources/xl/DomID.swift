import ArgumentParser
import XenLight

/// `xl domid NAME`: the domain's id (Domain-0 is the host, 0).
struct DomID: XLSubcommand {
  static let configuration = CommandConfiguration(commandName: "domid", abstract: "Print the id of the domain with this name.")
  @Argument(help: "The domain's name.") var name: String

  func execute() async throws {
    if name == "Domain-0" { return Terminal.output("0\n") }
    let domid = try? await Toolstack.forXL().withStore { store throws(XenLightError) in try await store.find(name) }
    guard let domid, let domid, !name.allSatisfy(\.isNumber) else {
      Terminal.error("Can't get domid of domain name '\(name)', maybe this domain does not exist.")
      throw ExitCode(1)
    }
    Terminal.output("\(domid)\n")
  }
}
