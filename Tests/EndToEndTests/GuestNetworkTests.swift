#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import InteropSupport
import TestSupport
import XenStore

/// A host bridge made for one test (`xlbr-i17n<hex>`, with an address in a random 10.x.y.0/24),
/// removed by `remove()` with whatever ports it still has.
struct HostBridge {
  let name: String
  /// The host's address on it; the guest takes `.2`.
  let hostAddress: String
  let guestAddress: String

  init() async throws {
    let tag = String(UInt16.random(in: 0x1000...0xffff), radix: 16)
    let (b, c) = (UInt8.random(in: 100...250), UInt8.random(in: 1...250))
    name = "xlbr-i17n\(tag)"
    hostAddress = "10.\(b).\(c).1"
    guestAddress = "10.\(b).\(c).2"
    for step in [["link", "add", name, "type", "bridge"], ["addr", "add", hostAddress + "/24", "dev", name], ["link", "set", name, "up"]] {
      let done = try await run(["/usr/sbin/ip"] + step)
      try #require(done.status == 0, "ip \(step.joined(separator: " ")): \(done)")
    }
  }

  func remove() { runInCleanup(["/usr/sbin/ip", "link", "del", name]) }

  /// The bridge's ports.
  var ports: [String] { files(in: "/sys/class/net/\(name)/brif") }
}

/// Whether a network interface `name` exists on the host.
func interfaceExists(_ name: String) -> Bool { if_nametoindex(name) != 0 }

/// `GET /` from `host`:80, off the pool, with 30 s socket timeouts: the body, or what failed.
func httpGet(_ host: String, path: String) async throws -> String {
  try await offPool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var timeout = timeval(tv_sec: 30, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(80).bigEndian
    inet_pton(AF_INET, host, &address.sin_addr)
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return "connect failed: errno \(errno)" }
    let request = "GET \(path) HTTP/1.0\r\n\r\n"
    _ = request.withCString { write(fd, $0, strlen($0)) }
    var reply = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
      let n = read(fd, &buffer, buffer.count)
      if n <= 0 { break }
      reply += buffer[0..<n]
    }
    return String(decoding: reply, as: UTF8.self)
  }
}

extension GuestSuites {
  /// A guest on a real network: host bridges made by the test, taps connected natively and by
  /// Xen's own `vif-bridge` and `vif-route`, the guest configured over its console and reached
  /// from the host;
  /// NICs hot-added and removed, kept across a restart; all again with a confined device model.
  @Suite(.serialized) struct GuestNetworkTests {
    static let peers: [Peer] = [.qemu, .linuxGuest, .xenstoreRead, .xenVifScripts]

