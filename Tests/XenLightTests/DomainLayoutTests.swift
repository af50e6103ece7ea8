import Testing
import XenStore
@testable import XenLight

@Suite struct DomainLayoutTests {
  private let uuid = DomainUUID("6a9b8c7d-1234-4abc-8def-0123456789ab")!

  private func records(_ text: String, domid: UInt32 = 5) throws -> [XenStoreRecord] {
    let d = try DomainConfiguration(try ConfigFile.parse(text, file: "g.cfg"), source: "g.cfg")
    let layout = DomainLayout(domid: domid, uuid: d.uuid)
    let command = DeviceModelCommand.build(
      for: d, domid: domid, runDirectory: "/run/xl", host: HostCapabilities(isXenControlDomain: false, hasKVM: false))
    return layout.records(for: d, deviceModel: command, logPath: "/var/log/xen/qemu-dm-g.log", startTime: "1700000000.00")
  }

  @Test func pathsFollowLibxl() {
    let layout = DomainLayout(domid: 5, uuid: uuid)
    #expect(layout.domainPath == "/local/domain/5")
    #expect(layout.vmPath == "/vm/6a9b8c7d-1234-4abc-8def-0123456789ab")
    #expect(layout.deviceModelPath == "/local/domain/0/device-model/5")
    #expect(layout.deviceModelStatePath == "/local/domain/0/device-model/5/state")
    #expect(layout.deviceModelPIDPath == "/local/domain/5/image/device-model-pid")
    #expect(layout.libxlPath == "/libxl/5")
    #expect(layout.deviceModelIdentityPath == "/libxl/5/device-model-identity")
    #expect(layout.subtrees == [
      "/local/domain/0/device-model/5", "/vm/6a9b8c7d-1234-4abc-8def-0123456789ab", "/local/domain/5", "/libxl/5",
      "/local/domain/0/backend/vbd/5", "/local/domain/0/backend/vif/5",
    ])
  }

  @Test func recordsOfAnHVMGuest() throws {
    let r = try records("""
      name = "g"; type = "hvm"; uuid = "6a9b8c7d-1234-4abc-8def-0123456789ab"
      memory = 256; maxmem = 512; vcpus = 2; maxvcpus = 3
      """)
    let byPath = Dictionary(uniqueKeysWithValues: r.map { ($0.path, $0) })
    #expect(byPath.count == r.count, "every path written once")
    #expect(byPath["/local/domain/5/name"]?.value == "g")
    #expect(byPath["/local/domain/5/domid"]?.value == "5")
    #expect(byPath["/local/domain/5/vm"]?.value == "/vm/6a9b8c7d-1234-4abc-8def-0123456789ab")
    #expect(byPath["/local/domain/5/memory/target"]?.value == "262144")
    #expect(byPath["/local/domain/5/memory/static-max"]?.value == "524288")
    #expect(byPath["/local/domain/5/memory/videoram"]?.value == "16384")
    #expect(byPath["/local/domain/5/cpu/0/availability"]?.value == "online")
    #expect(byPath["/local/domain/5/cpu/1/availability"]?.value == "online")
    #expect(byPath["/local/domain/5/cpu/2/availability"]?.value == "offline")
    #expect(byPath["/local/domain/5/hvmloader"] != nil)
    #expect(byPath["/vm/6a9b8c7d-1234-4abc-8def-0123456789ab/uuid"]?.value == "6a9b8c7d-1234-4abc-8def-0123456789ab")
    #expect(byPath["/vm/6a9b8c7d-1234-4abc-8def-0123456789ab/name"]?.value == "g")
    #expect(byPath["/vm/6a9b8c7d-1234-4abc-8def-0123456789ab/image/ostype"]?.value == "hvm")
    #expect(byPath["/vm/6a9b8c7d-1234-4abc-8def-0123456789ab/start_time"]?.value == "1700000000.00")
    #expect(byPath["/local/domain/0/device-model/5"]?.value == "")
    #expect(byPath["/libxl/5/type"]?.value == "hvm")
    #expect(byPath["/libxl/5/dm-version"]?.value == "qemu_xen")
    #expect(byPath["/libxl/5/dm-target"]?.value == "local")
    #expect(byPath["/libxl/5/qmp-path"]?.value == "/run/xl/qmp-libxl-5")
    #expect(byPath["/libxl/5/dm-log"]?.value == "/var/log/xen/qemu-dm-g.log")
  }

  @Test func permissionsLetTheDomainOwnWhatItWrites() throws {
    let r = try records("name = 'g'; uuid = '6a9b8c7d-1234-4abc-8def-0123456789ab'")
    func perms(_ path: String) -> String? { r.first { $0.path == path }?.permissions?.description }
    #expect(perms("/local/domain/5") == "n0,r5")
    #expect(perms("/vm/6a9b8c7d-1234-4abc-8def-0123456789ab") == "n0,r5")
    #expect(perms("/local/domain/5/control") == "n0,r5")
    #expect(perms("/local/domain/5/control/shutdown") == "n5")
    #expect(perms("/local/domain/5/data") == "n5")
    #expect(perms("/local/domain/5/error") == "n5")
    #expect(perms("/libxl/5") == "n0")
    #expect(perms("/local/domain/5/name") == nil, "plain writes inherit")
    #expect(r.first { $0.path == "/local/domain/5/hvmloader" } == nil, "PV guests have no hvmloader node")
    #expect(r.first { $0.path.hasSuffix("/image/ostype") }?.value == "linux")
  }

  @Test func parentsComeBeforeChildren() throws {
    let r = try records("name = 'g'; vcpus = 2")
    for (i, record) in r.enumerated() {
      for later in r[(i + 1)...] {
        #expect(!record.path.hasPrefix(later.path + "/"), "\(later.path) must precede \(record.path)")
      }
    }
  }

  @Test func deviceModelRecords() {
    let layout = DomainLayout(domid: 9, uuid: uuid)
    #expect(layout.deviceModelRecords(pid: 1234, identity: "1234:99:abc") == [
      XenStoreRecord("/local/domain/9/image/device-model-pid", "1234"),
      XenStoreRecord("/libxl/9/device-model-identity", "1234:99:abc"),
    ])
  }

  @Test func recordsPrintForDryRuns() {
    let layout = DomainLayout(domid: 1, uuid: uuid)
    #expect(XenStoreRecord("/local/domain/1", permissions: layout.readOnlyForDomain).description == "/local/domain/1 = \"\"  (n0,r1)")
    #expect(XenStoreRecord("/local/domain/1/name", "a \"b\"").description == #"/local/domain/1/name = "a \"b\"""#)
  }
}

