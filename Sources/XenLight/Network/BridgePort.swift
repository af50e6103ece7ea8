#if canImport(Glibc)
import Glibc
#endif
import CNetwork

/// What Xen's `vif-bridge add` does for an emulated NIC's tap, done by xl itself with a few
/// ioctls (no script, no `ip` processes): the tap gets the bridge-port MAC fe:ff:ff:ff:ff:ff
/// (so the bridge never takes it for its own address), the NIC's `mtu` or else the bridge's,
/// is set up and becomes a port of the bridge.
enum BridgePort {
  /// Xen's address for a virtual bridge port: the largest that is not broadcast.
  static let portAddress: [UInt8] = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]

  static func attach(_ tap: String, to bridge: String, mtu: Int?, what: String) throws(XenLightError) {
    try check(bridge, what: what)
    func step(_ rc: Int32, _ doing: String) throws(XenLightError) {
      guard rc < 0 else { return }
      throw XenLightError(.io, "\(what): cannot \(doing): \(FileIO.describe(errno: -rc))", errno: -rc)
    }
    let bridgeMTU = cnet_link_mtu(bridge)
    try step(bridgeMTU, "read the MTU of bridge \(bridge)")
    try step(portAddress.withUnsafeBufferPointer { cnet_link_set_address(tap, $0.baseAddress) }, "set the address of \(tap)")
    try step(cnet_link_set_mtu(tap, Int32(mtu ?? Int(bridgeMTU))), "set the MTU of \(tap)")
    try step(cnet_bridge_add_port(bridge, tap), "add \(tap) to bridge \(bridge)")
    try step(cnet_link_set_up(tap), "set \(tap) up")
  }

  /// A bridge named `bridge` exists (`/sys/class/net/<bridge>/bridge`), or the error naming it.
  static func check(_ bridge: String, what: String) throws(XenLightError) {
    var info = stat()
    guard stat("/sys/class/net/\(bridge)/bridge", &info) != 0 else { return }
    if TapDevice.exists(bridge) {
      throw XenLightError(.invalidConfig, "\(what): \(bridge) is a network interface but not a bridge")
    }
    throw XenLightError(
      .invalidConfig, "\(what): bridge \(bridge) does not exist (create it first, e.g. ip link add \(bridge) type bridge)")
  }
}
