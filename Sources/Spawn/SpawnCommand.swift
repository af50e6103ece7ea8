#if canImport(Glibc)
import Glibc
#endif

/// What to spawn, and how long it may take to confirm.
public struct SpawnCommand: Sendable {
  /// The daemon's name in messages: "device model", "domain 3 device model".
  public var what: String
  /// A path, or a name looked up in `PATH` (left as is if not found, so exec reports ENOENT).
  public var executable: String
  /// Arguments after argv[0] (which is `executable`).
  public var arguments: [String]
  /// The daemon's whole environment; nil: the caller's, without `NOTIFY_SOCKET` (a caller
  /// run by systemd must not have its readiness reported by the daemon). Readiness sources
  /// may add to it.
  public var environment: [String: String]?
  /// nil: the caller's.
  public var workingDirectory: String?
  /// Where the daemon's stdout and stderr go, appended (created 0644 if missing); nil: /dev/null.
  /// Error messages quote what it wrote here since the spawn began.
  public var logPath: String?
  /// More of the caller's descriptors for the daemon: target in the daemon → the caller's fd.
  /// Targets 0–2 are stdio and taken. The caller's fds stay open in the caller.
  public var passedDescriptors: [Int32: Int32]
  /// How long from the start of the spawn the daemon has to confirm (`.seconds(.max)`: no limit).
  public var timeout: Duration
  /// After SIGTERM, how long a daemon being stopped has before SIGKILL.
  public var stopGrace: Duration
  /// Confines the daemon before exec (nil: none): see `Confinement`.
  public var confinement: Confinement?
  /// The daemon's nice value from exec on (nil: the caller's). A helper that starts beside
  /// a busier daemon can yield the processor to it; raising priority back needs privilege.
  public var niceness: Int32?

  public init(
    what: String, executable: String, arguments: [String] = [], environment: [String: String]? = nil,
    workingDirectory: String? = nil, logPath: String? = nil, passedDescriptors: [Int32: Int32] = [:],
    timeout: Duration = .seconds(60), stopGrace: Duration = .seconds(5)
  ) {
    self.what = what
    self.executable = executable
    self.arguments = arguments
    self.environment = environment
    self.workingDirectory = workingDirectory
    self.logPath = logPath
    self.passedDescriptors = passedDescriptors
    self.timeout = timeout
    self.stopGrace = stopGrace
  }
}

/// A daemon that cannot hurt the host, set up in the child between fork and exec (C,
/// `cspawn_confine`): new mount and IPC namespaces; libxl's rlimits for a restricted device
/// model (FSIZE 256 KiB, CORE 0, MSGQUEUE 0, LOCKS 0, MEMLOCK 0); groups `groups` and gid
/// `gid`; effective uid `uid` (every file it opens, it opens as `uid`) with only
/// CAP_SYS_CHROOT, CAP_SETUID and CAP_SETGID left, so that it can chroot and then become
/// `uid` for good, which drops them (QEMU's `-chroot` and `-runas uid:gid`).
public struct Confinement: Hashable, Sendable {
  public var uid: UInt32
  public var gid: UInt32
  /// Supplementary groups until the daemon drops them (e.g. `kvm`, for /dev/kvm).
  public var groups: [UInt32]

  public init(uid: UInt32, gid: UInt32, groups: [UInt32] = []) {
    self.uid = uid
    self.gid = gid
    self.groups = groups
  }
}

/// What one spawn's daemon receives, as readiness sources shape it before the fork.
public struct LaunchPlan: Sendable {
  /// The daemon's name in messages.
  public let what: String
  /// The system calls to use (injectable in this package's tests).
  package let system: SystemCalls
  /// The daemon's environment; a source adds e.g. `NOTIFY_SOCKET`.
  public var environment: [String: String]

  struct Passed: Sendable {
    var source: Int32
    var target: Int32
    var closeAfterStart: Bool
  }
  private(set) var passed: [Passed] = []

  init(what: String, system: SystemCalls, environment: [String: String]) {
    self.what = what
    self.system = system
    self.environment = environment
  }

  /// Passes the caller's `source` to the daemon as descriptor `target`. With
  /// `closeAfterStart`, the spawner closes the caller's copy once the monitor has it
  /// (e.g. the write end of a readiness pipe, so its EOF means the daemon closed it).
  public mutating func pass(_ source: Int32, as target: Int32, closeAfterStart: Bool) {
    passed.append(Passed(source: source, target: target, closeAfterStart: closeAfterStart))
  }

  /// Closes what the spawner was to close after the start: for a spawn that never started.
  func closeOwned() {
    for fd in passed where fd.closeAfterStart { system.close(fd.source) }
  }

  /// What a daemon inherits of `environment` (by default the caller's, `environ`): all of
  /// it but `NOTIFY_SOCKET`, which is the caller's own readiness channel.
  static func inheritedEnvironment(_ environment: [String: String] = currentEnvironment()) -> [String: String] {
    var result = environment
    result["NOTIFY_SOCKET"] = nil
    return result
  }

  static func currentEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var entry = environ
    while let pointer = entry.pointee {
      let text = String(cString: pointer)
      if let equals = text.firstIndex(of: "=") {
        result[String(text[..<equals])] = String(text[text.index(after: equals)...])
      }
      entry += 1
    }
    return result
  }
}