@Suite struct DomainLayoutClaimTests {
  @Test func rootsAreTheSubtreesTheNameAndTheVMLink() throws {
    let d = try DomainConfiguration(try ConfigFile.parse("name = 'g'; type = 'hvm'", file: "g.cfg"), source: "g.cfg")
    let layout = DomainLayout(domid: 3, uuid: d.uuid)
    let command = DeviceModelCommand.build(
      for: d, domid: 3, runDirectory: "/r", host: HostCapabilities(isXenControlDomain: false, hasKVM: false))
    let records = layout.records(for: d, deviceModel: command, logPath: "/l", startTime: "0.00")
    let roots = records.filter(layout.isRoot).map(\.path)
    #expect(roots.sorted() == [
      "/libxl/3", "/local/domain/0/device-model/3", "/local/domain/3", "/local/domain/3/name", "/local/domain/3/vm",
      "/vm/\(d.uuid)",
    ].sorted())
    // Everything else lies inside a root, so filling it touches no shared parent.
    for record in records where !layout.isRoot(record) {
      #expect(layout.subtrees.contains { record.path.hasPrefix($0 + "/") }, "\(record.path)")
    }
  }

  @Test func durationsReadShort() {
    #expect(Duration.microseconds(400).readable == "0.4 ms")
    #expect(Duration.milliseconds(23).readable == "23 ms")
    #expect(Duration.milliseconds(1500).readable == "1.5 s")
    #expect(Duration.seconds(60).readable == "60 s")
  }
}
