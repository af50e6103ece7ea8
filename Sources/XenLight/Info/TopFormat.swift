/// xentop's batch output (`xl top -b`): its header and one row per domain, its columns and
/// widths. CPU(%) is the share of one host CPU since the previous sample; networks and block
/// devices are counted from the config, their traffic is not measured here (0 and -).
public enum TopFormat {
  static let columns: [(String, Int)] = [
    ("NAME", 10), ("STATE", 6), ("CPU(sec)", 10), ("CPU(%)", 6), ("MEM(k)", 10), ("MEM(%)", 6), ("MAXMEM(k)", 10),
    ("MAXMEM(%)", 9), ("VCPUS", 5), ("NETS", 4), ("NETTX(k)", 8), ("NETRX(k)", 8), ("VBDS", 4), ("VBD_OO", 8),
    ("VBD_RD", 8), ("VBD_WR", 8), ("VBD_RSECT", 10), ("VBD_WSECT", 10), ("SSID", 4),
  ]

  public static var header: String {
    columns.map { DomainListFormat.lpad($0.0, $0.1) }.joined(separator: " ") + "\n"
  }

  /// xentop's state letters, in its order: dying, shutdown, blocked, crashed, paused, running.
  static func state(_ d: DomainInfo) -> String {
    let letters = d.stateLetters  // xl's order: r b p s c d
    func has(_ i: Int) -> Bool { letters[letters.index(letters.startIndex, offsetBy: i)] != "-" }
    return [(5, "d"), (3, "s"), (1, "b"), (4, "c"), (2, "p"), (0, "r")].map { has($0.0) ? $0.1 : "-" }.joined()
  }

  /// One domain's row; `cpuPercent` from the previous sample (0 on the first), memory
  /// shares of the host's `hostMemoryKiB`.
  public static func row(_ d: DomainInfo, cpuPercent: Double, hostMemoryKiB: Int, nets: Int = 0, vbds: Int = 0) -> String {
    func pct(_ part: Int) -> String { DomainListFormat.formatTenths(hostMemoryKiB > 0 ? Double(part) * 100 / Double(hostMemoryKiB) : 0) }
    let name = d.name.count > 10 ? String(d.name.prefix(10)) : d.name
    let values = [
      name, state(d), "\(Int(d.cpuSeconds))", DomainListFormat.formatTenths(cpuPercent), "\(d.memoryKiB)", pct(d.memoryKiB),
      "\(d.maxMemoryKiB)", pct(d.maxMemoryKiB), "\(d.onlineVcpus)", "\(nets)", "0", "0", "\(vbds)", "-", "-", "-", "-", "-", "0",
    ]
    return zip(values, columns).map { DomainListFormat.lpad($0.0, $0.1.1) }.joined(separator: " ") + "\n"
  }
}
