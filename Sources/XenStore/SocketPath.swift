#if canImport(Glibc)
import Glibc
#endif

/// Where xenstored's Unix socket is, found as libxenstore 4.17 (`xs_daemon_socket`) and
/// C xenstored find it.
public enum XenStoreSocketPath {
  /// The directory used when `XENSTORED_RUNDIR` is unset: Xen's `XEN_RUN_STORED`.
  public static let defaultRunDirectory = "/var/run/xenstored"

  /// `$XENSTORED_PATH` if set, else `$XENSTORED_RUNDIR/socket`, else `/var/run/xenstored/socket`.
  /// A variable that is set but empty still wins, as in libxenstore.
  public static func resolve(environment: [String: String]) -> String {
    if let path = environment["XENSTORED_PATH"] { return path }
    return (environment["XENSTORED_RUNDIR"] ?? defaultRunDirectory) + "/socket"
  }

  /// The path for this process's environment (`getenv`).
  public static var current: String {
    var environment: [String: String] = [:]
    for name in ["XENSTORED_PATH", "XENSTORED_RUNDIR"] {
      if let value = getenv(name) { environment[name] = String(cString: value) }
    }
    return resolve(environment: environment)
  }
}
