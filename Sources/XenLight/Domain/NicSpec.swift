/// One `vif = [ … ]` entry (xl-network-configuration): comma-separated `key=value` settings;
/// `''` means every default.
///
/// With `bridge=` (or `script=`), the guest's NIC is a tap device on the host, connected as
/// Xen connects it (by the `script=` given, or natively as `vif-bridge` would); with neither,
/// QEMU's user-mode network.
public struct NicSpec: Hashable, Sendable {
  /// `00:16:3e:xx:xx:xx` (Xen's OUI) with random low bytes when not given, as libxl does.
  public var mac: String
  /// The host bridge the NIC's tap joins; nil: user-mode networking (no bridge named).
  public var bridge: String?
  /// The emulated NIC QEMU provides (rtl8139 by default, e1000, virtio-net-pci…).
  public var model: String
  /// "ioemu" (emulated by the device model) or "vif" (paravirtual only).
  public var type: String
  /// The device number (`devid=`); nil: the lowest free one, given at create or attach.
  public var devid: Int?
  /// `script=`: the hotplug script that connects the tap (relative names are under Xen's
  /// script directory); nil: xl connects it to the bridge itself, as `vif-bridge` would.
  public var script: String?
  /// `vifname=`: the tap is `<vifname>-emu` instead of `vif<domid>.<devid>-emu`.
  public var vifname: String?
  /// `ip=`, `gatewaydev=`, `mtu=`, `vlan=`, `rate=`: recorded for the hotplug script.
  public var ip: String?
  public var gatewaydev: String?
  public var mtu: Int?
  public var vlan: String?
  public var rate: String?

  /// Whether the NIC is a tap device on the host: it names a bridge or a script (`vif-route`
  /// needs no bridge). Otherwise it is QEMU's user-mode network.
  public var usesTap: Bool { bridge != nil || script != nil }

  /// Keys for Xen's network backends that have nothing to do in a device model.
  static let backendOnlyKeys: Set<String> = [
    "backend", "accel", "forwarddev", "colo_forwarddev", "colo_sock_mirror_id",
  ]

  public init(mac: String, bridge: String? = nil, model: String = "rtl8139", type: String = "ioemu") {
    self.mac = mac
    self.bridge = bridge
    self.model = model
    self.type = type
  }

  /// Parses one vif specification.
  public static func parse(_ spec: String) throws(SpecError) -> NicSpec {
    var nic = NicSpec(mac: "")
    for part in spec.split(separator: ",") {
      let item = String(part.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
      if item.isEmpty || item == "trusted" || item == "untrusted" { continue }
      guard let equals = item.firstIndex(of: "=") else {
        throw SpecError("expected key=value, found \"\(item)\"")
      }
      let key = String(item[..<equals])
      let value = String(item[item.index(after: equals)...])
      switch key {
      case "mac":
        guard isMAC(value) else { throw SpecError("invalid mac \"\(value)\" (expected six hex bytes like 00:16:3e:12:34:56)") }
        nic.mac = value.lowercased()
      case "bridge":
        guard isInterfaceName(value) else { throw SpecError("invalid bridge name \"\(value)\" (a network interface name: 1 to 15 characters, no \"/\", \":\" or spaces)") }
        nic.bridge = value
      case "model": nic.model = value
      case "type":
        guard value == "ioemu" || value == "vif" else { throw SpecError("unknown vif type \"\(value)\" (expected ioemu or vif)") }
        nic.type = value
      case "devid":
        guard let devid = Int(value), devid >= 0, devid < 1 << 16 else { throw SpecError("invalid devid \"\(value)\" (a number from 0)") }
        nic.devid = devid
      case "script":
        guard !value.isEmpty else { throw SpecError("script= needs a script name or path") }
        nic.script = value
      case "vifname":
        guard isInterfaceName(value + "-emu") else { throw SpecError("invalid vifname \"\(value)\" (at most 11 characters, no \"/\", \":\" or spaces: the tap is named <vifname>-emu)") }
        nic.vifname = value
      case "ip": nic.ip = value
      case "gatewaydev": nic.gatewaydev = value
      case "mtu":
        guard let mtu = Int(value), (68...65535).contains(mtu) else { throw SpecError("invalid mtu \"\(value)\" (68 to 65535)") }
        nic.mtu = mtu
      case "vlan": nic.vlan = value
      case "rate": nic.rate = value
      default:
        guard backendOnlyKeys.contains(key) || key.hasPrefix("colo_") else { throw SpecError("unknown vif setting \"\(key)\"") }
      }
    }
    if nic.mac.isEmpty { nic.mac = randomMAC() }
    return nic
  }

  /// `nics` with a devid each: those given kept, the others the lowest free ones in order
  /// (free of `taken` too: a running domain's NICs). Two NICs with one devid are refused.
  public static func numbered(_ nics: [NicSpec], taken: Set<Int> = []) throws(SpecError) -> [NicSpec] {
    var used = taken
    for nic in nics {
      guard let devid = nic.devid else { continue }
      guard used.insert(devid).inserted else { throw SpecError("devid \(devid) is taken by another vif") }
    }
    var next = 0
    return nics.map { nic in
      guard nic.devid == nil else { return nic }
      while used.contains(next) { next += 1 }
      used.insert(next)
      var numbered = nic
      numbered.devid = next
      return numbered
    }
  }

  /// The vif with xl.conf's `vif.default.bridge`, `.script` and `.gatewaydev` for what it does
  /// not name itself, as xl's `set_default_nic_values`. The default script `vif-bridge` is
  /// what xl does natively anyway: it stays unnamed, so no script runs for it.
  public func withDefaults(_ global: GlobalConfig) -> NicSpec {
    var nic = self
    if nic.bridge == nil { nic.bridge = global.vifBridge }
    if nic.script == nil, let script = global.vifScript, script != "vif-bridge", script != "/etc/xen/scripts/vif-bridge" {
      nic.script = script
    }
    if nic.gatewaydev == nil { nic.gatewaydev = global.vifGatewayDevice }
    return nic
  }

  /// The spec written back, with everything a re-creation must keep (the MAC, the devid).
  public var canonical: String {
    var parts = ["mac=\(mac)"]
    if let devid { parts.append("devid=\(devid)") }
    if let bridge { parts.append("bridge=\(bridge)") }
    parts.append("model=\(model)")
    if type != "ioemu" { parts.append("type=\(type)") }
    for (key, value) in [("script", script), ("vifname", vifname), ("ip", ip), ("gatewaydev", gatewaydev),
                         ("mtu", mtu.map(String.init)), ("vlan", vlan), ("rate", rate)] {
      if let value { parts.append("\(key)=\(value)") }
    }
    return parts.joined(separator: ",")
  }

  static func isMAC(_ text: String) -> Bool {
    let bytes = text.split(separator: ":", omittingEmptySubsequences: false)
    return bytes.count == 6 && bytes.allSatisfy { $0.count == 2 && UInt8($0, radix: 16) != nil }
  }

  /// What Linux accepts as an interface name (IFNAMSIZ 16 with its NUL; no "/", ":" or space).
  static func isInterfaceName(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.count < 16 && name != "." && name != ".."
      && !name.contains { $0 == "/" || $0 == ":" || $0.isWhitespace }
  }

  /// libxl's: Xen's OUI, then three random bytes, the first below 0x80.
  static func randomMAC() -> String {
    var low = [UInt8](repeating: 0, count: 3)
    Random.fill(&low)
    low[0] &= 0x7f
    return (["00", "16", "3e"] + low.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }).joined(separator: ":")
  }
}
