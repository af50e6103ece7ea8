#if canImport(Glibc)
import Glibc
#endif
import CNetwork

/// A bridged NIC's tap device: named as libxl names it, opened by xl on /dev/net/tun and
/// passed to the device model, so that a confined QEMU never needs to create one. It is not
/// persistent: it goes when the last descriptor on it closes, which is when QEMU ends.
enum TapDevice {
  /// libxl's name for an emulated NIC's tap (`NETBACK_NIC_NAME TAP_DEVICE_SUFFIX`).
  static func libxlName(domid: UInt32, devid: Int) -> String { "vif\(domid).\(devid)-emu" }

  /// Its name once connected: `<vifname>-emu`, else libxl's.
  static func connectedName(domid: UInt32, devid: Int, nic: NicSpec) -> String {
    nic.vifname.map { $0 + "-emu" } ?? libxlName(domid: domid, devid: devid)
  }

  /// The name xl creates it with: libxl's when a script connects it (Xen's scripts find the
  /// NIC's records from that name, and rename the tap to `<vifname>-emu` themselves), else
  /// the name it keeps.
  static func name(domid: UInt32, devid: Int, nic: NicSpec) -> String {
    nic.script == nil ? connectedName(domid: domid, devid: devid, nic: nic) : libxlName(domid: domid, devid: devid)
  }

  /// Creates tap `name` and returns a descriptor on it (close-on-exec). A name some
  /// interface already has is refused rather than shared.
  static func open(_ name: String, what: String) throws(XenLightError) -> Int32 {
    if if_nametoindex(name) != 0 {
      throw XenLightError(.invalidConfig, "\(what): a network interface named \(name) already exists")
    }
    let fd = cnet_tap_open(name)
    guard fd >= 0 else {
      throw XenLightError(.io, "\(what): cannot create tap device \(name): \(FileIO.describe(errno: -fd))", errno: -fd)
    }
    return fd
  }

  static func exists(_ name: String) -> Bool { if_nametoindex(name) != 0 }
}
