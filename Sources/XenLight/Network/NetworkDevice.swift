import Spawn

/// The emulated NIC QEMU gives the guest for a vif, on the command line and by QMP.
enum NetworkDevice {
  /// The device's QEMU model: the vif's `model` for an HVM guest; virtio-net for PV and PVH
  /// guests, whose paravirtual NIC has no emulated model to name (their kernels drive virtio).
  static func model(_ nic: NicSpec, type: DomainType) -> String { type == .hvm ? nic.model : "virtio-net-pci" }

  /// `-device <model>,id=nic<devid>,netdev=net<devid>,mac=<mac>`, as libxl_dm.c builds it.
  static func qemuDevice(_ nic: NicSpec, devid: Int, type: DomainType) -> String {
    "\(model(nic, type: type)),id=nic\(devid),netdev=net\(devid),mac=\(nic.mac)"
  }

  /// The same device for QMP's `device_add`, without an option ROM (`romfile=""`): a NIC
  /// added to a running guest boots nothing, and a confined QEMU, chrooted into an empty
  /// directory, could not load one.
  static func qmpArguments(_ nic: NicSpec, devid: Int, type: DomainType) -> [(String, JSON)] {
    [
      ("driver", .string(model(nic, type: type))), ("id", .string("nic\(devid)")), ("netdev", .string("net\(devid)")),
      ("mac", .string(nic.mac)), ("romfile", .string("")),
    ]
  }
}
