import ArgumentParser
import Spawn
import XenLight

/// `xl info [-n] [-x] [FIELD]`: the host, as Xen's xl prints it.
struct Info: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Print information about the host: CPUs, memory, the device model.",
    discussion: """
      Xen's field : value lines where they mean something without a hypervisor (host, \
      release, machine, nr_cpus, total_memory, free_memory in MiB…); device_model, \
      device_model_version and device_model_accel say what runs the guests. With FIELD, \
      only the value of the fields whose names start with it. The device model's version \
      is asked once per binary (qemu --version) and kept in $XEN_LIB_DIR/device-model-version.
      """)

  @Flag(name: [.customShort("n"), .customLong("numa")], help: "Accepted for xl's sake: one node here.")
  var numa = false

  @Flag(name: [.customShort("x"), .customLong("xenstore")], help: "Also print xenstore_features.")
  var xenstore = false

  @Argument(help: "Only the fields whose names start with this.") var field: String?

  func execute() async throws { await Self.run(field: numa ? nil : field, xenstore: xenstore) }

  /// The lines (also `FastCommandLine`'s `xl info [FIELD]`).
  static func run(field: String?, xenstore: Bool = false) async {
    let (executable, cache) = deviceModel
    // The spawner (and its event loop thread) only when QEMU must be asked.
    let version = await HostInfo.version(of: executable, cacheFile: cache, spawner: Spawner())
    print(executable, version: version, field: field, xenstore: xenstore)
  }

  /// `xl info [FIELD]` with the device model's version in its cache: printed on the main
  /// thread before any task runs (an operator's loop of `xl info` starts no thread). False
  /// when QEMU must be asked (then `run`).
  static func runFromCache(field: String?) -> Bool {
    let (executable, cache) = deviceModel
    guard let version = HostInfo.cachedVersion(of: executable, cacheFile: cache) else { return false }
    print(executable, version: version, field: field)
    return true
  }

  /// QEMU's path (found in $PATH) and where its version is cached.
  private static var deviceModel: (executable: String, cache: String) {
    (HostInfo.resolve("qemu-system-x86_64") ?? "qemu-system-x86_64 (not found in $PATH)",
     ToolstackPaths.current().libDirectory + "/device-model-version")
  }

  private static func print(_ executable: String, version: String?, field: String?, xenstore: Bool = false) {
    var lines = HostInfo.lines(deviceModel: executable, deviceModelVersion: version)
    if xenstore { lines.insert(("xenstore_features", "0x00000000"), at: lines.count - 1) }
    Terminal.output(HostInfo.text(lines, only: field))
  }
}
