#if canImport(Glibc)
import Glibc
#endif
import Spawn

/// A vif's hotplug script (`script=`, e.g. Xen's `vif-bridge`, `vif-route`,
/// `vif-openvswitch`), run as libxl runs it for an emulated NIC's tap (libxl_linux.c's
/// `libxl__hotplug_nic` and `get_hotplug_env`): arguments `add`|`remove` and `type_if=tap`,
/// environment `script`, `XENBUS_TYPE=vif`, `XENBUS_PATH=backend/vif/<domid>/<devid>`
/// (relative to dom0's home), `XENBUS_BASE_PATH=backend`, `netdev` (the NIC's gatewaydev),
/// `INTERFACE=<tap>` and `vif=vif<domid>.<devid>`, and `XENSTORED_PATH` so that its
/// xenstore-read/-write reach this toolstack's xenstored. The script reads the NIC's backend
/// records, which are written before it runs.
///
/// It is started through the spawn library (so its pid is never guessed at) and waited for
/// by its pidfd, for libxl's hotplug timeout. Failing, its words come from where Xen's
/// scripts leave them: the backend's `hotplug-error` (their `fatal`), else what it printed.
struct HotplugScript: Sendable {
  enum Action: String, Sendable { case add, remove }

  /// libxl's LIBXL_HOTPLUG_TIMEOUT.
  static let timeout = Duration.seconds(40)

  let path: String
  let domid: UInt32
  let devid: Int
  let gatewaydev: String?
  let xenstoreSocket: String
  let logPath: String

  /// `script` resolved as libxl does (`libxl__abs_path`): relative names are under `directory`.
  static func resolve(_ script: String, in directory: String) -> String {
    script.hasPrefix("/") ? script : directory + "/" + script
  }

  var backendPath: String { NetworkLayout(domid: domid, devid: devid).backendPath }

  func command(_ action: Action) -> SpawnCommand {
    var environment: [String: String] = [:]
    var entry = environ
    while let line = entry.pointee {
      let text = String(cString: line)
      if let equals = text.firstIndex(of: "=") { environment[String(text[..<equals])] = String(text[text.index(after: equals)...]) }
      entry += 1
    }
    environment.removeValue(forKey: "NOTIFY_SOCKET")
    environment["script"] = path
    environment["XENBUS_TYPE"] = "vif"
    environment["XENBUS_PATH"] = "backend/vif/\(domid)/\(devid)"
    environment["XENBUS_BASE_PATH"] = "backend"
    environment["netdev"] = gatewaydev ?? ""
    environment["INTERFACE"] = TapDevice.libxlName(domid: domid, devid: devid)
    environment["vif"] = "vif\(domid).\(devid)"
    environment["XENSTORED_PATH"] = xenstoreSocket
    if environment["PATH"] == nil { environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin" }
    return SpawnCommand(
      what: "vif \(devid) hotplug script \(path) \(action.rawValue)", executable: path,
      arguments: [action.rawValue, "type_if=tap"], environment: environment, logPath: logPath, timeout: Self.timeout)
  }

  /// Runs the script to its end. Its exit status 0 is success; anything else throws with the
  /// script's own words: `hotplug-error` as `hotplugError` reads it, else its output.
  func run(_ action: Action, spawner: Spawner, hotplugError: @Sendable () async -> String?) async throws(XenLightError) {
    // Xen's scripts send their stderr to /var/log/xen/xen-hotplug.log (xen-hotplug-common.sh)
    // and fail at once where that directory is missing.
    try? ToolstackPaths.makeDirectories("/var/log/xen")
    do {
      _ = try await spawner.spawn(command(action), readiness: UntilExit())
    } catch where error.code == .exitedZero {
      return
    } catch {
      let what = "vif \(devid): \(path) \(action.rawValue)"
      switch error.code {
      case .exited, .killedBySignal:
        let how = error.status.map { "\($0)" } ?? "failed"
        if let reported = await hotplugError(), !reported.isEmpty {
          throw XenLightError(.invalidConfig, "\(what) failed: \(reported)", cause: .spawn(error))
        }
        let output = error.logTail.split(separator: "\n").filter { !$0.allSatisfy(\.isWhitespace) }.joined(separator: "; ")
        throw XenLightError(
          .invalidConfig, "\(what) \(how)" + (output.isEmpty ? "" : ": \(output)"), cause: .spawn(error))
      case .timedOut:
        throw XenLightError(.timedOut, "\(what) did not finish within \(Self.timeout) (it was stopped)", cause: .spawn(error))
      case .aborted:
        throw XenLightError(.interrupted, "\(what) was interrupted", cause: .spawn(error))
      default:
        throw XenLightError(.io, "\(what): \(error)", cause: .spawn(error))
      }
    }
  }

  /// A script confirms nothing: the spawn ends with its exit (or the timeout), which this
  /// wait, cancelled then, leaves to the spawn library to report.
  private struct UntilExit: ReadinessSource, ReadinessWait {
    var awaiting: String { "its exit" }
    func wait(_ context: ReadinessContext) async throws -> String {
      try await Task.sleep(for: .seconds(365 * 86400))
      throw SpawnError(.protocolFailed, what: context.what, detail: "it ran for a year")
    }
  }
}
