#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Spawn
import XenStore

/// One NIC of a running domain, as `xl network-list` shows it (libxl's `libxl_nicinfo`).
public struct NetworkDeviceInfo: Sendable, Hashable {
  public var devid: Int
  public var backendDomid: Int
  public var mac: String
  /// The frontend's xenbus state (1, initialising: without Xen no backend driver moves it).
  public var state: Int
  /// Event channel and ring references: -1 without Xen's netfront.
  public var eventChannel: Int
  public var txRingRef: Int
  public var rxRingRef: Int
  public var backendPath: String
  /// The tap's name (nil: user-mode networking).
  public var tap: String?

  /// `xl network-list`'s header and rows (tools/xl/xl_nic.c).
  public static let header = "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path                       "

  public var row: String {
    func pad(_ text: String, _ width: Int, left: Bool) -> String {
      let fill = String(repeating: " ", count: max(0, width - text.count))
      return left ? text + fill : fill + text
    }
    return pad("\(devid)", 3, left: true) + " " + pad("\(backendDomid)", 2, left: true) + " " + mac
      + pad("\(devid)", 6, left: false) + " " + pad("\(state)", 5, left: false) + " " + pad("\(eventChannel)", 6, left: false)
      + " " + pad("\(txRingRef)", 5, left: false) + "/" + pad("\(rxRingRef)", 11, left: true) + " " + pad(backendPath, 30, left: true)
  }
}

/// How long a guest has to release a NIC after `device_del` (ACPI hot-unplug needs the
/// guest's consent) before `network-detach` gives up and says so; the device stays.
public let networkDetachTimeout = Duration.seconds(10)

extension Toolstack {
  /// `xl network-attach DOMAIN SPEC`: the NIC `spec` (a `vif` entry) added to the running
  /// guest: its tap created and connected as at create (natively, or by its script), passed
  /// to QEMU (`getfd`, `netdev_add` with that fd name, `device_add`), its records written and
  /// the domain's saved config updated. Any failure undoes every step before it.
  public func networkAttach(_ reference: String, spec: String) async throws(XenLightError) -> NetworkDeviceInfo {
    try await control(reference) { control, target throws(XenLightError) -> NetworkDeviceInfo in
      let domain = try NetworkTarget.read(target, control: control, paths: paths)
      var nic: NicSpec
      do { nic = try NicSpec.parse(spec) } catch {
        throw XenLightError(.invalidConfig, "vif \(ConfigValue.quoted(spec)): \(error)")
      }
      let taken = try await domain.devids(control.store)
      do { nic = try NicSpec.numbered([nic], taken: Set(taken))[0] } catch {
        throw XenLightError(.invalidConfig, "vif \(ConfigValue.quoted(spec)): \(error)")
      }
      if nic.script == nil, let bridge = nic.bridge { try BridgePort.check(bridge, what: "vif \(nic.devid!)") }
      // As at create: a PV or PVH guest's NIC is paravirtual (its device model's is virtio).
      let type = try await domain.domainType(control.store)
      if type != .hvm { nic.type = "vif" }
      return try await domain.attach(nic, type: type, store: control.store, toolstack: self)
    }
  }

  /// `xl network-detach DOMAIN DEVID|MAC`: `device_del`, then the guest's release
  /// (`DEVICE_DELETED`, within `networkDetachTimeout`), `netdev_del` (QEMU closes the tap,
  /// which goes), the script's `remove`, the records, and the saved config updated.
  public func networkDetach(_ reference: String, device: String) async throws(XenLightError) {
    try await control(reference) { control, target throws(XenLightError) in
      let domain = try NetworkTarget.read(target, control: control, paths: paths)
      let devices = try await domain.list(control.store)
      let found = device.contains(":")
        ? devices.first { $0.mac == device.lowercased() }
        : Int(device).flatMap { devid in devices.first { $0.devid == devid } }
      guard let found else {
        throw XenLightError(
          .notFound, "domain \(target.domid) (\(target.name)) has no network device \(device) (xl network-list \(target.name) shows them)")
      }
      try await domain.detach(found, store: control.store, toolstack: self)
    }
  }

  /// `xl network-list DOMAIN`: the domain's NICs, by devid.
  public func networkList(_ reference: String) async throws(XenLightError) -> [NetworkDeviceInfo] {
    try await control(reference) { control, target throws(XenLightError) in
      try await NetworkTarget.read(target, control: control, paths: paths).list(control.store)
    }
  }
}

/// A running domain whose NICs change: its QMP socket and where its config is saved.
struct NetworkTarget: Sendable {
  let target: DomainControl.Target
  let qmpSocket: String
  let loop: EventLoop
  let paths: ToolstackPaths

  var domid: UInt32 { target.domid }
  var name: String { "domain \(target.domid) (\(target.name))" }

