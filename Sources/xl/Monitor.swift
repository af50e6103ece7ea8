#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Spawn
import XenLight

/// `xl monitor DOMID`: the domain monitor `xl create` leaves behind (not for users; shown
/// by `xl help monitor`). Writes "ready" on descriptor 3 once watching, for the spawn
/// library's confirmation; logs to its stdout (`xl-<name>.log`).
struct Monitor: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Watch a domain and apply its on_poweroff/on_reboot/on_crash/on_watchdog (started by xl create).",
    shouldDisplay: false)

  @Argument(help: "The domain id.") var domid: UInt32

  @Option(name: .long, help: "The descriptor to write \"ready\" on once watching (-1: none).")
  var readyDescriptor: Int32 = 3

  func execute() async throws { try await Self.watch(domid: domid, readyDescriptor: readyDescriptor) }

  /// Watches domain `domid` until it is gone, writing "ready" on `readyDescriptor` (if >= 0)
  /// once watching.
  static func watch(domid: UInt32, readyDescriptor: Int32) async throws {
    let paths = ToolstackPaths.current()
    let monitor = DomainMonitor(
      connector: XenStoreConnector(paths: paths, spawner: Spawner()), paths: paths, log: { Terminal.output($0 + "\n") })
    do {
      // SIGTERM or SIGINT: stop between actions, never inside one (`MonitorStop`).
      try await Interrupts.handling({ [stop = monitor.stop] _ in stop.request() }) {
        try await monitor.run(domid: domid) {
          guard readyDescriptor >= 0 else { return }
          _ = "ready\n".withCString { write(readyDescriptor, $0, 6) }
          close(readyDescriptor)
        }
      }
    } catch {
      throw ExitStatus.fail(error)
    }
  }

  /// Starts `xl monitor <domid>` confirmed (its "ready" line) and records its identity in
  /// the domain's records, so that nothing but it is ever signalled as the monitor.
  static func start(domid: UInt32, uuid: DomainUUID, name: String, paths: ToolstackPaths, connector: XenStoreConnector)
    async throws(XenLightError) -> ProcessIdentity
  {
    let log = try ToolstackPaths.rotated(paths.monitorLog(name: name))
    var command = SpawnCommand(
      what: "domain \(domid) monitor", executable: Toolstack.executable, arguments: ["monitor", "\(domid)"],
      logPath: log, timeout: .seconds(30))
    // It starts beside the device model, which needs the processor more (on two cores the
    // monitor's start-up slowed QEMU's by about 4 ms): 10 nicer until it watches, then back
    // to xl's own priority. Only root may raise a priority again, so only root lowers it.
    let priority = Priority.current()
    if geteuid() == 0, let priority { command.niceness = min(19, priority + 10) }
    let layout = DomainLayout(domid: domid, uuid: uuid)
    // The xenstored of this create: if it is gone, so is the create (never start another here).
    guard let client = try await connector.connectIfRunning() else {
      throw XenLightError(.xenstoreLost, "domain \(domid) (\(name)): xenstored went away before its monitor could start")
    }
    defer { client.close() }
    let store = DomainStore(xenstore: client)
    do {
      // On the client's loop thread, as create: no thread hop per step beside QEMU's start.
      return try await client.withLoopExecutor { () async throws -> ProcessIdentity in
        let daemon = try await connector.spawner.start(command, readiness: .notificationPipe(descriptor: 3)) { identity in
          try await store.write([XenStoreRecord(layout.monitorIdentityPath, identity.description)])
        }
        let identity = try await daemon.confirm().identity
        if command.niceness != nil, let priority { Priority.set(priority, of: identity) }
        return identity
      }
    } catch {
      throw XenLightError(.monitorFailed, "domain \(domid) (\(name)): its monitor did not start: \(error) (log: \(log))")
    }
  }
}

/// A process's nice value (`getpriority`/`setpriority`).
enum Priority {
  static func current() -> Int32? {
    errno = 0
    let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
    return value == -1 && errno != 0 ? nil : value
  }

  /// Sets the nice value of the process `identity` names, if it still does (a priority, not
  /// a signal: at worst a reused pid's process would run at xl's own priority).
  static func set(_ value: Int32, of identity: ProcessIdentity) {
    guard (try? ProcessIdentity.of(pid: identity.pid)) == identity else { return }
    setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(identity.pid), value)
  }
}
