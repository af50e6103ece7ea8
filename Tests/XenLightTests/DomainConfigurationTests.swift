import Testing
@testable import XenLight

@Suite struct DomainConfigurationTests {
  private func domain(_ text: String, _ overrides: [String] = []) throws -> DomainConfiguration {
    let file = try ConfigFile.parse(text, file: "g.cfg").applying(overrides: overrides)
    return try DomainConfiguration(file, source: "g.cfg")
  }

  /// The exact message building a domain from `text` fails with.
  private func failure(_ text: String, _ overrides: [String] = []) -> String? {
    do {
      _ = try domain(text, overrides)
      return nil
    } catch {
      return "\(error)"
    }
  }

  @Test func xenHVMExample() throws {
    let file = try ConfigFile.read(contentsOf: Examples.path("xen/xlexample.hvm"))
    let d = try DomainConfiguration(file, source: "xlexample.hvm")
    #expect(d.name == "example.hvm")
    #expect(d.type == .hvm)
    #expect(d.memoryMiB == 128 && d.maxMemoryMiB == 128)
    #expect(d.vcpus == 2 && d.maxVcpus == 2)
    #expect(d.disks == [DiskSpec(target: "/dev/vg/guest-volume", format: "raw", vdev: "xvda")])
    #expect(d.nics.count == 1 && d.nics[0].model == "rtl8139" && d.nics[0].bridge == nil && d.nics[0].devid == 0)
    #expect(d.nics[0].mac.hasPrefix("00:16:3e:"))
    #expect(d.display.sdl && d.display.vnc)
    #expect(d.warnings.isEmpty)
  }

  @Test func xenPVExamples() throws {
    let pv = try DomainConfiguration(
      try ConfigFile.read(contentsOf: Examples.path("xen/xlexample.pvlinux")), source: "pvlinux")
    #expect(pv.type == .pv)
    #expect(pv.kernel == "/boot/vmlinuz")
    #expect(pv.cmdline == "root=/dev/xvda1")
    #expect(!pv.display.vnc)
    #expect(pv.nics.map(\.type) == ["vif"])
    let pvh = try DomainConfiguration(
      try ConfigFile.read(contentsOf: Examples.path("xen/xlexample.pvhlinux")), source: "pvhlinux")
    #expect(pvh.type == .pvh && pvh.memoryMiB == 512 && pvh.vcpus == 4)
  }

  @Test func defaults() throws {
    let d = try domain("name = 'g'")
    #expect(d.type == .pv)
    #expect(d.memoryMiB == 128 && d.vcpus == 1)
    #expect(d.onPoweroff == .destroy && d.onReboot == .restart && d.onCrash == .destroy)
    #expect(d.deviceModel == DeviceModelSettings())
    #expect(d.deviceModel.startTimeoutSeconds == 60)
    #expect(try domain("name = 'g'").uuid != d.uuid)
  }

