#if canImport(Glibc)
import Glibc
#endif
import Spawn

/// `xl info`: Xen's `field : value` lines where they mean something on a host whose guests
/// are QEMU processes, and the device model's own (its binary, version and accelerator)
/// where Xen prints the hypervisor's.
public enum HostInfo {
  /// The lines, in xl's order. `deviceModelVersion` is what `version(of:)` found.
  public static func lines(deviceModel: String, deviceModelVersion: String?, host: HostCapabilities = .current) -> [(String, String)] {
    var name = utsname()
    uname(&name)
    func field<T>(_ value: T) -> String {
      withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
    let cpuinfo = (try? FileIO.readText("/proc/cpuinfo")) ?? ""
    let processors = cpuinfo.split(separator: "\n\n")
    func cpuField(_ key: String) -> String? {
      processors.first?.split(separator: "\n").first { $0.hasPrefix(key) }?.split(separator: ":").last.map { String($0.drop { $0 == " " }) }
    }
    let cpus = CPUList.hostCPUs
    let cores = Int(cpuField("cpu cores") ?? "") ?? cpus
    let siblings = Int(cpuField("siblings") ?? "") ?? cores
    let sockets = Set(processors.compactMap { p in p.split(separator: "\n").first { $0.hasPrefix("physical id") } }).count
    let mhz = cpuField("cpu MHz").flatMap(Double.init) ?? 0
    let khz = Int((mhz * 1000).rounded())
    let thousandths = khz % 1000
    let (accelerator, why) = Accelerator.resolve(.auto, host: host)
    return [
      ("host", field(name.nodename)),
      ("release", field(name.release)),
      ("version", field(name.version)),
      ("machine", field(name.machine)),
      ("nr_cpus", "\(cpus)"),
      ("max_cpu_id", "\(cpus - 1)"),
      ("nr_nodes", "1"),
      ("cores_per_socket", "\(cores)"),
      ("threads_per_core", "\(max(siblings / max(cores, 1), 1))"),
      ("sockets", "\(max(sockets, 1))"),
      ("cpu_mhz", "\(khz / 1000).\(thousandths < 10 ? "00" : thousandths < 100 ? "0" : "")\(thousandths)"),
      ("total_memory", "\(meminfoKiB("MemTotal") / 1024)"),
      ("free_memory", "\(meminfoKiB("MemAvailable") / 1024)"),
      ("free_cpus", "0"),
      ("device_model", deviceModel),
      ("device_model_version", deviceModelVersion ?? "unknown"),
      ("device_model_accel", "\(accelerator.rawValue) (\(why))"),
      ("xend_config_format", "4"),
    ]
  }

  /// The host's memory (MemTotal), in KiB.
  public static func memoryKiB() -> Int { meminfoKiB("MemTotal") }

  /// A /proc/meminfo field ("MemTotal"), in KiB; 0 if absent.
  static func meminfoKiB(_ key: String) -> Int {
    let meminfo = (try? FileIO.readText("/proc/meminfo")) ?? ""
    guard let line = meminfo.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return 0 }
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
  }

  /// Whole seconds since the host booted (/proc/uptime's first field), 0 if unknown.
  public static func uptimeSeconds() -> Int {
    let text = (try? FileIO.readText("/proc/uptime")) ?? ""
    return Int(text.prefix { $0.isNumber }) ?? 0
  }

  /// `field : value` lines, the field padded to 22 as xl does; with `only`, just the value of
  /// the fields that start with it (xl info NAME).
  public static func text(_ lines: [(String, String)], only: String? = nil) -> String {
    var out = ""
    for (key, value) in lines {
      if let only {
        if key.hasPrefix(only) { out += value + "\n" }
      } else {
        out += DomainListFormat.pad(key, 22) + " : " + value + "\n"
      }
    }
    return out
  }

  /// The absolute path of `executable` (searched in $PATH when it has no slash).
  public static func resolve(_ executable: String) -> String? {
    if executable.contains("/") { return access(executable, X_OK) == 0 ? executable : nil }
    let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") where access("\(directory)/\(executable)", X_OK) == 0 {
      return "\(directory)/\(executable)"
    }
    return nil
  }

  /// What `executable --version` says ("7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)"), cached in
  /// `cacheFile` under the binary's size and modification time: asked once per binary, as an
  /// operator's loop of `xl info` should not start a QEMU each time.
  public static func version(of executable: String, cacheFile: String, spawner: Spawner) async -> String? {
    var info = stat()
    guard stat(executable, &info) == 0 else { return nil }
    let key = "\(executable) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    if let cached = try? FileIO.readText(cacheFile), let newline = cached.firstIndex(of: "\n"), cached[..<newline] == key {
      let value = cached[cached.index(after: newline)...].split(separator: "\n").first.map(String.init)
      if let value, !value.isEmpty { return value }
    }
    // It prints and exits: the "failure" to confirm carries its output.
    let log = cacheFile + ".out"
    let command = SpawnCommand(what: "device model version", executable: executable, arguments: ["--version"], logPath: log, timeout: .seconds(10))
    let never = CheckReadiness(awaiting: "its exit") { _ in
      try await Task.sleep(for: .seconds(3600))
      return ""
    }
    var output = ""
    do { _ = try await spawner.spawn(command, readiness: never) } catch { output = error.logTail }
    unlink(log)
    guard let line = output.split(separator: "\n").first(where: { $0.contains(" version ") }),
      let range = line.firstRange(of: " version ")
    else { return nil }
    let version = String(line[range.upperBound...])
    try? FileIO.writeText(key + "\n" + version + "\n", to: cacheFile)
    return version
  }
}
