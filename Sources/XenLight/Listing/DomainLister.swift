#if canImport(Glibc)
import Glibc
#endif
import Spawn
import XenStore

/// `xl list`: every domain with records in xenstore, and whether its device model lives.
public struct DomainLister: Sendable {
  public init() {}

  /// The domains in `store`, by domid; only `selection` (domids) when given.
  public func list(_ store: DomainStore, only selection: [UInt32]? = nil) async throws(XenLightError) -> [DomainInfo] {
    let domids: [UInt32]
    if let selection { domids = selection } else { domids = try await store.guestDomids() }
    // One task per domain: their requests go out together.
    do {
      return try await withThrowingTaskGroup(of: DomainInfo.self) { group in
        for domid in domids { group.addTask { try await info(domid, store) } }
        var domains: [DomainInfo] = []
        for try await domain in group { domains.append(domain) }
        return domains.sorted { $0.domid < $1.domid }
      }
    } catch {
      throw XenStoreConnector.failure("cannot read the domains' records", error)
    }
  }

  private nonisolated func info(_ domid: UInt32, _ store: DomainStore) async throws -> DomainInfo {
    let home = "/local/domain/\(domid)"
    let values = try await store.read(["name", "vm", "memory/target", "memory/static-max"], under: home)
    let notes = try await store.read(
      ["type", "device-model-identity", "dm-target", "qmp-path", "dm-log", "run-state", "monitor-identity"], under: "/libxl/\(domid)")
    var vm: [String: String] = [:]
    if let path = values["vm"], path.hasPrefix("/vm/") { vm = try await store.read(["uuid", "start_time"], under: path) }
    let cpus = try await DomainStore.directoryOrEmpty(store.xenstore, home + "/cpu")
    var online = 0
    for cpu in cpus where try await DomainStore.readOptional(store.xenstore, "\(home)/cpu/\(cpu)/availability") == "online" {
      online += 1
    }
    let state = try await DomainStore.readOptional(store.xenstore, "/local/domain/0/device-model/\(domid)/state")

    var deviceModel = DomainInfo.DeviceModelState.none
    var cpuSeconds = 0.0
    if let text = notes["device-model-identity"], let identity = ProcessIdentity(text) {
      deviceModel = DomainDestroyer.liveness(of: identity)
      if deviceModel == .running { cpuSeconds = Self.cpuSeconds(of: identity.pid) }
    }
    var info = DomainInfo(
      domid: domid, name: values["name"] ?? "(unnamed)", uuid: vm["uuid"], type: notes["type"],
      memoryKiB: values["memory/target"].flatMap { Int($0) } ?? 0,
      maxMemoryKiB: values["memory/static-max"].flatMap { Int($0) } ?? 0,
      onlineVcpus: online, maxVcpus: cpus.count, deviceModelStateNode: state,
      deviceModelIdentity: notes["device-model-identity"], deviceModel: deviceModel, cpuSeconds: cpuSeconds,
      target: notes["dm-target"], qmpSocketPath: notes["qmp-path"], logPath: notes["dm-log"], startTime: vm["start_time"])
    info.runState = notes["run-state"].flatMap(RunState.init)
    if let text = notes["device-model-identity"], let identity = ProcessIdentity(text), deviceModel == .running {
      info.blocked = Self.vcpusIdle(pid: identity.pid)
    }
    if let text = notes["monitor-identity"], let identity = ProcessIdentity(text) {
      info.monitored = DomainDestroyer.liveness(of: identity) == .running
    }
    return info
  }

  /// Every QEMU vCPU thread (`CPU n/KVM`, `CPU n/TCG`) is sleeping, not running.
  static func vcpusIdle(pid: Int32) -> Bool {
    let dir = opendir("/proc/\(pid)/task")
    guard let dir else { return false }
    defer { closedir(dir) }
    var sawVCPU = false
    while let entry = readdir(dir) {
      let tid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
      guard let comm = try? FileIO.readText("/proc/\(pid)/task/\(tid)/comm"), comm.hasPrefix("CPU ") else { continue }
      sawVCPU = true
      guard let stat = try? FileIO.readText("/proc/\(pid)/task/\(tid)/stat"), let close = stat.lastIndex(of: ")") else { continue }
      if stat[stat.index(after: close)...].split(separator: " ").first == "R" { return false }
    }
    return sawVCPU
  }

  /// User + system time of `pid` from `/proc/<pid>/stat` (fields 14 and 15), in seconds.
  static func cpuSeconds(of pid: Int32) -> Double {
    guard let text = try? FileIO.readText("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return 0 }
    // Fields after "(comm)" start at field 3.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
  }
}
