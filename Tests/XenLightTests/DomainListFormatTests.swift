import Testing
import Spawn
@testable import XenLight

@Suite struct DomainListFormatTests {
  private let running = DomainInfo(
    domid: 1, name: "tiny", uuid: "6a9b8c7d-1234-4abc-8def-0123456789ab", type: "hvm", memoryKiB: 65536,
    maxMemoryKiB: 65536, onlineVcpus: 1, maxVcpus: 2, deviceModelStateNode: "running",
    deviceModelIdentity: "4242:123:boot", deviceModel: .running, cpuSeconds: 1.26, target: "local",
    qmpSocketPath: "/run/xen/qmp-libxl-1", logPath: "/var/log/xen/qemu-dm-tiny.log", startTime: "1700000000.00")

  @Test func tableHasXensColumns() {
    let dead = DomainInfo(domid: 12, name: "gone", memoryKiB: 131072, onlineVcpus: 2, deviceModel: .exited)
    #expect(DomainListFormat.table([running, dead]) == """
      Name                                        ID   Mem VCPUs      State   Time(s)
      tiny                                         1    64     1     r-----       1.3
      gone                                        12   128     2     ---sc-       0.0

      """)
  }

  @Test func emptyTableIsJustTheHeader() {
    #expect(DomainListFormat.table([]) == "Name                                        ID   Mem VCPUs      State   Time(s)\n")
  }

  @Test func stateLetters() {
    #expect(DomainInfo(domid: 1, name: "a", deviceModel: .replaced).stateLetters == "---sc-")
    #expect(DomainInfo(domid: 1, name: "a", deviceModel: .none).stateLetters == "------")
  }

  @Test func longJSON() {
    #expect(DomainListFormat.json([running]) == """
      [
          {
              "domid": 1,
              "config": {
                  "c_info": {
                      "type": "hvm",
                      "name": "tiny",
                      "uuid": "6a9b8c7d-1234-4abc-8def-0123456789ab"
                  },
                  "b_info": {
                      "max_vcpus": 2,
                      "avail_vcpus": 1,
                      "max_memkb": 65536,
                      "target_memkb": 65536,
                      "device_model_version": "qemu_xen"
                  }
              },
              "device_model": {
                  "status": "running",
                  "state": "running",
                  "pid": 4242,
                  "identity": "4242:123:boot",
                  "target": "local",
                  "qmp": "/run/xen/qmp-libxl-1",
                  "log": "/var/log/xen/qemu-dm-tiny.log"
              },
              "start_time": "1700000000.00"
          }
      ]

      """)
    #expect(DomainListFormat.json([]) == "[]\n")
  }

  @Test func jsonEscapes() {
    #expect(JSON.string("a\"b\\c\n\u{1}").rendered() == #""a\"b\\c\n\u0001""#)
    #expect(JSON.object([]).rendered() == "{}")
  }

  @Test func tenths() {
    #expect(DomainListFormat.formatTenths(0) == "0.0")
    #expect(DomainListFormat.formatTenths(12.34) == "12.3")
    #expect(DomainListFormat.formatTenths(0.06) == "0.1")
  }
}
