#if canImport(Glibc)
import Glibc
#endif
import Spawn
import XenStore

/// Connects and disconnects a domain's bridged NICs as Xen's hotplug does: by the vif's
/// `script=` (Xen's own scripts, unchanged), or without one, natively (`BridgePort`: what
/// `vif-bridge` does, in a few ioctls).
struct VifHotplug: Sendable {
  let domid: UInt32
  let paths: ToolstackPaths
  let spawner: Spawner
  let xenstore: XenStoreClient
  /// The socket the scripts' xenstore-read/-write use.
  let xenstoreSocket: String

  func script(_ path: String, devid: Int, gatewaydev: String?) -> HotplugScript {
    HotplugScript(
      path: HotplugScript.resolve(path, in: paths.scriptDirectory), domid: domid, devid: devid, gatewaydev: gatewaydev,
      xenstoreSocket: xenstoreSocket, logPath: paths.logDirectory + "/xen-hotplug.log")
  }

  /// Connects the tap `tap` (created, its records written) of NIC `nic`.
  func connect(tap: String, nic: NicSpec, devid: Int) async throws(XenLightError) {
    guard let path = nic.script else {
      if let bridge = nic.bridge { try BridgePort.attach(tap, to: bridge, mtu: nic.mtu, what: "vif \(devid)") }
      return
    }
    let backend = NetworkLayout(domid: domid, devid: devid).backendPath
    let xenstore = self.xenstore
    try await script(path, devid: devid, gatewaydev: nic.gatewaydev).run(.add, spawner: spawner) {
      try? await DomainStore.readOptional(xenstore, backend + "/hotplug-error")
    }
  }

  /// Runs `remove` for each of the domain's vifs that has a script, as libxl does when a
  /// device goes (Open vSwitch, for one, keeps a port until told): before the records go,
  /// which the scripts read. A failing script is reported, not fatal: the device is gone.
  func disconnectAll() async -> [String] {
    let root = NetworkLayout.backendRoot(domid: domid)
    guard let devids = try? await DomainStore.directoryOrEmpty(xenstore, root) else { return [] }
    var problems: [String] = []
    for devid in devids.compactMap({ Int($0) }).sorted() {
      if let problem = await disconnect(devid: devid) { problems.append(problem) }
    }
    return problems
  }

  /// `remove` for vif `devid` if it has a script; the problem, if it failed.
  func disconnect(devid: Int) async -> String? {
    let backend = NetworkLayout(domid: domid, devid: devid).backendPath
    guard let path = try? await DomainStore.readOptional(xenstore, backend + "/script") else { return nil }
    let gatewaydev = try? await DomainStore.readOptional(xenstore, backend + "/gatewaydev")
    do {
      try await script(path, devid: devid, gatewaydev: gatewaydev).run(.remove, spawner: spawner) { nil }
      return nil
    } catch {
      return error.message
    }
  }
}
