/// The upstream qemu-xen command line libxl builds for a Xen host
/// (`libxl__build_device_model_args_new` in Xen 4.17's libxl_dm.c), in libxl's order:
/// domain and monitor first, then display, console, VGA, boot, CPUs, NICs, the user's
/// `device_model_args`, the machine (with `device_model_args_hvm`/`_pv` after it), memory
/// and disks. Without Xen, QEMU stops at `-xen-domid`/`-machine xenfv` with its own message.
enum XenCommandLine {
  /// Debian's QEMU_XEN_PATH: a wrapper that sends `-xen-*` command lines to
  /// /usr/libexec/xen-qemu-system-i386.
  static let defaultExecutable = "/usr/bin/qemu-system-i386"

  static func arguments(for d: DomainConfiguration, domid: UInt32) -> [String] {
    var args = ["-xen-domid", "\(domid)"]
    args += DeviceModelCommand.monitorArguments
    args.append("-no-shutdown")
    if d.type != .hvm { args.append("-xen-attach") }
    args += ["-name", d.name]
    args += DisplayArguments.vnc(d.display)
    args += ["-display", "none"]
    if d.display.sdl { args += ["-display", "sdl"] }
    if let keymap = d.display.keymap { args += ["-k", keymap] }

    if d.type == .hvm {
      for port in d.serial { args += ["-serial", port] }
      if d.display.nographic && !d.display.sdl && !d.display.vnc { args.append("-nographic") }
      args.append("-nodefaults")
      args += DisplayArguments.vga(d.display.vga)
      args += ["-boot", "order=\(d.boot ?? "cda")"]
      args += d.hardware.usbAndSoundArguments
      if d.maxVcpus > 1 { args += ["-smp", "\(d.vcpus),maxcpus=\(d.maxVcpus)"] }
      let emulated = d.nics.enumerated().filter { $0.element.type == "ioemu" }
      for (devid, nic) in emulated {
        args += ["-device", "\(nic.model),id=nic\(devid),netdev=net\(devid),mac=\(nic.mac)"]
        args += ["-netdev", "type=tap,id=net\(devid),ifname=vif\(domid).\(devid)-emu,script=no,downscript=no"]
      }
      if emulated.isEmpty { args += ["-net", "none"] }
    } else if !d.display.sdl && !d.display.vnc {
      args.append("-nographic")
    }

    args += d.deviceModel.args
    args.append("-machine")
    if d.type == .hvm {
      args.append("xenfv")
      args += d.deviceModel.argsHVM
    } else {
      args.append("xenpv")
      args += d.deviceModel.argsPV
    }
    args += ["-m", "\(d.maxMemoryMiB - DisplayArguments.videoMiB(d))"]

    if d.type == .hvm {
      for disk in d.disks {
        guard let index = DiskIndex.of(disk.vdev), index < 4 else { continue }  // QEMU has 4 IDE slots
        if disk.isCDROM {
          var drive = "if=ide,index=\(index),readonly=on,media=cdrom,id=ide-\(index)"
          if !disk.target.isEmpty { drive += ",file=\(disk.target),format=\(disk.qemuFormat)" }
          args += ["-drive", drive]
        } else {
          args += [
            "-drive",
            "file=\(disk.target),if=ide,index=\(index),media=disk,format=\(disk.qemuFormat),cache=writeback"
              + (disk.readOnly ? ",readonly=on" : ""),
          ]
        }
      }
    }
    return args
  }
}

/// Display pieces both command lines share.
enum DisplayArguments {
  /// `-vnc listen:display[,password=on][,to=99]` (vncunused lets QEMU take the next free
  /// display; `to` must come last, as libxl has it), or `-vnc none`. With `password=on` QEMU
  /// refuses every client until the password is set over QMP (`set_password`, once it runs).
  static func vnc(_ display: DisplaySettings) -> [String] {
    guard display.vnc else { return ["-vnc", "none"] }
    var listen = display.vncListen
    if !listen.contains(":") { listen += ":\(display.vncDisplay ?? 0)" }
    if display.vncPassword != nil { listen += ",password=on" }
    if display.vncUnused { listen += ",to=99" }
    return ["-vnc", listen]
  }

  /// The VGA device for `vga` (libxl's default for qemu-xen is stdvga).
  static func vga(_ vga: String?) -> [String] {
    switch vga ?? "stdvga" {
    case "none": ["-vga", "none"]
    case "cirrus": ["-device", "cirrus-vga,vgamem_mb=8"]
    case "qxl": ["-device", "qxl-vga,vram_size_mb=64,ram_size_mb=64"]
    default: ["-device", "VGA,vgamem_mb=16"]
    }
  }

  /// Video memory libxl takes out of the guest's RAM for the emulated VGA.
  static func videoMiB(_ d: DomainConfiguration) -> Int {
    guard d.type == .hvm else { return 0 }
    let video: Int
    switch d.display.vga ?? "stdvga" {
    case "none": video = 0
    case "cirrus": video = 8
    case "qxl": video = 128
    default: video = 16
    }
    return video < d.maxMemoryMiB ? video : 0
  }
}
