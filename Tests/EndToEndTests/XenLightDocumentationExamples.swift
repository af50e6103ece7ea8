import InteropSupport
import Spawn
import Testing
import TestSupport
import XenLight
import XenStore

// The code of Sources/XenLight/XenLight.docc, compiled here so that it cannot rot: each region
// between `// doc-snippet:` and `// end-doc-snippet` is a code block of the article, word for
// word (scripts/check-doc-snippets.sh compares them). It runs here, not in XenLightTests,
// because a guest needs QEMU and a xenstored.

// doc-snippet: xenlight-create-destroy
/// Creates a small local guest from xl.cfg text, pauses and unpauses it, and destroys it.
func createPauseAndDestroy(paths: ToolstackPaths, xenstoreSocket: String) async throws(XenLightError) {
  let text = """
    name = "example"
    type = "hvm"
    memory = 32
    vnc = 0
    nographic = 1
    device_model_target = "local"
    """
  let domain = try DomainConfiguration(ConfigFile.parse(text, file: "example.cfg"), source: "example.cfg")

  // xenstore at xenstoreSocket; if none answers, the `xenstored` beside this executable is
  // started there (with its state in paths.libDirectory), as `xl` does.
  let spawner = Spawner()
  let connector = XenStoreConnector(socketPath: xenstoreSocket, paths: paths, spawner: spawner)

  // Records in one transaction, the device model spawned and confirmed (QMP), then detached.
  let created = try await DomainCreator(connector: connector, paths: paths).create(domain)
  print("domain \(created.domid) (\(created.name)): device model [\(created.identity.pid)] confirmed by \(created.confirmedBy)")

  let client = try await connector.connect()
  defer { client.close() }
  let store = DomainStore(xenstore: client)

  // Pause and unpause through the device model's QMP socket; `xl list` shows "p" meanwhile.
  let control = DomainControl(store: store, loop: spawner.loop)
  try await control.pause(control.target(created.name))
  try await control.unpause(control.target(created.name))

  // The device model stopped by its recorded identity, then every record removed.
  var destroyer = DomainDestroyer(spawner: spawner, lockPath: paths.domainsLock)
  destroyer.paths = paths
  let destroyed = try await destroyer.destroy(domid: created.domid, in: store)
  print("domain \(destroyed.domid) destroyed: \(destroyed.deviceModel)")
}
// end-doc-snippet

// doc-snippet: xenlight-monitor
/// Watches a created domain until it is destroyed, applying its on_poweroff, on_reboot,
/// on_crash and on_watchdog actions, as `xl create -F` does in the foreground.
func monitor(domid: UInt32, paths: ToolstackPaths) async throws(XenLightError) {
  let connector = XenStoreConnector(paths: paths, spawner: Spawner())
  let monitor = DomainMonitor(connector: connector, paths: paths, log: { line in print(line) })
  try await monitor.run(domid: domid, ready: { print("watching domain \(domid)") })
}
// end-doc-snippet

/// Runs the article's create-to-destroy code against real QEMU and the project's xenstored.
@Suite(.serialized) struct XenLightDocumentationExampleTests {
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func createPauseAndDestroyRuns() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let paths = ToolstackPaths(runDirectory: bed.runDirectory, logDirectory: bed.logDirectory, libDirectory: bed.libDirectory)
    try await createPauseAndDestroy(paths: paths, xenstoreSocket: bed.socketPath)
    try await bed.expectNoLeftovers()
  }
}
