/// One `vif = [ … ]` entry (xl-network-configuration): comma-separated `key=value` settings;
/// `''` means every default. Keys for Xen's network backends (script, ip, rate…) are accepted
/// and have nothing to do in a device model.
public struct NicSpec: Hashable, Sendable {
  /// `00:16:3e:xx:xx:xx` (Xen's OUI) with random low bytes when not given, as libxl does.
  public var mac: String
  public var bridge: String
  /// The emulated NIC QEMU provides (rtl8139 by default, e1000, virtio-net-pci…).
  public var model: String
  /// "ioemu" (emulated by the device model) or "vif" (paravirtual only).
  public var type: String

  static let backendKeys: Set<String> = [
    "ip", "script", "vifname", "backend", "rate", "gatewaydev", "devid", "mtu", "accel",
    "forwarddev", "trusted", "untrusted", "colo_forwarddev", "colo_sock_mirror_id",
  ]

  public init(mac: String, bridge: String = "xenbr0", model: String = "rtl8139", type: String = "ioemu") {
    self.mac = mac
    self.bridge = bridge
    self.model = model
    self.type = type
  }

  /// Parses one vif specification.
  public static func parse(_ spec: String) throws(SpecError) -> NicSpec {
    var nic = NicSpec(mac: "")
    for part in spec.split(separator: ",") {
      let item = part.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()
      if item.isEmpty { continue }
      guard let equals = item.firstIndex(of: "=") else {
        throw SpecError("expected key=value, found \"\(String(item))\"")
      }
      let key = String(item[..<equals])
      let value = String(item[item.index(after: equals)...])
      switch key {
      case "mac":
        guard isMAC(value) else { throw SpecError("invalid mac \"\(value)\" (expected six hex bytes like 00:16:3e:12:34:56)") }
        nic.mac = value.lowercased()
      case "bridge": nic.bridge = value
      case "model": nic.model = value
      case "type":
        guard value == "ioemu" || value == "vif" else { throw SpecError("unknown vif type \"\(value)\" (expected ioemu or vif)") }
        nic.type = value
      default:
        guard backendKeys.contains(key) else { throw SpecError("unknown vif setting \"\(key)\"") }
      }
    }
    if nic.mac.isEmpty { nic.mac = randomMAC() }
    return nic
  }

  static func isMAC(_ text: String) -> Bool {
    let bytes = text.split(separator: ":", omittingEmptySubsequences: false)
    return bytes.count == 6 && bytes.allSatisfy { $0.count == 2 && UInt8($0, radix: 16) != nil }
  }

  static func randomMAC() -> String {
    var low = [UInt8](repeating: 0, count: 3)
    Random.fill(&low)
    return (["00", "16", "3e"] + low.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }).joined(separator: ":")
  }
}
