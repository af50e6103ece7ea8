import ArgumentParser
import XenLight

/// `xl vm-list`: uuid, id and name of every guest.
struct VMList: XLSubcommand {
  static let configuration = CommandConfiguration(commandName: "vm-list", abstract: "List guests: uuid, id and name.")

  func execute() async throws {
    let guests: [DomainSummary]
    do { guests = try await Toolstack.forXL().summaries() } catch { throw ExitStatus.fail(error) }
    var out = "UUID                                  ID    name\n"
    for guest in guests {
      out += (guest.uuid ?? "-").padding(36) + "  \(guest.domid)    " + guest.name.padding(30) + "\n"
    }
    Terminal.output(out)
  }
}

extension String {
  /// Left-aligned in `width` columns (printf's %-Ns).
  func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
