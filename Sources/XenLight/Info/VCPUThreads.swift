#if canImport(Glibc)
import Glibc
#endif
import CReactor
import Reactor
import Spawn

/// A guest's virtual CPUs as the host runs them: QEMU's vCPU threads (one per vCPU, or one
/// for all under single-threaded TCG), as QMP `query-cpus-fast` names them, read from
/// `/proc/<pid>/task/<tid>`, and pinned by their thread's affinity (`xl vcpu-list`, `vcpu-pin`).
public struct VCPUThread: Hashable, Sendable {
  public var index: Int
  public var tid: Int32
  /// The host CPU it last ran on.
  public var cpu: Int
  public var running: Bool
  public var seconds: Double
  /// The host CPUs it may run on (its hard affinity).
  public var affinity: [Int]

  /// The vCPU threads `threads` (index and thread id, from QMP `query-cpus-fast`) of device
  /// model `pid`, with what /proc says of each.
  public static func of(pid: Int32, threads: [(index: Int, tid: Int32)]) -> [VCPUThread] {
    threads.compactMap { index, tid in
      guard var thread = read(tid: tid, pid: pid) else { return nil }
      thread.index = index
      return thread
    }.sorted { $0.index < $1.index }
  }

  /// Index and thread id of each vCPU in a `query-cpus-fast` answer.
  static func threads(_ answer: JSON) -> [(index: Int, tid: Int32)] {
    (answer.arrayValue ?? []).compactMap { cpu in
      guard let index = cpu["cpu-index"]?.intValue, let tid = cpu["thread-id"]?.intValue else { return nil }
      return (Int(index), Int32(tid))
    }
  }

  /// `cpus=` at create: every vCPU thread of the device model behind `qmpSocket` pinned to
  /// `cpus`.
  static func pinAll(qmpSocket: String, to cpus: [Int], loop: EventLoop) async throws(XenLightError) {
    let answer = try await QMPClient.session(path: qmpSocket, loop: loop) { qmp throws(XenLightError) in
      try await qmp.execute("query-cpus-fast")
    }
    for (_, tid) in threads(answer) { try pin(tid: tid, to: cpus) }
  }

  private static func read(tid: Int32, pid: Int32) -> VCPUThread? {
    guard let stat = try? FileIO.readText("/proc/\(pid)/task/\(tid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
    // Fields after "(comm)" start at field 3: state is 3, utime 14, stime 15, processor 39.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 36, let user = Double(fields[11]), let system = Double(fields[12]), let cpu = Int(fields[36]) else { return nil }
    return VCPUThread(
      index: 0, tid: tid, cpu: cpu, running: fields[0] == "R", seconds: (user + system) / Double(sysconf(Int32(_SC_CLK_TCK))),
      affinity: affinity(of: tid))
  }

  /// glibc's cpu_set_t: 1024 CPUs.
  private static let maskBytes = 128

  /// The CPUs `tid` may run on.
  static func affinity(of tid: Int32) -> [Int] {
    var mask = [UInt8](repeating: 0, count: maskBytes)
    guard creactor_get_affinity(tid, &mask, UInt(mask.count)) == 0 else { return [] }
    return (0..<(mask.count * 8)).filter { mask[$0 / 8] & (1 << ($0 % 8)) != 0 }
  }

  /// Restricts `tid` to `cpus`.
  static func pin(tid: Int32, to cpus: [Int]) throws(XenLightError) {
    var mask = [UInt8](repeating: 0, count: maskBytes)
    for cpu in cpus where cpu < mask.count * 8 { mask[cpu / 8] |= UInt8(1 << (cpu % 8)) }
    guard creactor_set_affinity(tid, mask, UInt(mask.count)) == 0 else {
      let e = errno
      throw XenLightError(.invalidState, "cannot pin thread \(tid) to CPUs \(CPUList.text(cpus, hostCPUs: cpus.count)): \(String(cString: strerror(e)))", errno: e)
    }
  }
}

/// Xen's CPU lists: "all", "0-3,5", "^2" (all but), "none"; as `parse_cpurange` reads and
/// `print_bitmap` prints them.
public enum CPUList {
  /// The CPUs `text` names among `hostCPUs`, or nil if it is not a CPU list.
  public static func parse(_ text: String, hostCPUs: Int) -> [Int]? {
    var chosen = Set<Int>()
    for item in text.split(separator: ",", omittingEmptySubsequences: false) {
      var word = Substring(item)
      let excluded = word.hasPrefix("^")
      if excluded { word = word.dropFirst() }
      var range: ClosedRange<Int>
      if word == "all" {
        range = 0...(hostCPUs - 1)
      } else if let dash = word.firstIndex(of: "-") {
        guard let low = Int(word[..<dash]), let high = Int(word[word.index(after: dash)...]), low <= high else { return nil }
        range = low...high
      } else if let one = Int(word) {
        range = one...one
      } else {
        return nil
      }
      guard range.lowerBound >= 0, range.upperBound < hostCPUs else { return nil }
      if excluded { chosen.subtract(range) } else { chosen.formUnion(range) }
    }
    return chosen.sorted()
  }

  /// "all" for every host CPU, "none" for none, else ranges: "0-2,5".
  public static func text(_ cpus: [Int], hostCPUs: Int) -> String {
    if cpus.isEmpty { return "none" }
    if cpus == Array(0..<hostCPUs) { return "all" }
    var parts: [String] = []
    var start = cpus[0]
    var last = start
    for cpu in cpus.dropFirst() + [-2] {
      if cpu == last + 1 { last = cpu; continue }
      parts.append(start == last ? "\(start)" : "\(start)-\(last)")
      start = cpu
      last = cpu
    }
    return parts.joined(separator: ",")
  }

  /// The host's CPUs (configured, as Xen's `max_cpu_id + 1`).
  public static var hostCPUs: Int { max(Int(sysconf(Int32(_SC_NPROCESSORS_CONF))), 1) }
}

extension DomainConfiguration {
  /// `cpus = "0-1"`: a CPU list of this host (xl's syntax).
  static func readCPUs(_ r: inout SettingsReader, _ file: ConfigFile) throws(XenLightError) -> [Int]? {
    guard let text = try r.string("cpus") else { return nil }
    let host = CPUList.hostCPUs
    guard let cpus = CPUList.parse(text, hostCPUs: host), !cpus.isEmpty else {
      throw r.error(file["cpus"]!, "invalid CPU list \(ConfigValue.quoted(text)) (this host has CPUs 0-\(host - 1); e.g. \"all\", \"0-1\", \"^0\")")
    }
    return cpus
  }
}
