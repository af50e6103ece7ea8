import ArgumentParser
import Spawn
import XenLight

/// `xl list [-l] [DOMAIN...]`.
struct List: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "List domains: name, id, memory, VCPUs, state and CPU time.",
    discussion: """
      State letters are xl's (r running, b blocked, p paused, s shutdown, c crashed, \
      d dying). A domain whose device model has died shows ---sc-.
      """)

  @Flag(name: [.customShort("l"), .customLong("long")], help: "Print JSON with each domain's configuration and device model.")
  var long = false

  @Argument(help: "Only these domains (names or ids).")
  var domains: [String] = []

  @Option(name: .long, help: "Seconds xenstored may take to answer (libxenstore waits forever).")
  var xenstoreTimeout: Double = 10

  func execute() async throws {
    let connector = XenStoreConnector(paths: ToolstackPaths.current(), spawner: Spawner())
    var infos: [DomainInfo] = []
    do {
      if let client = try await connector.connectRestoringSavedState(started: connector.noteRestart) {
        defer { client.close() }
        let store = DomainStore(xenstore: client)
        let domains = self.domains
        infos = try await XenStoreDeadline(limit: .milliseconds(Int64(xenstoreTimeout * 1000))).run(client, "listing domains") {
          () async throws(XenLightError) -> [DomainInfo] in
          var selection: [UInt32]?
          if !domains.isEmpty {
            selection = []
            for name in domains {
              guard let domid = try await store.find(name) else {
                throw XenLightError(.notFound, "no domain \"\(name)\"")
              }
              selection!.append(domid)
            }
          }
          return try await DomainLister().list(store, only: selection)
        }
      } else if !domains.isEmpty {
        throw XenLightError(.notFound, "no domain \"\(domains[0])\" (no xenstored answers at \(connector.socketPath))")
      }
    } catch {
      throw ExitStatus.fail(error)
    }
    Terminal.output(long ? DomainListFormat.json(infos) : DomainListFormat.table(infos))
  }
}
