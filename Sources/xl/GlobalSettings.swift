import XenLight

/// xl.conf, read before every command (not by the domain monitor, which its create's xl
/// has read it for): its warnings on stderr, and a file that does not parse ends xl (exit 1),
/// as Xen's xl does.
enum GlobalSettings {
  static func read(for arguments: ArraySlice<String>) {
    guard arguments.first != "monitor" else { return }
    do {
      for warning in try GlobalConfig.load().warnings { Terminal.error(warning.description) }
    } catch {
      Terminal.error("xl: \(error)")
      end(1)
    }
  }
}
