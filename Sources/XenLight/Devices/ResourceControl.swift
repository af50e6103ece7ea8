#if canImport(Glibc)
import Glibc
#endif
import Spawn
import XenStore

/// `xl mem-set`, `mem-max` and `vcpu-set` on a running guest, as libxl does over the
/// hypervisor: QEMU boots with room for `maxmem` and a balloon holds the guest to its target;
/// vCPUs up to `maxvcpus` are hot-added and removed by QEMU's CPU hotplug. Each change is
/// recorded (`memory/target`, `memory/static-max`, `cpu/N/availability`) and kept in the saved
/// config, so a restart comes back as the guest is now. Beyond a maximum: refused, nothing changed.
public struct ResourceControl: Sendable {
  public let control: DomainControl
  public let paths: ToolstackPaths
  /// How long the guest has to let go of a vCPU being removed.
  public var removalTimeout: Duration = .seconds(10)

  public init(control: DomainControl, paths: ToolstackPaths) {
    self.control = control
    self.paths = paths
  }

  var store: DomainStore { control.store }

  /// xl's memory sizes (`parse_mem_size_kb`): a number with an optional unit t, g, m (the
  /// default), k or b, either case. nil when malformed.
  public static func kibibytes(_ text: String) -> Int64? {
    let digits = text.prefix { $0.isNumber }
    let unit = text.dropFirst(digits.count)
    guard !digits.isEmpty, unit.count <= 1, let value = Int64(digits), value < (1 << 40) else { return nil }
    switch unit.lowercased() {
    case "t": return value << 30
    case "g": return value << 20
    case "", "m": return value << 10
    case "k": return value
    case "b": return value >> 10
    default: return nil
    }
  }

  /// `xl mem-set`: the balloon's target, at most the domain's maximum (`memory/static-max`).
  public func setMemory(_ target: DomainControl.Target, kibibytes: Int64) async throws(XenLightError) {
    try control.require(target, "set the memory of", allowed: [.running, .paused])
    let maximum = try await recordedKiB(target, "memory/static-max")
    guard kibibytes <= maximum else {
      throw XenLightError(
        .invalidConfig,
        "cannot set domain \(target.domid) (\(target.name))'s memory to \(Self.readable(kibibytes)): more than its maximum, \(Self.readable(maximum)) (maxmem; xl mem-max raises it)")
    }
    guard kibibytes >= 1024 else {
      throw XenLightError(.invalidConfig, "cannot set domain \(target.domid) (\(target.name))'s memory to \(Self.readable(kibibytes)): less than 1 MiB")
    }
    _ = try await control.session(target) { qmp throws(XenLightError) in
      try await qmp.execute("balloon", [("value", .number(kibibytes << 10))])
    }
    try await store.update(domid: target.domid, [XenStoreRecord(target.layout.domainPath + "/memory/target", "\(kibibytes)")])
    try editSavedConfig(target) { SavedConfigEditor.replacing("memory", with: .number(kibibytes >> 10), in: $0) }
  }

  /// `xl mem-max`: the domain's maximum, at least its target and at most the room QEMU was
  /// started with (`maxmem` at create).
  public func setMaximumMemory(_ target: DomainControl.Target, kibibytes: Int64) async throws(XenLightError) {
    try control.require(target, "set the maximum memory of", allowed: [.running, .paused])
    let current = try await recordedKiB(target, "memory/target")
    guard kibibytes >= current else {
      throw XenLightError(
        .invalidConfig,
        "cannot set domain \(target.domid) (\(target.name))'s maximum memory to \(Self.readable(kibibytes)): less than its memory, \(Self.readable(current)) (xl mem-set lowers it)")
    }
    let room = try await control.session(target) { qmp throws(XenLightError) in
      try await qmp.execute("query-memory-size-summary")["base-memory"]?.intValue ?? 0
    }
    guard kibibytes <= room >> 10 else {
      throw XenLightError(
        .invalidConfig,
        "cannot set domain \(target.domid) (\(target.name))'s maximum memory to \(Self.readable(kibibytes)): its device model has room for \(Self.readable(room >> 10)) (maxmem at create)")
    }
    try await store.update(domid: target.domid, [XenStoreRecord(target.layout.domainPath + "/memory/static-max", "\(kibibytes)")])
    try editSavedConfig(target) { SavedConfigEditor.replacing("maxmem", with: .number(kibibytes >> 10), in: $0) }
  }

