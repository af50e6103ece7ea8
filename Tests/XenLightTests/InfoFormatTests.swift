import Testing

@testable import XenLight

/// The layouts of the operator's commands, as xl's C prints them.
@Suite struct InfoFormatTests {
  @Test func uptimeAsXlPrintsIt() {
    #expect(UptimeFormat.text(5, short: false) == " 0:00:05")
    #expect(UptimeFormat.text(3 * 3600 + 4 * 60 + 5, short: true) == " 3:04")
    #expect(UptimeFormat.text(86400 + 12 * 3600 + 7, short: false) == "1 day, 12:00:07")
    #expect(UptimeFormat.text(3 * 86400 + 60, short: true) == "3 days,  0:01")
    #expect(UptimeFormat.header == "Name                                ID Uptime\n")
    #expect(UptimeFormat.line(name: "g", domid: 7, uptime: 61, now: "12:00:00", short: false) == "g                                    7  0:01:01\n")
    #expect(UptimeFormat.line(name: "g", domid: 7, uptime: 61, now: "12:00:00", short: true) == " 12:00:00 up  0:01, g (7)\n")
  }

  @Test func cpuListsAsXenReadsAndPrintsThem() {
    #expect(CPUList.parse("all", hostCPUs: 4) == [0, 1, 2, 3])
    #expect(CPUList.parse("0-1,3", hostCPUs: 4) == [0, 1, 3])
    #expect(CPUList.parse("all,^2", hostCPUs: 4) == [0, 1, 3])
    #expect(CPUList.parse("4", hostCPUs: 4) == nil)
    #expect(CPUList.parse("2-1", hostCPUs: 4) == nil)
    #expect(CPUList.parse("x", hostCPUs: 4) == nil)
    #expect(CPUList.text([0, 1, 2, 3], hostCPUs: 4) == "all")
    #expect(CPUList.text([0, 1, 3], hostCPUs: 4) == "0-1,3")
    #expect(CPUList.text([], hostCPUs: 4) == "none")
  }

  @Test func vcpuAndTopRows() {
    let vcpu = VCPUThread(index: 1, tid: 42, cpu: 0, running: false, seconds: 2.25, affinity: [1])
    #expect(
      VCPUListFormat.row(name: "linux", domid: 3, vcpu, paused: false, hostCPUs: 2)
        == "linux                                3     1    0   -b-       2.3  1 / all\n")
    var info = DomainInfo(domid: 3, name: "linux", memoryKiB: 131072, maxMemoryKiB: 262144, onlineVcpus: 2, deviceModel: .running, cpuSeconds: 9.6)
    info.runState = .paused
    let row = TopFormat.row(info, cpuPercent: 12.34, hostMemoryKiB: 1_310_720, nets: 2, vbds: 1)
    #expect(
      row == "     linux ----p-          9   12.3     131072   10.0     262144      20.0     2    2        0        0    1        -        -        -          -          -    0\n")
    #expect(TopFormat.header.hasPrefix("      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS"))
  }

  @Test func hostInfoFieldsAndOneValue() {
    let lines = [("host", "vm"), ("total_memory", "24105"), ("total_cpus", "2")]
    #expect(HostInfo.text(lines) == "host                   : vm\ntotal_memory           : 24105\ntotal_cpus             : 2\n")
    #expect(HostInfo.text(lines, only: "total_m") == "24105\n")
  }
}
