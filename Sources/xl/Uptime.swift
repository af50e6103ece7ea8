#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import XenLight

/// `xl uptime [-s] [DOMAIN...]`: how long each domain (and the host, Domain-0) has run.
struct Uptime: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Print how long domains have been running.",
    discussion: "Without domains: the host (Domain-0, from /proc/uptime) and every guest, from its start_time.")

  @Flag(name: .customShort("s"), help: "Short form: ' hh:mm:ss up <time>, name (id)', as uptime(1).")
  var short = false

  @Argument(help: "Only these domains (names or ids).") var domains: [String] = []

  func execute() async throws { try await Self.run(domains, short: short) }

  /// The lines (also `FastCommandLine`'s `xl uptime [-s] [DOMAIN...]`).
  static func run(_ domains: [String], short: Bool) async throws {
    let guests: [DomainSummary]
    let wanted = domains.filter { $0 != "0" && $0 != "Domain-0" }
    do { guests = try await Toolstack.forXL().summaries(wanted) } catch { throw ExitStatus.fail(error) }
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    let clock = Self.clock(now.tv_sec)
    var out = short ? "" : UptimeFormat.header
    if domains.isEmpty || wanted.count < domains.count {
      let host = HostInfo.uptimeSeconds()
      out += UptimeFormat.line(name: "Domain-0", domid: 0, uptime: host, now: clock, short: short)
    }
    for guest in guests {
      guard let start = guest.startTime else { continue }
      out += UptimeFormat.line(name: guest.name, domid: guest.domid, uptime: max(0, Int(now.tv_sec) - Int(start)), now: clock, short: short)
    }
    Terminal.output(out)
  }

  /// "hh:mm:ss" in local time, as xl's strftime("%H:%M:%S").
  static func clock(_ seconds: time_t) -> String {
    var time = seconds
    var parts = tm()
    localtime_r(&time, &parts)
    func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
    return "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
  }
}
