import Synchronization
import XenLight

/// xl.conf, read before every command (not by the domain monitor, which its create's xl
/// has read it for): its warnings on stderr, and a file that does not parse ends xl (exit 1),
/// as Xen's xl does.
enum GlobalSettings {
  /// What `read` found (the defaults until then, and in the monitor).
  static var current: GlobalConfig { loaded.withLock { $0 } }
  private static let loaded = Mutex(GlobalConfig())

  static func read(for arguments: ArraySlice<String>) {
    guard arguments.first != "monitor" else { return }
    do {
      let config = try GlobalConfig.load()
      loaded.withLock { $0 = config }
      for warning in config.warnings { Terminal.error(warning.description) }
    } catch {
      Terminal.error("xl: \(error)")
      end(1)
    }
  }
}
