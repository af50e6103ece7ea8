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

  /// Runs `verb` on the domain `reference` names; any failure is xl's error and exit code.
  static func control(
    _ reference: String, _ verb: (DomainControl, DomainControl.Target) async throws(XenLightError) -> Void
  ) async throws {
    do {
      let session = try await open(for: reference)
      defer { session.client.close() }
      try await verb(session.control, try await session.control.target(reference))
    } catch {
      throw ExitStatus.fail(error)
    }
  }

  /// The absolute path of this `xl` (the monitor is this program too).
  static var executable: String { XenStoreConnector.currentExecutable ?? CommandLine.arguments[0] }
}
