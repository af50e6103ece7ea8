import XenStore

/// Where one vif's records live, as libxl writes them (libxl_nic.c's
/// `libxl__set_xenstore_nic`, libxl_device.c's `libxl__device_generic_add`): the backend
/// under dom0's `backend/vif/<domid>/<devid>` (Xen's hotplug scripts read `bridge`, `ip`,
/// `vifname`, `mtu` there and write `hotplug-error`), the frontend under the guest's
/// `device/vif/<devid>`, and libxl's note of both under `/libxl/<domid>/device/vif/<devid>`,
/// with the tap's name (`tap`) where this toolstack finds it again.
struct NetworkLayout: Hashable, Sendable {
  let domid: UInt32
  let devid: Int

  /// Every vif backend of domain `domid`: removed with the domain.
  static func backendRoot(domid: UInt32) -> String { "/local/domain/0/backend/vif/\(domid)" }
  static func frontendRoot(domid: UInt32) -> String { "/local/domain/\(domid)/device/vif" }
  static func libxlRoot(domid: UInt32) -> String { "/libxl/\(domid)/device/vif" }

  var backendPath: String { Self.backendRoot(domid: domid) + "/\(devid)" }
  var frontendPath: String { Self.frontendRoot(domid: domid) + "/\(devid)" }
  var libxlPath: String { Self.libxlRoot(domid: domid) + "/\(devid)" }
  var tapPath: String { libxlPath + "/tap" }

  /// The records of `nic`; `script` is its hotplug script's absolute path (nil: none runs),
  /// `tap` the tap's name once connected (nil: user-mode networking).
  func records(for nic: NicSpec, script: String?, tap: String?) -> [XenStoreRecord] {
    let backendAccess = Permissions(owner: 0, defaultAccess: .none, grants: [Permission(domain: domid, access: .read)])
    let frontendAccess = Permissions(owner: domid, defaultAccess: .none, grants: [Permission(domain: 0, access: .read)])
    var back: [(String, String)] = [
      ("frontend", frontendPath), ("frontend-id", "\(domid)"), ("online", "1"), ("state", "1"),
    ]
    if let script { back.append(("script", script)) }
    if let vifname = nic.vifname { back.append(("vifname", vifname)) }
    back.append(("mac", nic.mac))
    for (key, value) in [("ip", nic.ip), ("gatewaydev", nic.gatewaydev), ("rate", nic.rate), ("mtu", nic.mtu.map(String.init)), ("vlan", nic.vlan)] {
      if let value { back.append((key, value)) }
    }
    if let bridge = nic.bridge { back.append(("bridge", bridge)) }
    back += [("handle", "\(devid)"), ("type", nic.type == "ioemu" ? "vif_ioemu" : "vif"), ("hotplug-status", "")]
    let front: [(String, String)] = [
      ("backend", backendPath), ("backend-id", "0"), ("state", "1"), ("handle", "\(devid)"), ("mac", nic.mac),
      ("trusted", "1"), ("mtu", "\(nic.mtu ?? 1500)"),
    ]
    var records = [XenStoreRecord(backendPath, permissions: backendAccess)]
    records += back.map { XenStoreRecord(backendPath + "/" + $0.0, $0.1) }
    records.append(XenStoreRecord(frontendPath, permissions: frontendAccess))
    records += front.map { XenStoreRecord(frontendPath + "/" + $0.0, $0.1) }
    records += [XenStoreRecord(libxlPath + "/frontend", frontendPath), XenStoreRecord(libxlPath + "/backend", backendPath)]
    if let tap { records.append(XenStoreRecord(tapPath, tap)) }
    return records
  }

  /// Every NIC's records of `domain` as domain `domid`.
  static func records(for domain: DomainConfiguration, domid: UInt32, scriptDirectory: String) -> [XenStoreRecord] {
    domain.nics.enumerated().flatMap { index, nic in
      let devid = nic.devid ?? index
      return NetworkLayout(domid: domid, devid: devid).records(
        for: nic, script: nic.script.map { HotplugScript.resolve($0, in: scriptDirectory) },
        tap: !nic.usesTap ? nil : TapDevice.connectedName(domid: domid, devid: devid, nic: nic))
    }
  }
}
