#if canImport(Glibc)
import Glibc
#endif

/// The QEMU command line for a host without Xen: QEMU runs the guest itself, under KVM when
/// `/dev/kvm` works and TCG otherwise, with the same display, console, boot, NIC (a tap xl
/// passes when the vif names a bridge or script, else user-mode networking) and disk
/// settings, a QMP monitor for confirmation and control, and the user's `device_model_args`
/// (then `_hvm` or `_pv`) last.
///
/// PV and PVH guests with a `kernel` boot it directly (`-kernel`, `-initrd`, `-append`);
/// QEMU's PVH loader reads the same ELF note Xen does.
enum LocalCommandLine {
  static let defaultExecutable = "qemu-system-x86_64"

  /// With `passing` (a restricted device model), the files QEMU would open by path — disks
  /// and the console log — are opened by xl instead and passed: `-add-fd` and `/dev/fdset/N`.
  /// A NIC with a bridge or script gets a tap that xl opens and passes (`taps`); one without, QEMU's
  /// user-mode network.
  static func arguments(
    for d: DomainConfiguration, domid: UInt32, accelerator: Accelerator, consoleLog: String?,
    passing: Bool = false, passed: inout [DeviceModelCommand.PassedFile], taps: inout [DeviceModelCommand.PassedTap]
  ) -> [String] {
    var fdsets: [String] = []
    // QEMU takes from a set the descriptor whose access mode it asks for, and its block
    // layer asks for O_RDONLY as well as O_RDWR: a writable disk's set holds one of each.
    // The set's id is the next descriptor's number (a disk's block node is named after it).
    var nextSet: Int32? { passing ? DeviceModelCommand.firstPassedDescriptor + Int32(passed.count + taps.count) : nil }
    func pass(_ path: String, _ flags: Int32, _ what: String) -> String {
      guard let set = nextSet else { return path }
      for mode in flags & O_ACCMODE == O_RDWR ? [flags, O_RDONLY] : [flags] {
        let fd = DeviceModelCommand.firstPassedDescriptor + Int32(passed.count + taps.count)
        passed.append(DeviceModelCommand.PassedFile(descriptor: fd, path: path, flags: mode, what: what))
        fdsets += ["-add-fd", "fd=\(fd),set=\(set)"]
      }
      return "/dev/fdset/\(set)"
    }
    var args = ["-name", d.name, "-uuid", d.uuid.description]
    args += ["-machine", "pc,accel=\(accelerator.rawValue)"]
    // Room for maxmem; the balloon holds the guest to `memory` (set over QMP at start).
    args += ["-m", "\(d.maxMemoryMiB)"]
    args += ["-smp", d.maxVcpus > d.vcpus ? "\(d.vcpus),maxcpus=\(d.maxVcpus)" : "\(d.vcpus)"]
    args += DeviceModelCommand.monitorArguments
    args += ["-nodefaults", "-no-user-config", "-no-shutdown"]
    // A guest's reboot, panic and watchdog stop QEMU and reach the domain monitor as events,
    // which applies on_reboot / on_crash / on_watchdog (the guest panics into pvpanic).
    args += ["-action", "reboot=shutdown,panic=pause,watchdog=pause"]
    args += ["-device", "pvpanic"]
    args += DisplayArguments.vnc(d.display)
    args += ["-display", d.display.sdl ? "sdl" : "none"]
    if let keymap = d.display.keymap { args += ["-k", keymap] }
    for (index, port) in d.serial.enumerated() {
      if port == "pty" {
        // As xenconsoled with --log=guest: every byte the guest writes, kept.
        var chardev = "pty,id=serial\(index)"
        if index == 0, let consoleLog {
          chardev += ",logfile=\(pass(consoleLog, O_WRONLY | O_APPEND | O_CREAT, "console log")),logappend=on"
        }
        args += ["-chardev", chardev, "-serial", "chardev:serial\(index)"]
      } else {
        args += ["-serial", port]
      }
    }
    if d.display.nographic && !d.display.sdl && !d.display.vnc && d.serial.isEmpty {
      // -nographic would put a serial port and monitor on stdio, which is the log file here.
      args += ["-serial", "null"]
    }

    if d.type == .hvm {
      args += DisplayArguments.vga(d.display.vga)
      args += ["-boot", "order=\(d.boot ?? "cda")"]
      args += d.hardware.usbAndSoundArguments
      args += d.hardware.localArguments()
    }
    if let kernel = d.kernel, d.type != .hvm {
      args += ["-kernel", kernel]
      if let ramdisk = d.ramdisk { args += ["-initrd", ramdisk] }
      if let cmdline = d.cmdline { args += ["-append", cmdline] }
    }

    for (index, nic) in d.nics.enumerated() {
      let devid = nic.devid ?? index
      if nic.usesTap {
        let fd = DeviceModelCommand.firstPassedDescriptor + Int32(passed.count + taps.count)
        taps.append(DeviceModelCommand.PassedTap(
          descriptor: fd, devid: devid, nic: nic, name: TapDevice.name(domid: domid, devid: devid, nic: nic)))
        args += ["-netdev", "tap,id=net\(devid),fd=\(fd)"]
      } else {
        args += ["-netdev", "user,id=net\(devid)"]
      }
      args += ["-device", NetworkDevice.qemuDevice(nic, devid: devid, type: d.type)]
    }

    for disk in d.disks {
      // Each disk a block node and a device with the vdev as id, so that it can be removed,
      // and a CD's medium changed, while the guest runs (`DiskControl`).
      let id = VirtualDisk.deviceID(disk.vdev)
      var device: [String]
      let ideIndex = d.type == .hvm ? DiskIndex.of(disk.vdev).flatMap { $0 < 4 ? $0 : nil } : nil
      if disk.isCDROM || ideIndex != nil {
        device = [disk.isCDROM ? "ide-cd" : "ide-hd", "id=\(id)"]
        if let ideIndex { device += ["bus=ide.\(ideIndex / 2)", "unit=\(ideIndex % 2)"] }
      } else {
        device = ["virtio-blk-pci", "id=\(id)"]
      }
      if !disk.target.isEmpty {
        let node = VirtualDisk.nodeName(disk.vdev, set: nextSet.map { Int($0) })
        let file = pass(disk.target, disk.readOnly ? O_RDONLY : O_RDWR, "disk \(disk.vdev)")
        args += ["-blockdev", VirtualDisk.blockdevOption(node: node, disk: disk, file: file)]
        device.append("drive=\(node)")
      }
      args += ["-device", device.joined(separator: ",")]
    }
    // Always a balloon, as Xen guests always have one: xl mem-set works on every guest.
    args += ["-device", "virtio-balloon-pci,id=balloon0"]

    args += fdsets
    args += d.deviceModel.args
    args += d.type == .hvm ? d.deviceModel.argsHVM : d.deviceModel.argsPV
    return args
  }
}