  /// `xl vcpu-set`: `count` vCPUs present, from 1 to `maxvcpus`. CPUs are added and removed by
  /// socket/core/thread from `query-hotpluggable-cpus`; those QEMU booted with (`vcpus` at
  /// create) cannot be removed, nor any under TCG (see below). A hot-added vCPU is offline in
  /// the guest until it onlines it.
  public func setVcpus(_ target: DomainControl.Target, count: Int) async throws(XenLightError) {
    try control.require(target, "set the vCPUs of", allowed: [.running, .paused])
    let maximum: Int
    do {
      maximum = try await DomainStore.directoryOrEmpty(store.xenstore, target.layout.domainPath + "/cpu").count
    } catch {
      throw XenStoreConnector.failure("cannot read domain \(target.domid)'s records", error)
    }
    guard count >= 1 else { throw XenLightError(.invalidConfig, "Error: Invalid argument.") }
    guard count <= maximum else {
      throw XenLightError(
        .invalidConfig,
        "cannot set domain \(target.domid) (\(target.name)) to \(count) vCPUs: its maximum is \(maximum) (maxvcpus)")
    }
    let timeout = removalTimeout
    try await control.session(target) { qmp throws(XenLightError) in
      let slots = try await Self.hotpluggable(qmp)
      let present = slots.filter { $0.qomPath != nil }
      if count > present.count {
        for slot in slots.filter({ $0.qomPath == nil }).prefix(count - present.count) {
          try await qmp.execute("device_add", [("driver", .string(slot.type)), ("id", .string(slot.id))] + slot.properties)
        }
      } else if count < present.count {
        // QEMU (7.2) under TCG gives each vCPU it ever adds a translation context of its own,
        // up to maxvcpus, and aborts when one more is asked for: a vCPU removed could never
        // come back. Its guest can still take it offline.
        let kvm = try await qmp.execute("query-kvm")["enabled"]?.boolValue ?? false
        guard kvm else {
          throw XenLightError(
            .invalidConfig,
            "cannot take domain \(target.domid) (\(target.name)) down to \(count) vCPUs: QEMU under TCG cannot add a vCPU back once removed (it aborts), so xl does not remove them; the guest can take one offline (echo 0 > /sys/devices/system/cpu/cpuN/online)")
        }
        let removable = present.filter { $0.qomPath!.hasPrefix("/machine/peripheral/") }
        let excess = present.count - count
        guard removable.count >= excess else {
          throw XenLightError(
            .invalidConfig,
            "cannot set domain \(target.domid) (\(target.name)) to \(count) vCPUs: QEMU cannot remove the \(present.count - removable.count) it booted with (vcpus at create)")
        }
        for slot in removable.suffix(excess).reversed() {
          try await qmp.execute("device_del", [("id", .string(slot.id))])
          let deleted = await qmp.awaitDeletion(of: slot.id, part: "lapic", within: timeout)
          guard deleted else {
            throw XenLightError(
              .timedOut, "domain \(target.domid) (\(target.name)) did not release vCPU \(slot.index) within \(timeout.readable)")
          }
        }
      }
    }
    let records = (0..<maximum).map {
      XenStoreRecord(target.layout.domainPath + "/cpu/\($0)/availability", $0 < count ? "online" : "offline")
    }
    try await store.update(domid: target.domid, records)
    try editSavedConfig(target) { SavedConfigEditor.replacing("vcpus", with: .number(Int64(count)), in: $0) }
  }

  /// One of QEMU's CPU slots, numbered in socket, die, core, thread order.
  struct Slot {
    var index: Int
    var type: String
    var properties: [(String, JSON)]
    var qomPath: String?
    /// The device id xl gives a vCPU it adds.
    var id: String { "xl-vcpu-\(index)" }
  }

  static func hotpluggable(_ qmp: QMPClient) async throws(XenLightError) -> [Slot] {
    func position(_ slot: JSON) -> [Int64] {
      ["socket-id", "die-id", "core-id", "thread-id"].map { slot["props"]?[$0]?.intValue ?? 0 }
    }
    let listed = (try await qmp.execute("query-hotpluggable-cpus").arrayValue ?? []).sorted { position($0).lexicographicallyPrecedes(position($1)) }
    return listed.enumerated().map { index, slot in
      let props: [(String, JSON)]
      if case .object(let members)? = slot["props"] { props = members } else { props = [] }
      return Slot(index: index, type: slot["type"]?.stringValue ?? "", properties: props, qomPath: slot["qom-path"]?.stringValue)
    }
  }

  private func recordedKiB(_ target: DomainControl.Target, _ node: String) async throws(XenLightError) -> Int64 {
    do {
      guard let text = try await DomainStore.readOptional(store.xenstore, target.layout.domainPath + "/" + node), let value = Int64(text) else {
        throw XenLightError(.xenstore, "domain \(target.domid) (\(target.name)) has no \(node) recorded")
      }
      return value
    } catch let error as XenLightError {
      throw error
    } catch {
      throw XenStoreConnector.failure("cannot read domain \(target.domid)'s records", error)
    }
  }

  private func editSavedConfig(_ target: DomainControl.Target, _ edit: (String) -> String) throws(XenLightError) {
    try SavedConfigEditor.update(paths.savedConfig(domid: target.domid, uuid: target.layout.uuid)) { text throws(XenLightError) in edit(text) }
  }

  /// "256 MiB", or "1536 KiB" when not whole MiB.
  static func readable(_ kibibytes: Int64) -> String {
    kibibytes % 1024 == 0 ? "\(kibibytes / 1024) MiB" : "\(kibibytes) KiB"
  }
}
