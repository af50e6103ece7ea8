import Spawn
import XenLight
import XenStore

/// What every verb on an existing domain starts with: xenstore (restored from its saved
/// state if the daemon died), the domain found by name or id, or exit 1.
struct Session {
  let paths: ToolstackPaths
  let spawner: Spawner
  let client: XenStoreClient
  var store: DomainStore { DomainStore(xenstore: client) }
  var control: DomainControl { DomainControl(store: store, loop: spawner.loop) }

  static func open(for reference: String) async throws(XenLightError) -> Session {
    let paths = ToolstackPaths.current()
    let spawner = Spawner()
    let connector = XenStoreConnector(paths: paths, spawner: spawner)
    guard let client = try await connector.connectRestoringSavedState(started: connector.noteRestart) else {
      throw XenLightError(.notFound, "no domain \"\(reference)\" (no xenstored answers at \(connector.socketPath))")
    }
    return Session(paths: paths, spawner: spawner, client: client)
  }

  /// The absolute path of this `xl` (the monitor is this program too).
  static var executable: String { XenStoreConnector.currentExecutable ?? CommandLine.arguments[0] }
}