  static func read(_ target: DomainControl.Target, control: DomainControl, paths: ToolstackPaths) throws(XenLightError) -> NetworkTarget {
    guard let qmp = target.qmpSocket, target.deviceModelTarget == .local else {
      throw XenLightError(
        .invalidState, "domain \(target.domid) (\(target.name)): NICs change while it runs only on the local target (its device model is QEMU with a QMP socket)")
    }
    return NetworkTarget(target: target, qmpSocket: qmp, loop: control.loop, paths: paths)
  }

  func devids(_ store: DomainStore) async throws(XenLightError) -> [Int] {
    do {
      return try await DomainStore.directoryOrEmpty(store.xenstore, NetworkLayout.backendRoot(domid: domid)).compactMap { Int($0) }
    } catch {
      throw XenStoreConnector.failure("cannot read \(name)'s network devices", error)
    }
  }

  func list(_ store: DomainStore) async throws(XenLightError) -> [NetworkDeviceInfo] {
    var devices: [NetworkDeviceInfo] = []
    for devid in try await devids(store).sorted() {
      let layout = NetworkLayout(domid: domid, devid: devid)
      do {
        let front = try await store.read(["state", "event-channel", "tx-ring-ref", "rx-ring-ref", "mac"], under: layout.frontendPath)
        let back = try await store.read(["mac"], under: layout.backendPath)
        let tap = try await DomainStore.readOptional(store.xenstore, layout.tapPath)
        func number(_ key: String) -> Int { front[key].flatMap { Int($0) } ?? -1 }
        devices.append(NetworkDeviceInfo(
          devid: devid, backendDomid: 0, mac: back["mac"] ?? front["mac"] ?? "00:00:00:00:00:00", state: number("state"),
          eventChannel: number("event-channel"), txRingRef: number("tx-ring-ref"), rxRingRef: number("rx-ring-ref"),
          backendPath: layout.backendPath, tap: tap))
      } catch {
        throw XenStoreConnector.failure("cannot read \(name)'s network device \(devid)", error)
      }
    }
    return devices
  }

  /// The records, the tap (connected), the QEMU side, then the saved config; undone in
  /// reverse on failure. The QMP session opens meanwhile (QEMU's greeting and capabilities
  /// are most of a QMP client's time).
  func attach(_ nic: NicSpec, type: DomainType, store: DomainStore, toolstack: Toolstack) async throws(XenLightError)
    -> NetworkDeviceInfo
  {
    let devid = nic.devid!
    let layout = NetworkLayout(domid: domid, devid: devid)
    let (path, loop, what) = (qmpSocket, loop, "\(name) device model")
    let session = Task { () async -> Result<QMPClient, XenLightError> in
      do throws(XenLightError) { return .success(try await QMPClient.connect(path: path, loop: loop, what: what)) } catch { return .failure(error) }
    }
    let result: Result<NetworkDeviceInfo, XenLightError>
    do throws(XenLightError) {
      result = .success(try await attach(nic, type: type, store: store, toolstack: toolstack) { () async throws(XenLightError) in
        try await session.value.get()
      })
    } catch {
      result = .failure(error)
    }
    if case .success(let qmp) = await session.value { await qmp.finish() }
    return try result.get()
  }

  private func attach(
    _ nic: NicSpec, type: DomainType, store: DomainStore, toolstack: Toolstack,
    session: () async throws(XenLightError) -> QMPClient
  ) async throws(XenLightError) -> NetworkDeviceInfo {
    let devid = nic.devid!
    let layout = NetworkLayout(domid: domid, devid: devid)
    let hotplug = VifHotplug(
      domid: domid, paths: paths, spawner: toolstack.spawner, xenstore: store.xenstore, xenstoreSocket: store.xenstore.socketPath)
    let script = nic.script.map { HotplugScript.resolve($0, in: paths.scriptDirectory) }
    let tapName = nic.usesTap ? TapDevice.connectedName(domid: domid, devid: devid, nic: nic) : nil
    guard try await store.update(domid: domid, layout.records(for: nic, script: script, tap: tapName)) else {
      throw XenLightError(.notFound, "no domain \(domid)")
    }
    var tap: Int32?
    defer { if let tap { close(tap) } }
    var scriptRan = false
    do throws(XenLightError) {
      if nic.usesTap {
        let created = TapDevice.name(domid: domid, devid: devid, nic: nic)
        tap = try TapDevice.open(created, what: "vif \(devid)")
        scriptRan = nic.script != nil
        try await hotplug.connect(tap: created, nic: nic, devid: devid)
      }
      try await Self.plug(nic, devid: devid, tap: tap, qmp: try await session(), domainType: type)
      try updateSavedConfig(store: store) { nics in nics + [nic] }
    } catch {
      if scriptRan { _ = await hotplug.disconnect(devid: devid) }
      _ = try? await store.xenstore.pipelineResults([.rm(layout.backendPath), .rm(layout.frontendPath), .rm(layout.libxlPath)])
      throw error
    }
    return NetworkDeviceInfo(
      devid: devid, backendDomid: 0, mac: nic.mac, state: 1, eventChannel: -1, txRingRef: -1, rxRingRef: -1,
      backendPath: layout.backendPath, tap: tapName)
  }

