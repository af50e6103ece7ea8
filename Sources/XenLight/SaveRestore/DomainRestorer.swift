#if canImport(Glibc)
import Glibc
#endif
import Spawn

/// `xl restore` and the receiving end of `xl migrate`: a domain created from a save file's (or
/// migration stream's) header and state, after xl's `create_domain` with a restore file.
///
/// The header and config are read from the descriptor exactly, nothing ahead; the domain is
/// then created as `xl create` creates it — name claimed (refused, exit 4, before anything is
/// touched, when taken), records, devices, console, confinement, monitor — with its device
/// model started stopped and waiting (`-S -incoming defer`, confirmed in `inmigrate`); the
/// same descriptor, now at the start of QEMU's stream, is handed to it (`getfd`,
/// `migrate-incoming fd:`), and the domain is recorded running once QEMU says the load
/// `completed` (its `MIGRATION` event) and `cont` ran, or paused. Anything that fails on the
/// way is create's failure: device model stopped, records removed, nothing left.
public struct DomainRestorer: Sendable {
  public var toolstack: Toolstack
  /// Leave the guest paused once loaded (`-p`; the receiving end of a migration).
  public var paused = false
  /// Starts the domain's monitor (nil: none, `-e`).
  public var monitor: (@Sendable (_ domid: UInt32, _ uuid: DomainUUID, _ name: String) async throws(XenLightError) -> ProcessIdentity)?
  /// The name to create the domain under instead of the config's (`<name>--incoming`).
  public var temporaryName: String?
  /// Runs once the domain exists and its device model waits, before the state is loaded.
  public var beforeLoading: (@Sendable (_ domid: UInt32) async throws(XenLightError) -> Void)?

  public init(toolstack: Toolstack) { self.toolstack = toolstack }

  /// What was read before the state: the header and the domain it describes.
  public struct Preamble: Sendable {
    public var header: SaveFileHeader
    public var config: DomainConfiguration
    /// The config text kept as the domain's saved config.
    public var configText: String
  }

  /// Reads the header and config from `stream`; `configFile` replaces the stream's config and
  /// must describe the same machine.
  public static func readPreamble(_ stream: DescriptorStream, configFile: String?) async throws(XenLightError) -> Preamble {
    let fixed = try await stream.read(SaveFileHeader.fixedSize, what: "header")
    let (_, _, length) = try SaveFileHeader.optionalDataLength(fixed: fixed, source: stream.source)
    guard length <= 16 << 20 else {
      throw XenLightError(.io, "\(stream.source): corrupt: the header's optional data claims \(length) bytes")
    }
    let optional = try await stream.read(length, what: "header's config")
    let header = try SaveFileHeader.decode(fixed: fixed, optional: optional, source: stream.source)
    let saved = try header.config.map { text throws(XenLightError) in
      try DomainConfiguration(try ConfigFile.parse(text, file: stream.source + " (its config)"), source: stream.source)
    }
    guard let configFile else {
      guard let saved, let text = header.config else {
        throw XenLightError(.invalidConfig, "\(stream.source) holds no domain config: give one (xl restore <config> \(stream.source))")
      }
      return Preamble(header: header, config: saved, configText: text)
    }
    let text = try FileIO.readText(configFile)
    var config = try DomainConfiguration(try ConfigFile.parse(text, file: configFile), source: configFile)
    if let saved {
      let differences = Self.differences(config, saved)
      guard differences.isEmpty else {
        throw XenLightError(
          .invalidConfig,
          "\(configFile) does not match the domain saved in \(stream.source): " + differences.joined(separator: "; "))
      }
      config.uuid = saved.uuid
    }
    return Preamble(header: header, config: config, configText: text)
  }

  /// What makes the two configs different machines, whose state cannot load into each other.
  static func differences(_ given: DomainConfiguration, _ saved: DomainConfiguration) -> [String] {
    var found: [String] = []
    func compare<T: Equatable>(_ key: String, _ a: T, _ b: T, _ show: (T) -> String = { "\($0)" }) {
      if a != b { found.append("\(key) is \(show(a)) here but \(show(b)) in the save file") }
    }
    compare("type", given.type.rawValue, saved.type.rawValue)
    compare("memory", given.memoryMiB, saved.memoryMiB) { "\($0) MiB" }
    compare("maxmem", given.maxMemoryMiB, saved.maxMemoryMiB) { "\($0) MiB" }
    compare("vcpus", given.vcpus, saved.vcpus)
    compare("maxvcpus", given.maxVcpus, saved.maxVcpus)
    compare("disks", given.disks.map(\.vdev), saved.disks.map(\.vdev)) { "[\($0.joined(separator: ", "))]" }
    compare("vif", given.nics.map(\.mac), saved.nics.map(\.mac)) { "[\($0.joined(separator: ", "))]" }
    compare("serial", given.serial, saved.serial) { "[\($0.joined(separator: ", "))]" }
    return found
  }

  /// Creates the domain `preamble` describes and loads the state that follows in `stream`.
  public func restore(_ preamble: Preamble, from stream: DescriptorStream, events: CreateEvents = CreateEvents())
    async throws(XenLightError) -> CreatedDomain
  {
    var domain = preamble.config
    let logName = domain.name
    if let temporaryName { domain.name = temporaryName }
    var creator = toolstack.creator()
    creator.logName = logName
    // The console log goes on where the saved guest left it: one boot, however many restores.
    creator.rotateLogs = false
    creator.configText = preamble.configText
    creator.incomingPCISlots = preamble.header.pciSlots
    if let monitor {
      creator.monitor = { domid, uuid throws(XenLightError) in try await monitor(domid, uuid, logName) }
    }
    let log = toolstack.paths.deviceModelLog(name: logName)
    let (paused, loop, source, fd, beforeLoading) = (paused, toolstack.spawner.loop, stream.source, stream.fd, beforeLoading)
    creator.incoming = { domid, command throws(XenLightError) -> RunState in
      try await beforeLoading?(domid)
      let start = Self.size(of: log)
      return try await QMPClient.session(path: command.qmpSocketPath, loop: loop, what: "domain \(domid) device model") {
        qmp throws(XenLightError) -> RunState in
        do throws(XenLightError) {
          try await QEMUMigration.receive(qmp, from: fd)
        } catch {
          // QEMU 7.2 ends when a load fails; its reasons are its last lines.
          let tail = LogFile(path: log, offset: start).tail()
          let said = tail.isEmpty ? error.message : tail.split(separator: "\n").joined(separator: "; ")
          throw XenLightError(.io, "\(source): the device model could not load the saved state: \(said)")
        }
        if paused { return .paused }
        try await qmp.execute("cont")
        return .running
      }
    }
    return try await creator.create(domain, events: events)
  }

  static func size(of path: String) -> Int64 {
    var info = stat()
    return stat(path, &info) == 0 ? Int64(info.st_size) : 0
  }
}
