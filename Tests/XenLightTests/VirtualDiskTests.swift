import Testing
import XenStore
@testable import XenLight

@Suite struct VirtualDiskTests {
  /// libxl's numbers (libxl__device_disk_dev_number), as Xen's docs/misc/vbd-interface.txt lists them.
  @Test func devidsAreLibxls() {
    #expect(VirtualDisk.devid("xvda") == 51712)
    #expect(VirtualDisk.devid("xvdb") == 51728)
    #expect(VirtualDisk.devid("xvda1") == 51713)
    #expect(VirtualDisk.devid("xvdq") == (1 << 28) | (16 << 8))
    #expect(VirtualDisk.devid("hda") == 768)
    #expect(VirtualDisk.devid("hdb") == 832)
    #expect(VirtualDisk.devid("hdc") == 5632)
    #expect(VirtualDisk.devid("hdd") == 5696)
    #expect(VirtualDisk.devid("sdb") == 2064)
    #expect(VirtualDisk.devid("d0p1") == 51713)
    #expect(VirtualDisk.devid("51728") == 51728)
    #expect(VirtualDisk.devid("hde") == nil)
    #expect(VirtualDisk.devid("vda") == nil)
    #expect(VirtualDisk.devid("xvd") == nil)
    #expect(VirtualDisk.devid("xvda01") == nil)
  }

  @Test func recordsAreLibxlsForAQEMUServedDisk() throws {
    let disk = try DiskSpec.parse("/img/d.raw,raw,xvdb,rw")
    let records = Dictionary(uniqueKeysWithValues: VirtualDisk.records(disk, domid: 3).map { ($0.path, $0) })
    let backend = "/local/domain/0/backend/vbd/3/51728"
    let frontend = "/local/domain/3/device/vbd/51728"
    #expect(records[backend]?.permissions?.description == "n0,r3")
    #expect(records[frontend]?.permissions?.description == "n3,r0")
    #expect(records[backend + "/params"]?.value == "raw:/img/d.raw")
    #expect(records[backend + "/frontend"]?.value == frontend)
    #expect(records[backend + "/type"]?.value == "qdisk")
    #expect(records[backend + "/mode"]?.value == "w")
    #expect(records[backend + "/device-type"]?.value == "disk")
    #expect(records[frontend + "/backend"]?.value == backend)
    #expect(records[frontend + "/virtual-device"]?.value == "51728")
    #expect(records["/libxl/3/device/vbd/51728/backend"]?.value == backend)
    let cd = try DiskSpec.parse(",raw,hdc:cdrom,r")
    let cdRecords = Dictionary(uniqueKeysWithValues: VirtualDisk.records(cd, domid: 3).map { ($0.path, $0.value) })
    #expect(cdRecords["/local/domain/0/backend/vbd/3/5632/params"] == "empty:")
    #expect(cdRecords["/local/domain/0/backend/vbd/3/5632/removable"] == "1")
  }

  @Test func blockNodesNameTheirDescriptorSet() {
    #expect(VirtualDisk.nodeName("xvdb", set: 7) == "xl-xvdb-7")
    #expect(VirtualDisk.nodeName("xvda", set: nil) == "xl-xvda")
    #expect(VirtualDisk.fdset(ofNode: "xl-xvdb-7") == 7)
    #expect(VirtualDisk.fdset(ofNode: "xl-xvdb-0") == 0)
    #expect(VirtualDisk.fdset(ofNode: "xl-xvda") == nil)
  }

  @Test func memorySizesAreXls() {
    #expect(ResourceControl.kibibytes("256") == 262_144)
    #expect(ResourceControl.kibibytes("256m") == 262_144)
    #expect(ResourceControl.kibibytes("1G") == 1_048_576)
    #expect(ResourceControl.kibibytes("4096k") == 4096)
    #expect(ResourceControl.kibibytes("2048b") == 2)
    #expect(ResourceControl.kibibytes("12q") == nil)
    #expect(ResourceControl.kibibytes("m") == nil)
    #expect(ResourceControl.kibibytes("1mb") == nil)
  }
}