  func domainType(_ store: DomainStore) async throws(XenLightError) -> DomainType {
    let text = try? await DomainStore.readOptional(store.xenstore, "/libxl/\(domid)/type")
    return text.flatMap { $0 }.flatMap { DomainType(rawValue: $0) } ?? .hvm
  }

  /// `getfd` (the tap), `netdev_add`, `device_add`; a failed `device_add` takes its netdev back.
  static func plug(
    _ nic: NicSpec, devid: Int, tap: Int32?, qmp: QMPClient, domainType: DomainType
  ) async throws(XenLightError) {
    var netdev: [(String, JSON)] = [("id", .string("net\(devid)"))]
    if let tap {
      let fdName = "xl-tap-\(devid)"
      try await qmp.execute("getfd", [("fdname", .string(fdName))], passing: tap)
      netdev = [("type", .string("tap"))] + netdev + [("fd", .string(fdName))]
    } else {
      netdev = [("type", .string("user"))] + netdev
    }
    try await qmp.execute("netdev_add", netdev)
    do throws(XenLightError) {
      try await qmp.execute("device_add", NetworkDevice.qmpArguments(nic, devid: devid, type: domainType))
    } catch {
      _ = try? await qmp.execute("netdev_del", [("id", .string("net\(devid)"))])
      throw error
    }
  }

  /// `device_del`, the guest's release, `netdev_del`; then the script, the records, the
  /// saved config.
  func detach(_ device: NetworkDeviceInfo, store: DomainStore, toolstack: Toolstack) async throws(XenLightError) {
    let devid = device.devid
    let what = "\(name) device model"
    try await QMPClient.session(path: qmpSocket, loop: loop, what: what) { qmp throws(XenLightError) in
      let nicID = "nic\(devid)"
      let events = qmp.events
      // Listening before the request: the event may come before device_del's own answer.
      let released = Task { () -> Bool in
        for await event in events where event.name == "DEVICE_DELETED" && event.data["device"]?.stringValue == nicID { return true }
        return false
      }
      defer { released.cancel() }
      do throws(XenLightError) {
        try await qmp.execute("device_del", [("id", .string(nicID))])
      } catch where error.message.contains("not found") {
        // Gone from QEMU already (a detach cut short): the rest still has to go.
        released.cancel()
      }
      if !released.isCancelled {
        let done = try? await first(within: networkDetachTimeout) { await released.value }
        guard done == true else {
          throw XenLightError(
            .timedOut,
            "\(name): the guest did not release network device \(devid) within \(networkDetachTimeout) of device_del (its driver must let it go); the device is still attached")
        }
      }
      do throws(XenLightError) { try await qmp.execute("netdev_del", [("id", .string("net\(devid)"))]) } catch where error.message.contains("not found") {}
    }
    let hotplug = VifHotplug(
      domid: domid, paths: paths, spawner: toolstack.spawner, xenstore: store.xenstore, xenstoreSocket: store.xenstore.socketPath)
    let problem = await hotplug.disconnect(devid: devid)
    let layout = NetworkLayout(domid: domid, devid: devid)
    do {
      for result in try await store.xenstore.pipelineResults([.rm(layout.backendPath), .rm(layout.frontendPath), .rm(layout.libxlPath)]) {
        if case .failure(let error) = result, error.code != .ENOENT { throw error }
      }
    } catch {
      throw XenStoreConnector.failure("cannot remove \(name)'s network device \(devid) records", error)
    }
    try updateSavedConfig(store: store) { nics in nics.filter { $0.devid != devid } }
    if let problem { throw XenLightError(.invalidConfig, "\(name): network device \(devid) detached, but \(problem)") }
  }

  /// Rewrites the saved config's `vif` list through `change` (each NIC pinned: its MAC and
  /// devid written out, so a restart brings back the same NICs).
  func updateSavedConfig(store: DomainStore, _ change: ([NicSpec]) -> [NicSpec]) throws(XenLightError) {
    let path = paths.savedConfig(domid: domid, uuid: target.layout.uuid)
    try SavedConfigEditor.update(path) { text throws(XenLightError) in
      let config = try DomainConfiguration(try ConfigFile.parse(text, file: path), source: path)
      return SavedConfigEditor.replacingList("vif", with: change(config.nics).map(\.canonical), in: text)
    }
  }
}
