import Testing
@testable import XenLight

/// Bridged vifs on the device model's command line and in xenstore, and the keys that must
/// mean what they say (vncpasswd, vhd, vlan, usb, soundhw, the clock, the firmware), each as
/// libxl builds it.
@Suite struct NetworkAndKeysTests {
  private let noXen = HostCapabilities(isXenControlDomain: false, hasKVM: false)

  private func domain(_ text: String) throws -> DomainConfiguration {
    try DomainConfiguration(try ConfigFile.parse(text, file: "g.cfg"), source: "g.cfg")
  }

  private func refusal(_ text: String) -> String? {
    do { _ = try domain(text); return nil } catch { return "\(error)" }
  }

  @Test func bridgedNICsGetPassedTapsUserModeOthers() throws {
    let d = try domain("""
      name = "n"; type = "hvm"; vnc = 0
      vif = [ 'bridge=br0,mac=00:16:3e:00:00:01,model=e1000', 'mac=00:16:3e:00:00:02', 'bridge=br1,script=vif-bridge,vifname=web,devid=5,mac=00:16:3e:00:00:03' ]
      disk = [ '/img/a.raw,raw,hda,rw' ]
      device_model_user = "qemu-n"
      """)
    let user = DeviceModelUser(name: "qemu-n", uid: 5000, gid: 5000, groups: [5000], reaperUID: 5000)
    let command = DeviceModelCommand.build(for: d, domid: 3, runDirectory: "/r", host: noXen, user: user)
    #expect(command.arguments.contains(["-netdev", "tap,id=net0,fd=5", "-device", "e1000,id=nic0,netdev=net0,mac=00:16:3e:00:00:01"]))
    #expect(command.arguments.contains(["-netdev", "user,id=net1", "-device", "rtl8139,id=nic1,netdev=net1,mac=00:16:3e:00:00:02"]))
    #expect(command.arguments.contains(["-netdev", "tap,id=net5,fd=6", "-device", "rtl8139,id=nic5,netdev=net5,mac=00:16:3e:00:00:03"]))
    #expect(command.taps.map(\.descriptor) == [5, 6])
    // Natively connected: the name it keeps; by a script: libxl's, which the script renames.
    #expect(command.taps.map(\.name) == ["vif3.0-emu", "vif3.5-emu"])
    // The disk's descriptors come after the taps'.
    #expect(command.passedFiles.map(\.descriptor) == [7, 8])
    #expect(command.arguments.contains(["-blockdev", "driver=raw,node-name=xl-hda-7,read-only=off,file.driver=file,file.filename=/dev/fdset/7"]))
  }

