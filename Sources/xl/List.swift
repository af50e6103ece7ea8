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
    try await Self.run(domains, long: long, verbose: verbose, numa: numa, xenstoreTimeout: xenstoreTimeout)
  }

  /// The list (also `FastCommandLine`'s `xl list [DOMAIN...]`).
  static func run(_ domains: [String], long: Bool = false, verbose: Bool = false, numa: Bool = false, xenstoreTimeout: Double = 10)
    async throws
  {
    let infos: [DomainInfo]
    let toolstack = Toolstack.forXL(xenstoreTimeout: xenstoreTimeout)
    do {
      // One connection: a migration whose xl died is settled first, so that the list shows
      // where the guest is; then the list.
      let held = try await toolstack.withStore { store throws(XenLightError) in
        if let failure = await MigrationLeftovers.resolve(store, toolstack: toolstack, log: { Terminal.error($0) }) { throw failure }
        return try await toolstack.list(domains, in: store)
      }
      // No xenstored and no saved state: no domains (or xl's message for the one named).
      if let held { infos = held } else { infos = try await toolstack.list(domains) }
    } catch {
      throw ExitStatus.fail(error)
    }
    Terminal.output(long ? DomainListFormat.json(infos, configs: keptConfigs(infos, toolstack.paths)) : DomainListFormat.table(infos, verbose: verbose, numa: numa))
  }

  /// Each domain's kept config (libxl's userdata), parsed, for `-l`'s devices and actions.
  static func keptConfigs(_ infos: [DomainInfo], _ paths: ToolstackPaths) -> [UInt32: DomainConfiguration] {
    var configs: [UInt32: DomainConfiguration] = [:]
    for info in infos {
      guard let uuid = info.uuid.flatMap(DomainUUID.init) else { continue }
      let path = paths.savedConfig(domid: info.domid, uuid: uuid)
      if let file = try? ConfigFile.read(contentsOf: path), let config = try? DomainConfiguration(file, source: path) {
        configs[info.domid] = config
      }
    }
    return configs
  }
}
