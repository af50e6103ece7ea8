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
