#if canImport(Glibc)
import Glibc
#endif
import Spawn

/// Where `xl` keeps its run-time files (QMP sockets), device-model logs and the embedded
/// xenstored's durable state, so that every `xl` invocation agrees.
///
/// - Run directory: `$XEN_RUN_DIR`, else `/var/run/xen` when it can be created and written
///   (libxl's XEN_RUN_DIR), else `$XDG_RUNTIME_DIR/xen`, else `/tmp/xen-<uid>`.
/// - Log directory: `$XEN_LOG_DIR`, else `/var/log/xen` when writable (libxl's XEN_LOG_DIR),
///   else `$XDG_STATE_HOME/xl`, else `~/.local/state/xl`.
/// - Lib directory: `$XEN_LIB_DIR`, else `/var/lib/xen` when writable (libxl's XEN_LIB_DIR),
///   else `$XDG_STATE_HOME/xen`, else `~/.local/state/xen`. It must outlive a reboot: the
///   embedded xenstored keeps its state in `xenstored/` there.
///
/// The environment names are libxl's build-time constants, made overridable so that tests
/// and unprivileged users get private directories.
public struct ToolstackPaths: Hashable, Sendable {
  public var runDirectory: String
  public var logDirectory: String
  public var libDirectory: String
  /// Xen's hotplug scripts (`vif-bridge`…): `$XEN_SCRIPT_DIR`, else `/etc/xen/scripts`
  /// (libxl's XEN_SCRIPT_DIR). A vif's relative `script=` is found here.
  public var scriptDirectory: String

  public init(runDirectory: String, logDirectory: String, libDirectory: String, scriptDirectory: String = "/etc/xen/scripts") {
    self.runDirectory = runDirectory
    self.logDirectory = logDirectory
    self.libDirectory = libDirectory
    self.scriptDirectory = scriptDirectory
  }

  /// The directories for this process's environment and user (none are created).
  public static func current() -> ToolstackPaths {
    ToolstackPaths(runDirectory: resolveRunDirectory(), logDirectory: resolveLogDirectory(),
                   libDirectory: resolveLibDirectory(), scriptDirectory: environment("XEN_SCRIPT_DIR") ?? "/etc/xen/scripts")
  }

  /// The embedded xenstored's `--state-dir`: the store survives the daemon and the host.
  public var xenstoredStateDirectory: String { libDirectory + "/xenstored" }

  static func environment(_ name: String) -> String? {
    guard let value = getenv(name), value.pointee != 0 else { return nil }
    return String(cString: value)
  }

  private static func resolveRunDirectory() -> String {
    if let dir = environment("XEN_RUN_DIR") { return dir }
    if usable("/var/run/xen") { return "/var/run/xen" }
    if let runtime = environment("XDG_RUNTIME_DIR") { return runtime + "/xen" }
    return "/tmp/xen-\(getuid())"
  }

  private static func resolveLogDirectory() -> String {
    if let dir = environment("XEN_LOG_DIR") { return dir }
    if usable("/var/log/xen") { return "/var/log/xen" }
    if let state = environment("XDG_STATE_HOME") { return state + "/xl" }
    return (environment("HOME") ?? "/tmp") + "/.local/state/xl"
  }

  private static func resolveLibDirectory() -> String {
    if let dir = environment("XEN_LIB_DIR") { return dir }
    if usable("/var/lib/xen") { return "/var/lib/xen" }
    if let state = environment("XDG_STATE_HOME") { return state + "/xen" }
    return (environment("HOME") ?? "/tmp") + "/.local/state/xen"
  }

  /// `dir` is writable, or does not exist and its parent is.
  private static func usable(_ dir: String) -> Bool {
    if access(dir, W_OK | X_OK) == 0 { return true }
    guard errno == ENOENT, let slash = dir.lastIndex(of: "/") else { return false }
    return access(String(dir[..<slash]), W_OK | X_OK) == 0
  }

  /// Held while a domid is claimed or a domain's records removed, so that this host's
  /// concurrent `xl`s take turns instead of failing each other's xenstore transactions.
  public var domainsLock: String { runDirectory + "/domains.lock" }

  /// Held by each kill-by-uid reaper (libxl's `dm-reaper-lock`).
  public var reaperLock: String { runDirectory + "/dm-reaper-lock" }

  /// `qemu-dm-<name>.log` in the log directory (no rotation: see `rotatedDeviceModelLog`).
  public func deviceModelLog(name: String) -> String { "\(logDirectory)/qemu-dm-\(name).log" }

  /// `qemu-dm-<name>.log` in the log directory, after rotating older logs as libxl's
  /// `libxl_create_logfile` does: `.log.9` → `.log.10` … `.log` → `.log.1`.
  /// Creates the directory if needed.
  public func rotatedDeviceModelLog(name: String) throws(XenLightError) -> String {
    try Self.rotated(deviceModelLog(name: name))
  }

  /// `xl-<name>.log`: the domain monitor's log, rotated as the device model's.
  public func monitorLog(name: String) -> String { "\(logDirectory)/xl-\(name).log" }

  /// `console/guest-<name>.log`: every byte the guest wrote to its first serial port
  /// (xenconsoled's name with `--log=guest`).
  public func consoleLog(name: String) -> String { "\(logDirectory)/console/guest-\(name).log" }

  /// The lock the one monitor of domain `domid` holds while it watches it.
  public func monitorLock(domid: UInt32) -> String { "\(runDirectory)/monitor-\(domid).lock" }

  /// `$XEN_DUMP_DIR/<name>`, as xl names a core dump (default `<lib>/dump`).
  public func dumpFile(name: String) -> String {
    (Self.environment("XEN_DUMP_DIR") ?? libDirectory + "/dump") + "/" + name
  }

  /// libxl's userdata file for xl's config of domain `domid` (`userdata-d.<domid>.<uuid>.xl`):
  /// what a restart re-creates the domain from.
  public func savedConfig(domid: UInt32, uuid: DomainUUID) -> String {
    "\(libDirectory)/userdata-d.\(domid).\(uuid).xl"
  }

  /// `base` after rotating older copies as libxl's `libxl_create_logfile` does
  /// (`.9` → `.10` … `base` → `.1`), its directory created if needed.
  public static func rotated(_ base: String) throws(XenLightError) -> String {
    if let slash = base.lastIndex(of: "/") { try makeDirectories(String(base[..<slash])) }
    do {
      try LogRotation.rotate(base)
    } catch {
      throw XenLightError(.io, "cannot rotate \(error.from) to \(error.to): \(FileIO.describe(errno: error.errno))", errno: error.errno)
    }
    return base
  }

  /// The embedded xenstored's own log, which it rotates itself (`--log-file`).
  public var xenstoredLog: String { logDirectory + "/xenstored.log" }

  /// `mkdir -p dir` (mode 0755).
  public static func makeDirectories(_ dir: String) throws(XenLightError) {
    var partial = ""
    for component in dir.split(separator: "/") {
      partial += "/" + component
      if mkdir(partial, 0o755) != 0 {
        let e = errno
        var info = stat()
        if e == EEXIST && stat(partial, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR { continue }
        let why = e == EEXIST ? "it exists and is not a directory" : FileIO.describe(errno: e)
        throw XenLightError(.io, "cannot create \(partial): \(why)", errno: e == EEXIST ? ENOTDIR : e)
      }
    }
  }
}