    @Test(.enabled(if: TestEnvironment.shouldRun(peers)), arguments: [false, true])
    func guestOnHostBridgesWithNICsThatComeAndGo(restricted: Bool) async throws {
      let native = try await HostBridge()
      defer { native.remove() }
      let scripted = try await HostBridge()
      defer { scripted.remove() }
      let user = restricted ? try await DeviceModelRestrictTests.TestUser("xldm-net", uid: 231_150) : nil
      defer { user?.remove() }
      let bed = try XlTestbed()
      defer { bed.stop() }
      chmod(bed.directory.path, 0o755)
      let vifname = "i17n" + native.name.suffix(4)
      let config = bed.linuxGuest(
        name: "net",
        """
        vif = ["bridge=\(native.name),mac=00:16:3e:5a:00:01", "bridge=\(scripted.name),mac=00:16:3e:5a:00:02,script=vif-bridge,vifname=\(vifname)"]
        \(user.map { "device_model_user = \"\($0.name)\"" } ?? "")
        """)
      let created = try await bed.xl(["create", "-q", config])
      try #require(created.status == 0, "\(created)")

      // The taps, named as libxl names them, each a port of its bridge.
      #expect(native.ports == ["vif1.0-emu"])
      #expect(scripted.ports == ["\(vifname)-emu"])
      #expect(try await bed.read("/local/domain/0/backend/vif/1/0/bridge") == native.name)
      #expect(try await bed.read("/local/domain/0/backend/vif/1/0/mac") == "00:16:3e:5a:00:01")
      #expect(try await bed.read("/local/domain/0/backend/vif/1/0/script") == nil)
      #expect(try await bed.read("/local/domain/0/backend/vif/1/1/script") == "/etc/xen/scripts/vif-bridge")
      #expect(try await bed.read("/local/domain/0/backend/vif/1/1/vifname") == vifname)
      #expect(try await bed.read("/local/domain/1/device/vif/1/backend") == "/local/domain/0/backend/vif/1/1")

      // The guest on both bridges: it reaches the host, and serves the host over each.
      let configured = try await ConsoleSession.exchangeAwaiting(
        bed, domain: "net",
        send: "ip link set eth0 up && ip addr add \(native.guestAddress)/24 dev eth0 && ip link set eth1 up && ip addr add \(scripted.guestAddress)/24 dev eth1 && ping -c 1 -W 20 \(native.hostAddress) && ping -c 1 -W 20 \(scripted.hostAddress) && mkdir -p /www && echo served-by-$((6*7)) > /www/index.html && httpd -p 80 -h /www && echo net-$((2+3))\r",
        until: "net-5")
      #expect(configured.contains("net-5"), "\(configured)")
      #expect(try await httpGet(native.guestAddress, path: "/index.html").contains("served-by-42"))
      #expect(try await httpGet(scripted.guestAddress, path: "/index.html").contains("served-by-42"))

      // A NIC added while it runs: in the guest, on the bridge, in the list and the saved config.
      let attached = try await bed.xl(["network-attach", "net", "bridge=\(native.name)", "mac=00:16:3e:5a:00:03"])
      #expect(attached.status == 0 && attached.stderr == "", "\(attached)")
      #expect(native.ports == ["vif1.0-emu", "vif1.2-emu"])
      let listed = try await bed.xl(["network-list", "net"])
      #expect(listed.stdout == """
        Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path                       
        0   0  00:16:3e:5a:00:01     0     1     -1    -1/-1          /local/domain/0/backend/vif/1/0
        1   0  00:16:3e:5a:00:02     1     1     -1    -1/-1          /local/domain/0/backend/vif/1/1
        2   0  00:16:3e:5a:00:03     2     1     -1    -1/-1          /local/domain/0/backend/vif/1/2

        """, "\(listed)")
      let seen = try await ConsoleSession.exchangeAwaiting(bed, domain: "net", send: "ip link; echo links-$((3+4))\r", until: "links-7")
      #expect(seen.contains("00:16:3e:5a:00:03"), "\(seen)")

      // A restart brings the guest back with the NIC it had.
      let first = try await bed.read("/libxl/1/device-model-identity")
      #expect(try await bed.xl(["reboot", "net"]).status == 0)
      // Re-created as xl does, under a new domid: its taps are named after it.
      try await bed.waitUntil("/libxl/2/run-state", is: "running")
      if try await bed.read("/libxl/2/run-state") != "running" {
        Issue.record("the restart did not finish; the monitor's log: \((try? readFile(bed.logDirectory + "/xl-net.log")) ?? "none")")
      }
      #expect(try await bed.read("/libxl/2/device-model-identity") != first)
      #expect(try await bed.children("/local/domain/0/backend/vif") == ["2"])
      #expect(native.ports == ["vif2.0-emu", "vif2.2-emu"])
      #expect(scripted.ports == ["\(vifname)-emu"])
      let again = try await ConsoleSession.exchangeAwaiting(bed, domain: "net", send: "ip link; echo back-$((4+4))\r", until: "back-8")
      #expect(again.contains("00:16:3e:5a:00:03"), "\(again)")

      // Removed while it runs (by MAC): gone from the guest, the bridge, the records.
      let detached = try await bed.xl(["network-detach", "net", "00:16:3e:5a:00:03"])
      #expect(detached.status == 0 && detached.stderr == "", "\(detached)")
      #expect(native.ports == ["vif2.0-emu"])
      #expect(!interfaceExists("vif2.2-emu"))
      #expect(try await bed.children("/local/domain/0/backend/vif/2") == ["0", "1"])
      #expect(try await bed.children("/local/domain/2/device/vif") == ["0", "1"])
      let after = try await ConsoleSession.exchangeAwaiting(bed, domain: "net", send: "ip link; echo gone-$((4+5))\r", until: "gone-9")
      #expect(!after.contains("00:16:3e:5a:00:03") && after.contains("00:16:3e:5a:00:01"), "\(after)")

      // Xen's vif-route, unchanged: no bridge; the tap gets the gateway's address, the host a
      // route to the NIC's ip through it, and the guest reaches the host that way.
      let routed = scripted.guestAddress.split(separator: ".").dropLast().joined(separator: ".") + ".77"
      let viaRoute = try await bed.xl([
        "network-attach", "net", "script=vif-route", "ip=\(routed)", "gatewaydev=\(scripted.name)", "mac=00:16:3e:5a:00:04",
      ])
      #expect(viaRoute.status == 0 && viaRoute.stderr == "", "\(viaRoute)")
      #expect(try await run(["/usr/sbin/ip", "route", "show", routed]).stdout.contains("dev vif2.2-emu"))
      let pinged = try await ConsoleSession.exchangeAwaiting(
        bed, domain: "net",
        send: "for i in /sys/class/net/*; do [ $(cat $i/address) = 00:16:3e:5a:00:04 ] && dev=${i##*/}; done; ip link set $dev up && ip addr add \(routed)/32 dev $dev && ip route add \(scripted.hostAddress)/32 dev $dev && ping -c 1 -W 20 -I \(routed) \(scripted.hostAddress) && echo routed-$((5+6))\r",
        until: "routed-11")
      #expect(pinged.contains("routed-11"), "\(pinged)")
      let unrouted = try await bed.xl(["network-detach", "net", "2"])
      #expect(unrouted.status == 0 && unrouted.stderr == "", "\(unrouted)")
      #expect(try await run(["/usr/sbin/ip", "route", "show", routed]).stdout == "")
      #expect(!interfaceExists("vif2.2-emu"))

      #expect(try await bed.xl(["destroy", "net"]).status == 0)
      #expect(native.ports == [] && scripted.ports == [])
      #expect(!interfaceExists("vif2.0-emu") && !interfaceExists("\(vifname)-emu"))
      #expect(try await bed.children("/local/domain/0/backend/vif") == [])
      try await bed.expectNoLeftovers()
    }
  }
}

extension GuestSuites.GuestNetworkTests {
  /// Bad NICs at create and while a guest runs (the firmware-only guest: what it runs does not
  /// matter here): each its message and exit code, and nothing left or changed — no tap, no
  /// QEMU, no records, the saved config as it was.
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu, .xenstoreRead, .xenVifScripts])))
  func badNetworkInputGetsItsMessageAndChangesNothing() async throws {
    let bridge = try await HostBridge()
    defer { bridge.remove() }
    let bed = try XlTestbed()
    defer { bed.stop() }
    let absent = "xlbr-i17nnone"

    let missing = try await bed.xl(["create", "-q", bed.tinyGuest("tiny", "vif = [\"bridge=\(absent)\"]")])
    #expect(missing.status == 1)
    #expect(missing.stderr == "xl: vif 0: bridge \(absent) does not exist (create it first, e.g. ip link add \(absent) type bridge)\n")
    try await bed.expectNoLeftovers()

    // Xen's own vif-bridge refuses (its fatal: hotplug-error); then nothing is left.
    let refused = try await bed.xl(["create", "-q", bed.tinyGuest("tiny", "vif = [\"bridge=\(absent),script=vif-bridge\"]")])
    #expect(refused.status == 1)
    #expect(refused.stderr == "xl: vif 0: /etc/xen/scripts/vif-bridge add failed: Could not find bridge device \(absent)\n", "\(refused)")
    #expect(!interfaceExists("vif1.0-emu"))
    #expect(try await bed.children("/local/domain/0/backend/vif") == [])
    try await bed.expectNoLeftovers()

    // A script of one's own that fails without a word in xenstore: what it printed, and the
    // environment and arguments libxl gives a tap's script.
    let script = bed.config(
      "#!/bin/sh\n[ \"$1\" = add ] || exit 0\necho \"no $1 $2 INTERFACE=$INTERFACE vif=$vif XENBUS_PATH=$XENBUS_PATH XENBUS_TYPE=$XENBUS_TYPE netdev=$netdev\" >&2\nexit 3\n",
      name: "vif-fails")
    chmod(script, 0o755)
    let failed = try await bed.xl(["create", "-q", bed.tinyGuest("tiny", "vif = [\"bridge=\(bridge.name),script=\(script),gatewaydev=eth9\"]")])
    #expect(failed.status == 1)
    #expect(failed.stderr == "xl: vif 0: \(script) add exited with status 3: no add type_if=tap INTERFACE=vif1.0-emu vif=vif1.0 XENBUS_PATH=backend/vif/1/0 XENBUS_TYPE=vif netdev=eth9\n", "\(failed)")
    #expect(bridge.ports == [] && !interfaceExists("vif1.0-emu"))
    try await bed.expectNoLeftovers()

    // A device model that fails with its tap ready: the tap goes with it.
    let qemuFails = try await bed.xl(["create", "-q", bed.tinyGuest("tiny", "vif = [\"bridge=\(bridge.name)\"]\ndevice_model_args = [\"-bogus\"]")])
    #expect(qemuFails.status == 3, "\(qemuFails)")
    #expect(bridge.ports == [] && !interfaceExists("vif1.0-emu"))
    try await bed.expectNoLeftovers()

    let badMAC = try await bed.xl(["create", "-q", bed.tinyGuest("tiny", "vif = [\"bridge=\(bridge.name),mac=00:16:3e:zz:00:01\"]")])
    #expect(badMAC.status == 1)
    #expect(badMAC.stderr.hasSuffix("vif: item 1 \"bridge=\(bridge.name),mac=00:16:3e:zz:00:01\": invalid mac \"00:16:3e:zz:00:01\" (expected six hex bytes like 00:16:3e:12:34:56)\n"), "\(badMAC)")
    try await bed.expectNoLeftovers()

    // A running guest with one NIC: every bad change refused, nothing changed.
    try #require(try await bed.xl(["create", "-q", bed.tinyGuest("tiny", "vif = [\"bridge=\(bridge.name),mac=00:16:3e:5a:01:01\"]")]).status == 0)
    let saved = try #require(files(in: bed.libDirectory).first { $0.hasPrefix("userdata-") })
    let savedText = try readFile(bed.libDirectory + "/" + saved)
    let records = try await bed.children("/local/domain/0/backend/vif/1")
    for (arguments, status, message) in [
      (["network-attach", "tiny", "bridge=\(bridge.name)", "mac=00:16:3e:5a:01"], Int32(1),
       "xl: vif \"bridge=\(bridge.name),mac=00:16:3e:5a:01\": invalid mac \"00:16:3e:5a:01\" (expected six hex bytes like 00:16:3e:12:34:56)\n"),
      (["network-attach", "tiny", "bridge=\(absent)"], 1,
       "xl: vif 1: bridge \(absent) does not exist (create it first, e.g. ip link add \(absent) type bridge)\n"),
      (["network-attach", "tiny", "bridge=\(absent)", "script=vif-bridge"], 1,
       "xl: vif 1: /etc/xen/scripts/vif-bridge add failed: Could not find bridge device \(absent)\n"),
      (["network-attach", "tiny", "bridge=\(bridge.name)", "devid=0"], 1,
       "xl: vif \"bridge=\(bridge.name),devid=0\": devid 0 is taken by another vif\n"),
      (["network-detach", "tiny", "7"], 1, "xl: domain 1 (tiny) has no network device 7 (xl network-list tiny shows them)\n"),
      (["network-detach", "tiny", "00:16:3e:5a:01:09"], 1,
       "xl: domain 1 (tiny) has no network device 00:16:3e:5a:01:09 (xl network-list tiny shows them)\n"),
      (["network-attach", "other", "bridge=\(bridge.name)"], 1, "xl: no domain \"other\"\n"),
      (["network-detach", "other", "0"], 1, "xl: no domain \"other\"\n"),
      (["network-list", "other"], 1, "xl: no domain \"other\"\n"),
    ] {
      let result = try await bed.xl(arguments)
      #expect(result.status == status && result.stderr == message, "\(arguments): \(result)")
    }
    // The firmware-only guest never answers ACPI's unplug request: the detach gives up, and
    // the NIC stays whole.
    let stuck = try await bed.xl(["network-detach", "tiny", "0"])
    #expect(stuck.status == 9)
    #expect(stuck.stderr == "xl: domain 1 (tiny): the guest did not release network device 0 within 10 s of device_del (its driver must let it go: ACPI hot-unplug needs the guest's consent); the device is still attached\n", "\(stuck)")
    #expect(bridge.ports == ["vif1.0-emu"])
    #expect(!interfaceExists("vif1.1-emu"))
    #expect(try await bed.children("/local/domain/0/backend/vif/1") == records)
    #expect(try readFile(bed.libDirectory + "/" + saved) == savedText)

    // xl.conf's vif.default.bridge for a vif that names none (as xl's set_default_nic_values).
    let conf = bed.config("vif.default.bridge = \"\(bridge.name)\"\n", name: "xl.conf")
    let defaulted = try await bed.xl(["network-attach", "tiny"], environment: ["XL_CONF": conf])
    #expect(defaulted.status == 0 && defaulted.stderr == "", "\(defaulted)")
    #expect(bridge.ports == ["vif1.0-emu", "vif1.1-emu"])
    #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
    #expect(bridge.ports == [])
    try await bed.expectNoLeftovers()
  }
}
