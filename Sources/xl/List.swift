import ArgumentParser
import Spawn
import XenLight

/// `xl list [-l] [-v] [-n] [DOMAIN...]`.
struct List: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "List domains: name, id, memory, VCPUs, state and CPU time.",
    discussion: """
      State letters are xl's (r running, b blocked, p paused, s shutdown, c crashed, \
      d dying). A domain whose device model has died shows ---sc-.
      """)

  @Flag(name: [.customShort("l"), .customLong("long")], help: "Print JSON with each domain's configuration and device model.")
  var long = false

  @Flag(name: [.customShort("v"), .customLong("verbose")], help: "Also each domain's UUID, shutdown reason code and security label.")
  var verbose = false

  @Flag(name: [.customShort("n"), .customLong("numa")], help: "Also each domain's NUMA node affinity (one node here: all).")
  var numa = false

  @Argument(help: "Only these domains (names or ids).")
  var domains: [String] = []

  @Option(name: .long, help: "Seconds xenstored may take to answer (libxenstore waits forever).")
  var xenstoreTimeout: Double = 10

  func execute() async throws {
    let infos: [DomainInfo]
    let toolstack = Toolstack.forXL(xenstoreTimeout: xenstoreTimeout)
    // A migration whose xl died is settled first, so that the list shows where the guest is.
    _ = try? await toolstack.withStore { store throws(XenLightError) in
      await MigrationLeftovers.resolve(store, toolstack: toolstack, log: { Terminal.error($0) })
    }
    do { infos = try await toolstack.list(domains) } catch { throw ExitStatus.fail(error) }
    Terminal.output(long ? DomainListFormat.json(infos) : DomainListFormat.table(infos, verbose: verbose, numa: numa))
  }
}