  @Test func devidsAreGivenAndMACsRandomAsLibxl() throws {
    let d = try domain("name = 'n'; vif = [ 'devid=1', '', '' ]")
    #expect(d.nics.map(\.devid) == [1, 0, 2])
    #expect(refusal("name = 'n'; vif = [ 'devid=1', 'devid=1' ]") == "g.cfg:1:13: vif: devid 1 is taken by another vif")
    for _ in 0..<50 {
      let mac = NicSpec.randomMAC()
      #expect(mac.hasPrefix("00:16:3e:") && NicSpec.isMAC(mac))
      #expect(UInt8(mac.split(separator: ":")[3], radix: 16)! < 0x80)
    }
    let nic = try NicSpec.parse("bridge=br0, mac=00:16:3E:AB:CD:EF, vlan=10, ip=10.0.0.2, vifname=web, script=vif-route, mtu=9000, devid=4, model=e1000")
    #expect(try NicSpec.parse(nic.canonical) == nic)
    #expect(nic.canonical == "mac=00:16:3e:ab:cd:ef,devid=4,bridge=br0,model=e1000,script=vif-route,vifname=web,ip=10.0.0.2,mtu=9000,vlan=10")
    #expect(throws: SpecError("invalid vifname \"averylongname\" (at most 11 characters, no \"/\", \":\" or spaces: the tap is named <vifname>-emu)")) {
      try NicSpec.parse("vifname=averylongname")
    }
    #expect(throws: SpecError("unknown vif setting \"colour\"")) { try NicSpec.parse("colour=red") }
  }

  @Test func xlConfVifDefaultsFillWhatTheVifDoesNotName() throws {
    var global = GlobalConfig()
    global.vifBridge = "xenbr1"
    global.vifGatewayDevice = "eth1"
    global.vifScript = "vif-bridge"
    let plain = try NicSpec.parse("mac=00:16:3e:00:00:01").withDefaults(global)
    #expect(plain.bridge == "xenbr1" && plain.gatewaydev == "eth1")
    #expect(plain.script == nil, "vif-bridge is what xl does natively")
    global.vifScript = "vif-openvswitch"
    let own = try NicSpec.parse("bridge=br0,script=vif-route").withDefaults(global)
    #expect(own.bridge == "br0" && own.script == "vif-route")
    #expect(try NicSpec.parse("").withDefaults(global).script == "vif-openvswitch")
    #expect(try NicSpec.parse("").withDefaults(GlobalConfig()).usesTap == false)
  }

  @Test func vifRecordsAreLibxls() throws {
    let nic = try NicSpec.parse("bridge=br0,mac=00:16:3e:00:00:07,script=vif-bridge,vifname=web,ip=10.0.0.2,vlan=12,devid=2")
    let records = NetworkLayout(domid: 4, devid: 2).records(for: nic, script: "/etc/xen/scripts/vif-bridge", tap: "web-emu")
    #expect(records.map(\.description) == [
      "/local/domain/0/backend/vif/4/2 = \"\"  (n0,r4)",
      "/local/domain/0/backend/vif/4/2/frontend = \"/local/domain/4/device/vif/2\"",
      "/local/domain/0/backend/vif/4/2/frontend-id = \"4\"",
      "/local/domain/0/backend/vif/4/2/online = \"1\"",
      "/local/domain/0/backend/vif/4/2/state = \"1\"",
      "/local/domain/0/backend/vif/4/2/script = \"/etc/xen/scripts/vif-bridge\"",
      "/local/domain/0/backend/vif/4/2/vifname = \"web\"",
      "/local/domain/0/backend/vif/4/2/mac = \"00:16:3e:00:00:07\"",
      "/local/domain/0/backend/vif/4/2/ip = \"10.0.0.2\"",
      "/local/domain/0/backend/vif/4/2/vlan = \"12\"",
      "/local/domain/0/backend/vif/4/2/bridge = \"br0\"",
      "/local/domain/0/backend/vif/4/2/handle = \"2\"",
      "/local/domain/0/backend/vif/4/2/type = \"vif_ioemu\"",
      "/local/domain/0/backend/vif/4/2/hotplug-status = \"\"",
      "/local/domain/4/device/vif/2 = \"\"  (n4,r0)",
      "/local/domain/4/device/vif/2/backend = \"/local/domain/0/backend/vif/4/2\"",
      "/local/domain/4/device/vif/2/backend-id = \"0\"",
      "/local/domain/4/device/vif/2/state = \"1\"",
      "/local/domain/4/device/vif/2/handle = \"2\"",
      "/local/domain/4/device/vif/2/mac = \"00:16:3e:00:00:07\"",
      "/local/domain/4/device/vif/2/trusted = \"1\"",
      "/local/domain/4/device/vif/2/mtu = \"1500\"",
      "/libxl/4/device/vif/2/frontend = \"/local/domain/4/device/vif/2\"",
      "/libxl/4/device/vif/2/backend = \"/local/domain/0/backend/vif/4/2\"",
      "/libxl/4/device/vif/2/tap = \"web-emu\"",
    ])
    #expect(HotplugScript.resolve("vif-bridge", in: "/etc/xen/scripts") == "/etc/xen/scripts/vif-bridge")
    #expect(HotplugScript.resolve("/opt/my-vif", in: "/etc/xen/scripts") == "/opt/my-vif")
  }

  @Test func networkListRowsAreXls() {
    // printf("%-3d %-2d ", …) MAC printf("%6d %5d %6d %5d/%-11d %-30s\n", …) in tools/xl/xl_nic.c.
    let device = NetworkDeviceInfo(
      devid: 12, backendDomid: 0, mac: "00:16:3e:00:00:01", state: 1, eventChannel: -1, txRingRef: -1, rxRingRef: -1,
      backendPath: "/local/domain/0/backend/vif/1/12")
    #expect(device.row == "12  0  00:16:3e:00:00:01    12     1     -1    -1/-1          /local/domain/0/backend/vif/1/12")
    #expect(NetworkDeviceInfo.header == "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path                       ")
  }

  @Test func savedConfigKeepsTheFileAndSetsTheListLast() throws {
    let text = "name = \"g\" # mine\nvif = [ 'bridge=br0' ]\n"
    let edited = SavedConfigEditor.replacingList("vif", with: ["mac=00:16:3e:00:00:01,devid=0,bridge=br0,model=rtl8139", "a\"b"], in: text)
    #expect(edited.hasPrefix(text))
    let reread = try ConfigFile.parse(edited, file: "saved")
    #expect(reread["vif"]?.value == .list([.string("mac=00:16:3e:00:00:01,devid=0,bridge=br0,model=rtl8139"), .string("a\"b")]))
  }

  @Test func vncPasswordTurnsPasswordOnBeforeTo() throws {
    let local = try domain("name = 'v'; type = 'hvm'; vnclisten = '0.0.0.0'; vncpasswd = 's3cret'")
    #expect(local.display.vncPassword == "s3cret")
    #expect(local.warnings.isEmpty)
    #expect(DeviceModelCommand.build(for: local, domid: 1, runDirectory: "/r", host: noXen).arguments
      .contains(["-vnc", "0.0.0.0:0,password=on,to=99"]))
    let xen = try domain("name = 'v'; type = 'hvm'; vncpasswd = 'x'; vncunused = 0; vncdisplay = 4; device_model_target = 'xen'")
    #expect(DeviceModelCommand.build(for: xen, domid: 1, runDirectory: "/r", host: noXen).arguments.contains(["-vnc", "127.0.0.1:4,password=on"]))
    let none = try domain("name = 'v'; type = 'hvm'; vncpasswd = ''")
    #expect(none.display.vncPassword == nil)
    #expect(DeviceModelCommand.build(for: none, domid: 1, runDirectory: "/r", host: noXen).arguments.contains(["-vnc", "127.0.0.1:0,to=99"]))
  }

  @Test func vhdIsQEMUsVPCAndDiskScriptsAreRefused() throws {
    let d = try domain("name = 'd'; type = 'hvm'; vnc = 0; disk = [ '/img/a.vhd,vhd,hda,rw' ]")
    #expect(d.disks[0].format == "vhd")
    #expect(DeviceModelCommand.build(for: d, domid: 1, runDirectory: "/r", host: noXen).arguments
      .contains(["-blockdev", "driver=vpc,node-name=xl-hda,read-only=off,file.driver=file,file.filename=/img/a.vhd"]))
    var xen = d
    xen.deviceModel.target = .xen
    #expect(DeviceModelCommand.build(for: xen, domid: 1, runDirectory: "/r", host: noXen).arguments
      .contains(["-drive", "file=/img/a.vhd,if=ide,index=0,media=disk,format=vpc,cache=writeback"]))
    #expect(refusal("name = 'd'; disk = [ 'vdev=xvda,script=block-iscsi,target=iqn.x' ]") == """
      g.cfg:1:13: disk: item 1 "vdev=xvda,script=block-iscsi,target=iqn.x": script=block-iscsi: block hotplug scripts are not supported (they prepare a device for Xen's block backend; here the device model opens the target itself): give the device or image as the target
      """)
  }

  @Test func usbSoundClockAndFirmwareAsLibxlBuildsThem() throws {
    let d = try domain("""
      name = 'h'; type = 'hvm'; vnc = 0; usbdevice = [ 'tablet', 'mouse' ]; soundhw = 'hda'; localtime = 1; bios = 'ovmf'
      """)
    #expect(d.warnings.isEmpty)
    let local = DeviceModelCommand.build(for: d, domid: 1, runDirectory: "/r", host: noXen).arguments
    #expect(local.contains(["-usb", "-usbdevice", "tablet", "-usbdevice", "mouse", "-device", "intel-hda", "-device", "hda-duplex"]))
    #expect(local.contains(["-bios", "/usr/share/ovmf/OVMF.fd", "-rtc", "base=localtime"]))
    var xen = d
    xen.deviceModel.target = .xen
    let xenArgs = DeviceModelCommand.build(for: xen, domid: 1, runDirectory: "/r", host: noXen).arguments
    #expect(xenArgs.contains(["-usb", "-usbdevice", "tablet", "-usbdevice", "mouse", "-device", "intel-hda", "-device", "hda-duplex"]))
    #expect(!xenArgs.contains("-bios") && !xenArgs.contains("-rtc"))  // hvmloader and the hypervisor's

    let records = DomainLayout(domid: 1, uuid: d.uuid).records(
      for: d, deviceModel: DeviceModelCommand.build(for: d, domid: 1, runDirectory: "/r", host: noXen), logPath: "/l", startTime: "0")
    #expect(records.contains(XenStoreRecord("/local/domain/1/hvmloader/bios", "ovmf")))

    let card = try domain("name = 'h'; type = 'hvm'; usb = 1; soundhw = 'ac97'; rtc_timeoffset = 3600")
    let cardArgs = DeviceModelCommand.build(for: card, domid: 1, runDirectory: "/r", host: noXen).arguments
    #expect(cardArgs.contains(["-usb", "-device", "ac97"]))
    #expect(cardArgs.contains("-rtc"))
    #expect(EmulatedHardware.clockBase(1_800_000_000 + 3600, localtime: false) == "2027-01-15T09:00:00")
    #expect(refusal("name = 'h'; soundhw = 'beeper'") == "g.cfg:1:13: soundhw: unknown sound card \"beeper\" (expected ac97, adlib, cs4231a, es1370, gus, hda, sb16)")
    #expect(refusal("name = 'h'; bios = 'rombios'") == "g.cfg:1:13: bios: rombios needs qemu-xen-traditional, which Xen no longer has; use seabios or ovmf")
    #expect(try domain("name = 'h'; vif = [ 'bridge=br0,vlan=10' ]").nics[0].vlan == "10")
  }
}
