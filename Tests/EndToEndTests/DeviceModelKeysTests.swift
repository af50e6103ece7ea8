#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import InteropSupport
import TestSupport
import XenLight

/// Keys that must mean what they say, against the real QEMU: a VNC server with the password
/// given and no other way in; USB tablet, sound card, clock, UEFI firmware and VHD disks as
/// QEMU itself reports them.
@Suite(.serialized) struct DeviceModelKeysTests {
  /// One RFB (VNC) client connection to 127.0.0.1:`port`, blocking with 10 s timeouts.
  final class RFBConnection {
    let fd: Int32

    init(port: Int) throws {
      fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      var timeout = timeval(tv_sec: 10, tv_usec: 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_port = in_port_t(UInt16(port)).bigEndian
      inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
      let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
      }
      try #require(connected == 0, "connect to VNC port \(port): errno \(errno)")
    }

    deinit { close(fd) }

    func read(_ count: Int) throws -> [UInt8] {
      var bytes: [UInt8] = []
      var buffer = [UInt8](repeating: 0, count: count)
      while bytes.count < count {
        let n = Glibc.read(fd, &buffer, count - bytes.count)
        try #require(n > 0, "VNC server closed after \(bytes.count) of \(count) bytes")
        bytes += buffer[0..<n]
      }
      return bytes
    }

    func send(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }

    /// The protocol version exchange, then the security types the server offers.
    func securityTypes() throws -> [UInt8] {
      let version = try read(12)
      try #require(String(decoding: version, as: UTF8.self).hasPrefix("RFB 003."))
      send(Array("RFB 003.008\n".utf8))
      let count = Int(try read(1)[0])
      return try read(count)
    }

    /// VNC authentication (type 2) with `password`: the SecurityResult (0 is OK).
    func authenticate(_ password: String) async throws -> UInt32 {
      send([2])
      let challenge = try read(16)
      send(try await Self.vncResponse(challenge, password: password))
      let result = try read(4)
      return result.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// The challenge DES-encrypted with the password as RFB's key (8 bytes, each bit-reversed),
    /// by OpenSSL's command line.
    static func vncResponse(_ challenge: [UInt8], password: String) async throws -> [UInt8] {
      var key = Array(password.utf8.prefix(8))
      key += [UInt8](repeating: 0, count: 8 - key.count)
      let reversed = key.map { byte in (0..<8).reduce(UInt8(0)) { $0 | ((byte >> $1) & 1) << (7 - $1) } }
      let hex = reversed.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
      let directory = TemporaryDirectory("vnc")
      defer { directory.remove() }
      let input = directory.appending("challenge")
      let fd = open(input, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
      _ = challenge.withUnsafeBytes { write(fd, $0.baseAddress, 16) }
      close(fd)
      let output = directory.appending("response")
      let done = try await run([
        "/usr/bin/openssl", "enc", "-des-ecb", "-nopad", "-K", hex, "-provider", "legacy", "-provider", "default",
        "-in", input, "-out", output,
      ])
      try #require(done.status == 0, "\(done)")
      let response = open(output, O_RDONLY)
      defer { close(response) }
      var bytes = [UInt8](repeating: 0, count: 16)
      try #require(Glibc.read(response, &bytes, 16) == 16)
      return bytes
    }
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func vncAsksForThePasswordGivenAndAcceptsOnlyIt() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let display = Int.random(in: 40...80)
    let created = try await bed.xl([
      "create", "-q",
      bed.tinyGuest("tiny", "vnc = 1\nvnclisten = \"127.0.0.1\"\nvncdisplay = \(display)\nvncpasswd = \"s3cret\""),
    ])
    try #require(created.status == 0, "\(created)")
    let vnc = try await QMPClient.session(path: bed.runDirectory + "/qmp-libxl-1") { qmp throws(XenLightError) in
      try await qmp.execute("query-vnc")
    }
    #expect(vnc["enabled"] == .bool(true))
    #expect(vnc["auth"]?.stringValue == "vnc", "\(vnc)")
    let port = try #require(vnc["service"]?.stringValue.flatMap { Int($0) })

    // QEMU's VNC server answers each step at once: these short reads hold a pool thread for
    // no longer than a local round trip.
    let offered = try RFBConnection(port: port).securityTypes()
    let good = try RFBConnection(port: port)
    _ = try good.securityTypes()
    let right = try await good.authenticate("s3cret")
    let bad = try RFBConnection(port: port)
    _ = try bad.securityTypes()
    let wrong = try await bad.authenticate("guessed")
    #expect(offered == [2], "only VNC authentication, never None (1)")
    #expect(right == 0)
    #expect(wrong != 0)
    #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
    try await bed.expectNoLeftovers()
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu, .ovmf])))
  func usbSoundClockFirmwareAndVHDReachQEMU() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let image = bed.directory.appending("disk.vhd")
    let made = try await run(["/usr/bin/qemu-img", "create", "-q", "-f", "vpc", image, "1M"])
    try #require(made.status == 0, "\(made)")
    let created = try await bed.xl([
      "create", "-q",
      bed.tinyGuest(
        "tiny",
        "usbdevice = \"tablet\"\nsoundhw = \"hda\"\nlocaltime = 1\nrtc_timeoffset = 3600\nbios = \"ovmf\"\ndisk = [ \"\(image),vhd,hda,rw\" ]"),
    ])
    try #require(created.status == 0, "\(created)")
    let (mice, pci, blocks) = try await QMPClient.session(path: bed.runDirectory + "/qmp-libxl-1") { qmp throws(XenLightError) in
      (try await qmp.execute("query-mice"), try await qmp.execute("query-pci"), try await qmp.execute("query-block"))
    }
    #expect((mice.arrayValue ?? []).contains { $0["name"]?.stringValue == "QEMU HID Tablet" }, "\(mice)")
    let classes = (pci.arrayValue?.first?["devices"]?.arrayValue ?? []).compactMap { $0["class_info"]?["class"]?.intValue }
    #expect(classes.contains(0x0403), "an HD Audio controller in \(classes)")
    let disk = (blocks.arrayValue ?? []).first { $0["inserted"]?["file"]?.stringValue == image }
    #expect(disk?["inserted"]?["drv"]?.stringValue == "vpc", "\(blocks)")
    #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
    try await bed.expectNoLeftovers()
  }
}