  @Test func everySupportedKey() throws {
    let d = try domain("""
      name = "full"; type = "hvm"; uuid = "6A9B8C7D-1234-4abc-8def-0123456789AB"
      memory = 256; maxmem = 0x200; vcpus = 2; maxvcpus = 4
      on_poweroff = "preserve"; on_reboot = "rename-restart"; on_crash = "coredump-destroy"
      kernel = "/k"; ramdisk = "/r"; root = "/dev/xvda1"; extra = "quiet"
      disk = [ 'format=qcow2, vdev=hda, access=ro, target=/img,with,commas', ',hdc:cdrom,r' ]
      vif = [ 'mac=00:16:3E:AA:bb:01, bridge=br1, model=e1000', 'type=vif' ]
      serial = "pty"
      vnc = 1; vnclisten = "0.0.0.0"; vncdisplay = 3; vncunused = 0; sdl = 0; nographic = 1
      keymap = "de"; vga = "stdvga"; boot = "dc"
      device_model_version = "qemu-xen"; device_model_override = "/usr/bin/qemu-system-x86_64"
      device_model_args = [ "-a", 1 ]; device_model_args_hvm = [ "-h" ]; device_model_args_pv = [ "-p" ]
      device_model_target = "local"; device_model_start_timeout = 5
      """)
    #expect(d.uuid.description == "6a9b8c7d-1234-4abc-8def-0123456789ab")
    #expect(d.memoryMiB == 256 && d.maxMemoryMiB == 512 && d.vcpus == 2 && d.maxVcpus == 4)
    #expect(d.onPoweroff == .preserve && d.onReboot == .renameRestart && d.onCrash == .coredumpDestroy)
    #expect(d.kernel == "/k" && d.ramdisk == "/r" && d.cmdline == "root=/dev/xvda1 quiet")
    #expect(d.disks == [
      DiskSpec(target: "/img,with,commas", format: "qcow2", vdev: "hda", readOnly: true),
      DiskSpec(target: "", format: "raw", vdev: "hdc", readOnly: true, isCDROM: true),
    ])
    var first = NicSpec(mac: "00:16:3e:aa:bb:01", bridge: "br1", model: "e1000")
    first.devid = 0
    var second = NicSpec(mac: d.nics[1].mac, type: "vif")
    second.devid = 1
    #expect(d.nics == [first, second])
    #expect(d.serial == ["pty"])
    #expect(d.display == DisplaySettings(
      vnc: true, vncListen: "0.0.0.0", vncDisplay: 3, vncUnused: false, vncPassword: nil, sdl: false,
      nographic: true, keymap: "de", vga: "stdvga"))
    #expect(d.boot == "dc")
    #expect(d.deviceModel.override == "/usr/bin/qemu-system-x86_64")
    #expect(d.deviceModel.args == ["-a", "1"] && d.deviceModel.argsHVM == ["-h"] && d.deviceModel.argsPV == ["-p"])
    #expect(d.deviceModel.target == .local && d.deviceModel.startTimeoutSeconds == 5)
    #expect(d.warnings.isEmpty)
  }

  @Test func builderStillWorks() throws {
    #expect(try domain("name='g'\nbuilder='hvm'").type == .hvm)
    #expect(try domain("name='g'\nbuilder='generic'").type == .pv)
    #expect(try domain("name='g'\ntype='hvm'\nbuilder='hvm'").type == .hvm)
  }

  @Test func cmdlineBeatsRootAndExtra() throws {
    #expect(try domain("name='g'\nextra='a'\ncmdline='b'").cmdline == "b")
    #expect(try domain("name='g'\nextra='a b'").cmdline == "a b")
  }

  @Test func quotedNumbersAndSingleSerial() throws {
    let d = try domain("name='g'\nmemory='0x100'\nserial=['pty', 'file:/tmp/s']")
    #expect(d.memoryMiB == 256)
    #expect(d.serial == ["pty", "file:/tmp/s"])
  }

  @Test func overridesWin() throws {
    let d = try domain("name='g'\nmemory=128\ntype='hvm'", ["memory=512", "name=\"h\"", "device_model_args+=['-S']"])
    #expect(d.memoryMiB == 512 && d.name == "h" && d.deviceModel.args == ["-S"])
  }

  @Test func warningsForUnknownAndHypervisorOnlyKeys() throws {
    let d = try domain("name='g'\nacpi=1\nfrobnicate='yes'\ndevice_model='qemu-dm'\ndevice_model_override='/q'")
    #expect(d.unknownSettings.map(\.key) == ["frobnicate"])
    #expect(d.warnings.map(\.description) == [
      "g.cfg:2:1: warning: \"acpi\" needs the Xen hypervisor or its backends; ignored",
      "g.cfg:3:1: warning: unknown setting \"frobnicate\"; kept, not used",
      "g.cfg:4:1: warning: ignoring device_model directive; use \"device_model_override\" instead if you really want a non-default device model",
      "g.cfg:5:1: warning: device model override given without specific DM version",
    ])
  }

  // MARK: every validation error, with its exact message

  @Test func nameIsMandatoryAndSane() {
    #expect(failure("memory = 1") == "g.cfg: name: a domain name must be specified (name = \"…\")")
    #expect(failure("name = ''") == "g.cfg:1:1: name: the domain name must not be empty")
    #expect(failure("name = 42") == "g.cfg:1:1: name: \"42\" is all digits, which xl would read as a domain id")
    #expect(failure("name = 'a\\nb'") == "g.cfg:1:1: name: the domain name must not contain control characters")
    #expect(failure("name = ['a']") == "g.cfg:1:1: name: expected a string, found a list")
  }

  @Test func typeErrors() {
    #expect(failure("name='g'\ntype='xen'") == "g.cfg:2:1: type: invalid domain type \"xen\" (expected hvm, pv or pvh)")
    #expect(failure("name='g'\nbuilder='linux'") == "g.cfg:2:1: builder: invalid builder \"linux\" (expected hvm or generic; builder is deprecated, use type)")
    #expect(failure("name='g'\ntype='pvh'\nbuilder='hvm'") == "g.cfg:3:1: builder: builder \"hvm\" contradicts type \"pvh\" (set at g.cfg:2:1); builder is deprecated, use type alone")
  }

  @Test func sizeAndCountErrors() {
    #expect(failure("name='g'\nmemory=0") == "g.cfg:2:1: memory: 0 MiB is out of range (1…16777216 MiB)")
    #expect(failure("name='g'\nmemory='lots'") == "g.cfg:2:1: memory: expected a number, found the string \"lots\"")
    #expect(failure("name='g'\nmemory=[1]") == "g.cfg:2:1: memory: expected a number, found a list")
    #expect(failure("name='g'\nmemory=256\nmaxmem=128") == "g.cfg:3:1: maxmem: maxmem (128 MiB) must be at least memory (256 MiB)")
    #expect(failure("name='g'\nvcpus=0") == "g.cfg:2:1: vcpus: 0 is out of range (1…4096)")
    #expect(failure("name='g'\nvcpus=4\nmaxvcpus=2") == "g.cfg:3:1: maxvcpus: maxvcpus (2) must be at least vcpus (4)")
  }

  @Test func otherValueErrors() {
    #expect(failure("name='g'\nuuid='1234'") == "g.cfg:2:1: uuid: \"1234\" is not a UUID (expected XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX in hex)")
    #expect(failure("name='g'\nuuid='6a9b8c7d-1234-4abc-8def-0123456789ag'") == "g.cfg:2:1: uuid: \"6a9b8c7d-1234-4abc-8def-0123456789ag\" is not a UUID (expected XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX in hex)")
    #expect(failure("name='g'\non_crash='reboot'") == "g.cfg:2:1: on_crash: invalid action \"reboot\" (expected one of destroy, restart, preserve, rename-restart, coredump-destroy, coredump-restart, soft-reset)")
    #expect(failure("name='g'\nvnc='yes'") == "g.cfg:2:1: vnc: expected a boolean (0 or 1), found a string \"yes\"")
    #expect(failure("name='g'\nvga='svga'") == "g.cfg:2:1: vga: unknown vga \"svga\" (expected stdvga, cirrus, none or qxl)")
    #expect(failure("name='g'\nboot='cx'") == "g.cfg:2:1: boot: invalid boot order \"cx\" (letters a floppy, c disk, d CD-ROM, n network)")
    #expect(failure("name='g'\nvncdisplay=70000") == "g.cfg:2:1: vncdisplay: 70000 is out of range (0…59635)")
  }

  @Test func deviceModelErrors() {
    #expect(failure("name='g'\ndevice_model_version='qemu-xen-traditional'") == "g.cfg:2:1: Unknown device_model_version \"qemu-xen-traditional\" specified")
    #expect(failure("name='g'\ndevice_model_version='kvmtool'") == "g.cfg:2:1: Unknown device_model_version \"kvmtool\" specified")
    #expect(failure("name='g'\ndevice_model_override=''") == "g.cfg:2:1: device_model_override: the path must not be empty")
    #expect(failure("name='g'\ndevice_model_args='-S'") == "g.cfg:2:1: device_model_args: expected a list of strings, found a string")
    #expect(failure("name='g'\ndevice_model_args=[['-S']]") == "g.cfg:2:1: device_model_args: item 1 is a list, but the items must be strings")
    #expect(failure("name='g'\ndevice_model_target='cloud'") == "g.cfg:2:1: device_model_target: invalid target \"cloud\" (expected xen, local or auto)")
    #expect(failure("name='g'\ndevice_model_start_timeout=0") == "g.cfg:2:1: device_model_start_timeout: 0 s is out of range (1…3600 s)")
  }

  @Test func diskErrors() {
    func disk(_ spec: String) -> String? { failure("name='g'\ndisk=['\(spec)']") }
    #expect(disk("/img,raw") == "g.cfg:2:1: disk: item 1 \"/img,raw\": no virtual device (vdev) given, e.g. xvda")
    #expect(disk("/img,vmdk,xvda") == "g.cfg:2:1: disk: item 1 \"/img,vmdk,xvda\": unknown disk format \"vmdk\" (expected raw, qcow, qcow2, vhd, qed)")
    #expect(disk("/img,raw,xvda,rx") == "g.cfg:2:1: disk: item 1 \"/img,raw,xvda,rx\": unknown access \"rx\" (expected r, ro, w or rw)")
    #expect(disk("/img,raw,xvda,rw,extra") == "g.cfg:2:1: disk: item 1 \"/img,raw,xvda,rw,extra\": too many positional parameters at \"extra\"")
    #expect(disk("vdev=xvda,colour=red") == "g.cfg:2:1: disk: item 1 \"vdev=xvda,colour=red\": unknown disk setting \"colour\"")
    #expect(disk(",raw,xvda") == "g.cfg:2:1: disk: item 1 \",raw,xvda\": no target (image file or device) given; only a CD-ROM may be empty")
    #expect(disk("/iso,raw,hdc:floppy") == "g.cfg:2:1: disk: item 1 \"/iso,raw,hdc:floppy\": unknown device type \"floppy\" (expected cdrom or disk)")
    #expect(disk("/iso,raw,hdc:cdrom,w") == "g.cfg:2:1: disk: item 1 \"/iso,raw,hdc:cdrom,w\": a CD-ROM drive cannot be writable")
    #expect(failure("name='g'\ndisk='/img,raw,xvda'") == "g.cfg:2:1: disk: expected a list of strings, found a string")
  }

  @Test func vifErrors() {
    func vif(_ spec: String) -> String? { failure("name='g'\nvif=['\(spec)']") }
    #expect(vif("bridge") == "g.cfg:2:1: vif: item 1 \"bridge\": expected key=value, found \"bridge\"")
    #expect(vif("mac=00:16:3e:1") == "g.cfg:2:1: vif: item 1 \"mac=00:16:3e:1\": invalid mac \"00:16:3e:1\" (expected six hex bytes like 00:16:3e:12:34:56)")
    #expect(vif("type=netfront") == "g.cfg:2:1: vif: item 1 \"type=netfront\": unknown vif type \"netfront\" (expected ioemu or vif)")
    #expect(vif("speed=10") == "g.cfg:2:1: vif: item 1 \"speed=10\": unknown vif setting \"speed\"")
  }

  @Test func xmDiskAndVifFormsParse() throws {
    #expect(try DiskSpec.parse("file:/var/images/min-el3-i386.img,hda,w")
      == DiskSpec(target: "/var/images/min-el3-i386.img", vdev: "hda"))
    #expect(try DiskSpec.parse("phy:/dev/vg/lv,xvda,r") == DiskSpec(target: "/dev/vg/lv", vdev: "xvda", readOnly: true))
    #expect(try DiskSpec.parse("tap:qcow2:/i.qcow2,xvdb,w") == DiskSpec(target: "/i.qcow2", format: "qcow2", vdev: "xvdb"))
    #expect(try DiskSpec.parse("/iso,raw,hdc:cdrom,r") == DiskSpec(target: "/iso", vdev: "hdc", readOnly: true, isCDROM: true))
    #expect(try DiskSpec.parse("/iso,raw,hdc,devtype=cdrom") == DiskSpec(target: "/iso", vdev: "hdc", readOnly: true, isCDROM: true))
    #expect(try DiskSpec.parse(" /a , qed , xvdc ").canonical == "format=qed, vdev=xvdc, access=rw, target=/a")
    let nic = try NicSpec.parse("type=ioemu, bridge=xenbr0, script=vif-bridge")
    #expect(nic.bridge == "xenbr0" && nic.type == "ioemu" && nic.model == "rtl8139")
  }

  @Test func uuidRoundTripsAndIsVersion4() throws {
    let u = DomainUUID.random()
    #expect(DomainUUID(u.description) == u)
    #expect(Array(u.description)[14] == "4")
    #expect(DomainUUID("00000000-0000-0000-0000-00000000000") == nil)
  }
}
