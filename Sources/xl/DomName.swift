import ArgumentParser
import XenLight

/// `xl domname ID`: the domain's name.
struct DomName: XLSubcommand {
  static let configuration = CommandConfiguration(commandName: "domname", abstract: "Print the name of the domain with this id.")
  @Argument(help: "The domain's id.") var id: String

  func execute() async throws {
    guard let domid = UInt32(id.prefix { $0.isNumber }), id.first?.isNumber == true else {
      Terminal.error("Invalid domain id.\n")
      throw ExitCode(1)
    }
    if domid == 0 { return Terminal.output("Domain-0\n") }
    let found = try? await Toolstack.forXL().summaries(["\(domid)"])
    guard let name = found?.first?.name else {
      Terminal.error("Can't get domain name of domain id '\(domid)', maybe this domain does not exist.")
      throw ExitCode(1)
    }
    Terminal.output(name + "\n")
  }
}
