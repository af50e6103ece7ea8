import Testing
@testable import XenLight

@Suite struct DeviceModelCommandTests {
  private let noXen = HostCapabilities(isXenControlDomain: false, hasKVM: true)
  private let noXenNoKVM = HostCapabilities(isXenControlDomain: false, hasKVM: false)
  private let dom0 = HostCapabilities(isXenControlDomain: true, hasKVM: false)

  private func domain(_ text: String) throws -> DomainConfiguration {
    try DomainConfiguration(try ConfigFile.parse(text, file: "g.cfg"), source: "g.cfg")
  }

  private let uuid = "6a9b8c7d-1234-4abc-8def-0123456789ab"

  @Test func autoPicksXenOnlyOnADom0() {
    #expect(DeviceModelTarget.resolve(.auto, host: dom0) == .xen)
    #expect(DeviceModelTarget.resolve(.auto, host: noXen) == .local)
    #expect(DeviceModelTarget.resolve(.xen, host: noXen) == .xen)
    #expect(DeviceModelTarget.resolve(.local, host: dom0) == .local)
  }

  @Test func xenHVMCommandLineIsLibxls() throws {
    let d = try domain("""
      name = "g"; type = "hvm"; memory = 256; vcpus = 2; maxvcpus = 4; vnc = 0; serial = "pty"
      vif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0' ]
      disk = [ '/img/g.qcow2,qcow2,hda,rw', ',hdc:cdrom,r', '/img/x,raw,xvdf,rw' ]
      device_model_args = [ "-d", "guest_errors" ]; device_model_args_hvm = [ "-S" ]
      device_model_target = "xen"
      """)
    let command = DeviceModelCommand.build(for: d, domid: 7, runDirectory: "/run/xen", host: noXen)
    #expect(command.target == .xen)
    #expect(command.executable == "/usr/bin/qemu-system-i386")
    #expect(command.qmpSocketPath == "/run/xen/qmp-libxl-7")
    #expect(command.eventSocketPath == "/run/xen/qmp-events-7")
    #expect(command.arguments == [
      "-xen-domid", "7",
      "-chardev", "socket,id=libxl-cmd,fd=3,server=on,wait=off", "-mon", "chardev=libxl-cmd,mode=control",
      "-chardev", "socket,id=xl-events,fd=4,server=on,wait=off", "-mon", "chardev=xl-events,mode=control",
      "-no-shutdown",
      "-name", "g",
      "-vnc", "none",
      "-display", "none",
      "-serial", "pty",
      "-nodefaults",
      "-device", "VGA,vgamem_mb=16",
      "-boot", "order=cda",
      "-smp", "2,maxcpus=4",
      "-device", "rtl8139,id=nic0,netdev=net0,mac=00:16:3e:00:00:01",
      "-netdev", "type=tap,id=net0,ifname=vif7.0-emu,script=no,downscript=no",
      "-d", "guest_errors",
      "-machine", "xenfv",
      "-S",
      "-m", "240",
      "-drive", "file=/img/g.qcow2,if=ide,index=0,media=disk,format=qcow2,cache=writeback",
      "-drive", "if=ide,index=2,readonly=on,media=cdrom,id=ide-2",
    ])
  }

  @Test func xenPVCommandLine() throws {
    let d = try domain("name = 'p'; memory = 64; device_model_args_pv = ['-x']; device_model_target = 'auto'")
    let command = DeviceModelCommand.build(for: d, domid: 3, runDirectory: "/r", host: dom0)
    #expect(command.argv == [
      "/usr/bin/qemu-system-i386", "-xen-domid", "3",
      "-chardev", "socket,id=libxl-cmd,fd=3,server=on,wait=off", "-mon", "chardev=libxl-cmd,mode=control",
      "-chardev", "socket,id=xl-events,fd=4,server=on,wait=off", "-mon", "chardev=xl-events,mode=control",
      "-no-shutdown",
      "-xen-attach", "-name", "p", "-vnc", "none", "-display", "none", "-nographic",
      "-machine", "xenpv", "-x", "-m", "64",
    ])
  }

  @Test func xenHVMWithoutNICsSaysNetNoneAndVNCDefaults() throws {
    let d = try domain("name = 'h'; type = 'hvm'; device_model_target = 'xen'; vga = 'cirrus'; boot = 'd'")
    let args = DeviceModelCommand.build(for: d, domid: 1, runDirectory: "/r", host: noXen).arguments
    #expect(args.contains(["-vnc", "127.0.0.1:0,to=99"]))
    #expect(args.contains(["-device", "cirrus-vga,vgamem_mb=8"]))
    #expect(args.contains(["-boot", "order=d"]))
    #expect(args.contains(["-net", "none"]))
    #expect(args.suffix(2) == ["-m", "120"])
    #expect(!args.contains("-smp"))
  }

  @Test func localHVMCommandLineUnderKVM() throws {
    let d = try domain("""
      name = "tiny"; type = "hvm"; uuid = "\(uuid)"; memory = 64; vnc = 0; nographic = 1
      vif = [ 'mac=00:16:3e:00:00:02,model=e1000' ]
      disk = [ '/img/a.raw,raw,hda,rw', '/iso/b.iso,raw,hdc:cdrom,r' ]
      device_model_args = [ "-bogus" ]; device_model_args_pv = [ "-unused" ]
      """)
    let command = DeviceModelCommand.build(for: d, domid: 2, runDirectory: "/tmp/run", host: noXen)
    #expect(command.target == .local)
    #expect(command.executable == "qemu-system-x86_64")
    #expect(command.arguments == [
      "-name", "tiny", "-uuid", uuid,
      "-machine", "pc,accel=kvm",
      "-m", "64", "-smp", "1",
      "-chardev", "socket,id=libxl-cmd,fd=3,server=on,wait=off", "-mon", "chardev=libxl-cmd,mode=control",
      "-chardev", "socket,id=xl-events,fd=4,server=on,wait=off", "-mon", "chardev=xl-events,mode=control",
      "-nodefaults", "-no-user-config", "-no-shutdown",
      "-action", "reboot=shutdown,panic=pause,watchdog=pause", "-device", "pvpanic",
      "-vnc", "none", "-display", "none",
      "-serial", "null",
      "-device", "VGA,vgamem_mb=16",
      "-boot", "order=cda",
      "-netdev", "user,id=net0",
      "-device", "e1000,id=nic0,netdev=net0,mac=00:16:3e:00:00:02",
      "-blockdev", "driver=raw,node-name=xl-hda,read-only=off,file.driver=file,file.filename=/img/a.raw",
      "-device", "ide-hd,id=hda,bus=ide.0,unit=0,drive=xl-hda",
      "-blockdev", "driver=raw,node-name=xl-hdc,read-only=on,file.driver=file,file.filename=/iso/b.iso",
      "-device", "ide-cd,id=hdc,bus=ide.1,unit=0,drive=xl-hdc",
      "-device", "virtio-balloon-pci,id=balloon0",
      "-bogus",
    ])
  }

  @Test func localFallsBackToTCGAndBootsPVKernels() throws {
    let d = try domain("""
      name = "k"; type = "pvh"; kernel = "/boot/vmlinuz"; ramdisk = "/boot/initrd"; extra = "console=ttyS0"
      vcpus = 2; maxvcpus = 3; disk = [ '/img/root,raw,xvda,rw' ]; vif = [ 'mac=00:16:3e:00:00:03' ]
      device_model_override = "/opt/qemu"; device_model_args_pv = [ "-pv" ]; device_model_args_hvm = [ "-hvm" ]
      """)
    let command = DeviceModelCommand.build(for: d, domid: 4, runDirectory: "/r", host: noXenNoKVM)
    #expect(command.executable == "/opt/qemu")
    #expect(command.arguments.contains(["-machine", "pc,accel=tcg"]))
    #expect(command.arguments.contains(["-smp", "2,maxcpus=3"]))
    #expect(command.arguments.contains(["-kernel", "/boot/vmlinuz", "-initrd", "/boot/initrd", "-append", "console=ttyS0"]))
    #expect(command.arguments.contains(["-device", "virtio-net-pci,id=nic0,netdev=net0,mac=00:16:3e:00:00:03"]))
    #expect(command.arguments.contains([
      "-blockdev", "driver=raw,node-name=xl-xvda,read-only=off,file.driver=file,file.filename=/img/root",
      "-device", "virtio-blk-pci,id=xvda,drive=xl-xvda",
    ]))
    #expect(!command.arguments.contains("-boot"))
    #expect(command.arguments.last == "-pv")
    #expect(!command.arguments.contains("-hvm"))
  }

  @Test func diskIndexFollowsVdevLetters() {
    #expect(DiskIndex.of("hda") == 0)
    #expect(DiskIndex.of("xvdc") == 2)
    #expect(DiskIndex.of("sdb") == 1)
    #expect(DiskIndex.of("xvdaa") == 26)
    #expect(DiskIndex.of("vda") == nil)
    #expect(DiskIndex.of("hd") == nil)
  }

  @Test func shellCommandQuotesOnlyWhatNeedsIt() {
    let command = DeviceModelCommand(
      target: .local, executable: "/usr/bin/qemu", arguments: ["-name", "my guest", "-append", "it's", "", "a=b,c:d"],
      qmpSocketPath: "/q", eventSocketPath: "/e")
    #expect(command.shellCommand == #"/usr/bin/qemu -name 'my guest' -append 'it'\''s' '' a=b,c:d"#)
  }
}
