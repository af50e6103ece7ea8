#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Synchronization
import XenStore

/// Why a guest stopped, with Xen's shutdown reason codes (`SHUTDOWN_*` in xen/sched.h), as
/// the monitor logs them and picks the `on_*` action by.
public enum ShutdownReason: Int, Hashable, Sendable {
  case poweroff = 0, reboot = 1, suspend = 2, crash = 3, watchdog = 4, softReset = 5

  /// The reason a QMP event stands for, if it is a shutdown at all. The device model runs
  /// with `-no-shutdown -action reboot=shutdown,panic=pause,watchdog=pause`, so each of these
  /// leaves QEMU alive and stopped, for the monitor to act.
  public static func of(_ event: QMPClient.Event) -> ShutdownReason? {
    switch event.name {
    case "SHUTDOWN":
      switch event.data["reason"]?.stringValue ?? "" {
      case "guest-reset", "host-qmp-system-reset", "guest-reset-soft": return .reboot
      case "guest-panic": return .crash
      // A signal to QEMU ends it whatever -no-shutdown says: its exit decides (a crash,
      // unless the domain is being destroyed).
      case "subsystem-reset", "host-signal": return nil
      default: return .poweroff  // guest-shutdown, host-qmp-quit, host-signal, host-ui…
      }
    case "GUEST_PANICKED": return .crash
    case "WATCHDOG": return .watchdog
    default: return nil
    }
  }

  /// The reason a `query-status` answer stands for: a guest that stopped before the
  /// monitor was listening.
  public static func of(status: String) -> ShutdownReason? {
    switch status {
    case "shutdown": .poweroff
    case "guest-panicked": .crash
    case "watchdog": .watchdog
    default: nil
    }
  }

  /// The domain's action for this reason.
  public func action(in config: DomainConfiguration) -> DomainAction {
    switch self {
    case .poweroff: config.onPoweroff
    case .reboot: config.onReboot
    case .crash: config.onCrash
    case .watchdog: config.onWatchdog
    case .suspend, .softReset: .destroy
    }
  }
}

/// The per-domain monitor `xl create` leaves running, as Xen's xl does (xl_vmcontrol.c's
/// daemonised `create_domain` loop and `handle_domain_death`): it learns the guest's fate
/// from the device model — QMP events on the socket reserved for it, and the device
/// model's pidfd — and applies `on_poweroff`, `on_reboot`, `on_crash` and `on_watchdog`.
///
/// `restart` re-creates the domain as xl does: the old one destroyed, a new domid, the same
/// name, uuid and config (saved at create as libxl's userdata), and the monitor carries on
/// with it. The monitor ends when the domain is destroyed, by an action or by `xl destroy`.
/// xenstored dying under it is survived: the monitor starts it again on its saved state
/// (as every xl does) and picks up where it was.
public struct DomainMonitor: Sendable {
  public var connector: XenStoreConnector
  public var paths: ToolstackPaths
  public var host: HostCapabilities
  /// One line for the monitor's log (`xl-<name>.log`).
  public var log: @Sendable (String) -> Void

  public init(
    connector: XenStoreConnector, paths: ToolstackPaths, host: HostCapabilities = .current,
    log: @escaping @Sendable (String) -> Void
  ) {
    self.connector = connector
    self.paths = paths
    self.host = host
    self.log = log
  }

  var spawner: Spawner { connector.spawner }

  /// What happened, as the loop sees it.
  enum Event: Sendable {
    case qmp(QMPClient.Event)
    case qmpClosed
    case deviceModelExited
    case recordsChanged
    case xenstoreLost
  }

  /// How watching one domid ended.
  enum Outcome {
    case destroyed
    case restarted(UInt32)
  }

  /// Watches domain `domid` until it is destroyed. `ready` runs once, when the monitor is
  /// watching (QMP events subscribed, the device model's exit and the records watched).
  public func run(domid first: UInt32, ready: @escaping @Sendable () -> Void) async throws(XenLightError) {
    var domid = first
    var ready: (@Sendable () -> Void)? = ready
    while true {
      switch try await watch(domid, ready: ready) {
      case .destroyed: return
      case .restarted(let next): domid = next
      }
      ready = nil
    }
  }

  /// After xenstored died: waits, by inotify on its socket's directory, until a daemon
  /// answers again (the next `xl` starts it on its saved state), then connects. The monitor
  /// does not start one itself: who restarts the store, and when, stays the user's choice.
  private func reconnect() async throws(XenLightError) -> XenStoreClient {
    let socket = connector.socketPath
    let directory = socket.lastIndex(of: "/").map { String(socket[..<$0]) } ?? "."
    let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
    guard fd >= 0 else { throw XenLightError(.xenstore, "inotify_init1: \(String(cString: strerror(errno)))", errno: errno) }
    defer { close(fd) }
    guard inotify_add_watch(fd, directory, UInt32(IN_CREATE | IN_MOVED_TO | IN_ATTRIB)) >= 0 else {
      throw XenLightError(.xenstore, "cannot watch \(directory): \(String(cString: strerror(errno)))", errno: errno)
    }
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
      if let client = try await connector.connectIfRunning() { return client }
      do { _ = try await spawner.loop.wait(for: .readable, on: fd) } catch {
        throw XenLightError(.interrupted, "interrupted while waiting for xenstored")
      }
      while read(fd, &buffer, buffer.count) > 0 {}
    }
  }

  /// The running xenstored, or — if none answers — the next one to come up (the monitor
  /// never starts one itself).
  private func connect() async throws(XenLightError) -> XenStoreClient {
    if let client = try await connector.connectIfRunning() { return client }
    return try await reconnect()
  }

  /// One domid's watch: from subscribing to its end.
  private func watch(_ domid: UInt32, ready: (@Sendable () -> Void)?) async throws(XenLightError) -> Outcome {
    let session = QMPSession()
    let outcome: Result<Outcome, XenLightError>
    do throws(XenLightError) { outcome = .success(try await watch(domid, ready: ready, session: session)) } catch {
      outcome = .failure(error)
    }
    // Nothing the QMP reader holds is left in flight when the monitor moves on or exits.
    await session.client.withLock { $0 }?.finish()
    return try outcome.get()
  }

  private func watch(_ domid: UInt32, ready: (@Sendable () -> Void)?, session: QMPSession) async throws(XenLightError)
    -> Outcome
  {
    var xenstore = try await connect()
    defer { xenstore.close() }
    let domain = try await WatchedDomain.read(domid, DomainStore(xenstore: xenstore), paths: paths)
    let (events, sink) = AsyncStream.makeStream(of: Event.self)
    let spawner = self.spawner
    // The QMP session comes up in the background: its socket exists and queues us from the
    // moment QEMU was exec'd, and what happened before QEMU greets us is in `query-status`,
    // which is answered first, as a synthetic "status" event.
    let log = self.log
    let qmpTask = Task {
      do throws(XenLightError) {
        let qmp = try await QMPClient.connect(path: domain.eventSocket, loop: spawner.loop, what: "domain \(domid) device model")
        session.client.withLock { $0 = qmp }
        let status = try await qmp.execute("query-status")["status"]?.stringValue ?? ""
        sink.yield(.qmp(QMPClient.Event(name: "status", data: .string(status), timestampMicroseconds: 0)))
        for await event in qmp.events { sink.yield(.qmp(event)) }
      } catch {
        if !Task.isCancelled { log("domain \(domid): no QMP events (\(error.message))") }
      }
      sink.yield(.qmpClosed)
    }
    let exitTask = Task {
      if let identity = domain.deviceModel { try? await spawner.waitForExit(identity, what: "domain \(domid) device model") }
      if !Task.isCancelled { sink.yield(.deviceModelExited) }
    }
    var watchTask = try await Self.watchRecords(domid, xenstore, sink)
    defer {
      qmpTask.cancel()
      exitTask.cancel()
      watchTask.cancel()
      session.client.withLock { $0 }?.close()
    }
    ready?()
    log("Waiting for domain \(domain.name) (domid \(domid)) to die [pid \(getpid())]")

    // Until create records the domain running, the domain is create's: what happens is held,
    // and a create that fails removes the records, which ends the monitor.
    var live = try await domain.isRecordedRunning(DomainStore(xenstore: xenstore))
    var held: [Event] = []
    var queue: [Event] = []
    var preserved = false
    var iterator = events.makeAsyncIterator()
    while true {
      let event: Event
      if !queue.isEmpty {
        event = queue.removeFirst()
      } else if let next = await iterator.next() {
        event = next
      } else {
        return .destroyed
      }
      // xenstored may die while an event is handled: wait for it, then handle the event again.
      do throws(XenLightError) {
        let qmp = session.client.withLock { $0 }
        let store = DomainStore(xenstore: xenstore)
        if !live {
          switch event {
          case .recordsChanged:
            guard try await domain.exists(store) else {
              log("Domain \(domid) has been destroyed.")
              return .destroyed
            }
            if try await domain.isRecordedRunning(store) {
              live = true
              queue = held
              held = []
            }
            continue
          case .xenstoreLost:
            break
          case .deviceModelExited:
            // Create failed (or was killed) before the domain ran: nothing to watch. Its
            // records, if any are left, are `xl destroy`'s.
            log("domain \(domid): device model [\(domain.deviceModel?.pid ?? 0)] ended before the domain was created; nothing to watch")
            return .destroyed
          default:
            held.append(event)
            continue
          }
        }
        switch event {
        case .qmp(let qmpEvent):
          if qmpEvent.timestampMicroseconds > 0 {
            let t = qmpEvent.timestampMicroseconds
            log("QMP event \(qmpEvent) at \(t / 1_000_000).\(String(t % 1_000_000 + 1_000_000).dropFirst())")
          }
          let reason = qmpEvent.name == "status" ? ShutdownReason.of(status: qmpEvent.data.stringValue ?? "") : ShutdownReason.of(qmpEvent)
          if let reason, !preserved, try await !domain.isGoing(store) {
            switch try await act(on: reason, domain, store, qmp: qmp) {
            case .preserved: preserved = true
            case .ended(let outcome): return outcome
            }
          } else if qmpEvent.name == "STOP" || qmpEvent.name == "RESUME" || qmpEvent.data.stringValue == "paused" {
            let state: RunState = qmpEvent.name == "RESUME" ? .running : .paused
            if !preserved, (try? await domain.isGoing(store)) == false {
              try? await store.update(domid: domid, [domain.runState(state)])
            }
          }
        case .qmpClosed:
          break  // the exit decides
        case .deviceModelExited:
          if try await domain.isGoing(store) { continue }  // `xl destroy` stopped it
          if preserved {
            try? await store.update(domid: domid, [domain.runState(.crashed)])
            continue
          }
          log("domain \(domid): device model [\(domain.deviceModel?.pid ?? 0)] died unexpectedly")
          switch try await act(on: .crash, domain, store, qmp: nil) {
          case .preserved: preserved = true
          case .ended(let outcome): return outcome
          }
        case .recordsChanged:
          if try await !domain.exists(store) {
            log("Domain \(domid) has been destroyed.")
            return .destroyed
          }
        case .xenstoreLost:
          log("xenstore connection lost; waiting for xenstored to come back")
          watchTask.cancel()
          xenstore.close()
          xenstore = try await reconnect()
          log("xenstore connection restored")
          watchTask = try await Self.watchRecords(domid, xenstore, sink)
          sink.yield(.recordsChanged)
        }
      } catch {
        guard error.code == .xenstoreLost else { throw error }
        queue.insert(contentsOf: [.xenstoreLost, event], at: 0)
      }
    }
  }

  /// The QMP session once it is up (for the core dump).
  final class QMPSession: Sendable {
    let client = Mutex<QMPClient?>(nil)
  }

  enum Action {
    case preserved
    case ended(Outcome)
  }

  /// `handle_domain_death`: log, dump if asked, then destroy, preserve or restart.
  private func act(on reason: ShutdownReason, _ domain: WatchedDomain, _ store: DomainStore, qmp: QMPClient?)
    async throws(XenLightError) -> Action
  {
    let domid = domain.domid
    log("Domain \(domid) has shut down, reason code \(reason.rawValue) 0x\(String(reason.rawValue, radix: 16))")
    let saved = domain.savedConfig
    var action = saved.map { reason.action(in: $0.config) } ?? DomainAction.destroy
    log("Action for shutdown reason code \(reason.rawValue) is \(action.rawValue)")
    if action == .coredumpDestroy || action == .coredumpRestart {
      let file = paths.dumpFile(name: domain.name)
      log("dumping core to \(file)")
      do throws(XenLightError) {
        guard let qmp else { throw XenLightError(.deviceModelFailed, "the device model is gone") }
        if let slash = file.lastIndex(of: "/") { try ToolstackPaths.makeDirectories(String(file[..<slash])) }
        try await qmp.execute("dump-guest-memory", [("paging", .bool(false)), ("protocol", .string("file:" + file))])
      } catch {
        log("core dump failed (\(error.message)).")
      }
      action = action == .coredumpDestroy ? .destroy : .restart
    }
    switch action {
    case .preserve:
      try? await store.update(domid: domid, [domain.runState(reason == .crash || reason == .watchdog ? .crashed : .shutdown)])
      return .preserved
    case .renameRestart:
      let stamp = Self.utcStamp()
      let newName = "\(domain.name)-\(stamp)"
      log("Preserving domain \(domid) \(domain.name) with suffix \(stamp)")
      try? await store.update(domid: domid, [
        XenStoreRecord(domain.layout.domainPath + "/name", newName), XenStoreRecord(domain.layout.vmPath + "/name", newName),
        domain.runState(reason == .crash ? .crashed : .shutdown),
      ])
      try? await store.xenstore.rm(domain.layout.monitorIdentityPath)
      return .ended(try await restart(domain, saved, store, newUUID: true))
    case .restart, .softReset:
      log("Domain \(domid) needs to be cleaned up: destroying the domain")
      try await destroy(domain, store, keepConfig: true)
      return .ended(try await restart(domain, saved, store, newUUID: false))
    default:
      log("Domain \(domid) needs to be cleaned up: destroying the domain")
      try await destroy(domain, store, keepConfig: false)
      log("Done. Exiting now")
      return .ended(.destroyed)
    }
  }

  private func destroy(_ domain: WatchedDomain, _ store: DomainStore, keepConfig: Bool) async throws(XenLightError) {
    var destroyer = DomainDestroyer(spawner: spawner, lockPath: paths.domainsLock)
    destroyer.monitor = .isCaller
    destroyer.paths = keepConfig ? nil : paths
    _ = try await destroyer.destroy(domid: domain.domid, in: store)
  }

  /// Creates the domain again from its saved config; the monitor goes on with the new domid.
  private func restart(
    _ old: WatchedDomain, _ saved: (text: String, config: DomainConfiguration)?, _ store: DomainStore, newUUID: Bool
  ) async throws(XenLightError) -> Outcome {
    guard var config = saved?.config, let text = saved?.text else {
      log("Domain \(old.domid): no saved config to restart from; exiting")
      return .destroyed
    }
    if newUUID { config.uuid = .random() }
    log("Done. Rebooting now")
    var creator = DomainCreator(connector: connector, paths: paths, host: host)
    creator.rotateLogs = false
    creator.configText = text
    let created: CreatedDomain
    do {
      created = try await creator.create(config)
    } catch {
      log("restarting domain \(config.name) failed: \(error.message)")
      unlink(paths.savedConfig(domid: old.domid, uuid: old.uuid))
      throw error
    }
    unlink(paths.savedConfig(domid: old.domid, uuid: old.uuid))
    if let me = try? ProcessIdentity.of(pid: getpid()) {
      try? await store.write([XenStoreRecord(DomainLayout(domid: created.domid, uuid: config.uuid).monitorIdentityPath, me.description)])
    }
    return .restarted(created.domid)
  }

  /// Watches the domain's home and run state; a lost connection is reported as an event.
  private static func watchRecords(_ domid: UInt32, _ xenstore: XenStoreClient, _ sink: AsyncStream<Event>.Continuation)
    async throws(XenLightError) -> Task<Void, Never>
  {
    let watch: XenStoreWatch
    do {
      watch = try await xenstore.watch(["/local/domain/\(domid)/name", "/libxl/\(domid)/run-state"])
    } catch {
      throw XenStoreConnector.failure("cannot watch domain \(domid)", error)
    }
    return Task {
      do {
        for try await _ in watch { sink.yield(.recordsChanged) }
        if !Task.isCancelled { sink.yield(.xenstoreLost) }
      } catch {
        if !Task.isCancelled { sink.yield(.xenstoreLost) }
      }
    }
  }

  /// `YYYYMMDDTHHMMZ`, as xl suffixes a preserved domain's name.
  static func utcStamp() -> String {
    var now = time(nil)
    var parts = tm()
    gmtime_r(&now, &parts)
    func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
    return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))Z"
  }
}

/// What the monitor knows of the domain it watches.
struct WatchedDomain: Sendable {
  let domid: UInt32
  let uuid: DomainUUID
  let name: String
  let layout: DomainLayout
  let deviceModel: ProcessIdentity?
  let eventSocket: String
  /// Where `xl create` saved the config (read when an action needs it: the monitor may
  /// start before create has written it).
  let configPath: String

  /// The saved config's text and what it parses to (nil if missing or no longer valid).
  var savedConfig: (text: String, config: DomainConfiguration)? {
    try? SavedConfig.read(configPath)
  }

  static func read(_ domid: UInt32, _ store: DomainStore, paths: ToolstackPaths) async throws(XenLightError) -> WatchedDomain {
    do {
      let home = try await store.read(["name", "vm"], under: "/local/domain/\(domid)")
      guard let name = home["name"], let vm = home["vm"], let uuid = DomainUUID(String(vm.dropFirst(4))) else {
        throw XenLightError(.notFound, "no domain \(domid)")
      }
      let layout = DomainLayout(domid: domid, uuid: uuid)
      let notes = try await store.read(["device-model-identity", "qmp-events-path"], under: layout.libxlPath)
      return WatchedDomain(
        domid: domid, uuid: uuid, name: name, layout: layout,
        deviceModel: notes["device-model-identity"].flatMap(ProcessIdentity.init),
        eventSocket: notes["qmp-events-path"] ?? "", configPath: paths.savedConfig(domid: domid, uuid: uuid))
    } catch let error as XenLightError {
      throw error
    } catch {
      throw XenStoreConnector.failure("cannot read domain \(domid)'s records", error)
    }
  }

  func runState(_ state: RunState) -> XenStoreRecord { XenStoreRecord(layout.runStatePath, state.rawValue) }

  func currentRunState(_ store: DomainStore) async throws -> RunState? {
    try await DomainStore.readOptional(store.xenstore, layout.runStatePath).flatMap(RunState.init)
  }

  /// Create has recorded the domain running (or a later state): it is the monitor's now.
  func isRecordedRunning(_ store: DomainStore) async throws(XenLightError) -> Bool {
    do { return try await currentRunState(store) != nil } catch {
      throw XenStoreConnector.failure("cannot read domain \(domid)'s records", error)
    }
  }

  func exists(_ store: DomainStore) async throws(XenLightError) -> Bool {
    do { return try await DomainStore.readOptional(store.xenstore, layout.domainPath + "/name") != nil } catch {
      throw XenStoreConnector.failure("cannot read domain \(domid)'s records", error)
    }
  }

  /// Being destroyed, or gone already.
  func isGoing(_ store: DomainStore) async throws(XenLightError) -> Bool {
    do {
      guard try await exists(store) else { return true }
      return try await currentRunState(store) == .dying
    } catch let error as XenLightError {
      throw error
    } catch {
      throw XenStoreConnector.failure("cannot read domain \(domid)'s records", error)
    }
  }
}

/// xl's config of a domain, kept as libxl keeps xl's userdata (`userdata-d.<domid>.<uuid>.xl`)
/// so that a restart re-creates the same domain.
public enum SavedConfig {
  /// The config file's text with `settings` (xl create's KEY=VALUE arguments) as more lines.
  public static func text(file: String, settings: [String]) throws(XenLightError) -> String {
    var text = try FileIO.readText(file)
    for setting in settings { text += "\n" + setting }
    return text
  }

  /// The saved config at `path`: its text and what it parses to.
  public static func read(_ path: String) throws(XenLightError) -> (text: String, config: DomainConfiguration) {
    let text = try FileIO.readText(path)
    return (text, try DomainConfiguration(try ConfigFile.parse(text, file: path), source: path))
  }

  /// `text` is the file and its command-line settings; the uuid is pinned so a restart keeps it.
  public static func write(_ text: String, uuid: DomainUUID, domid: UInt32, paths: ToolstackPaths) throws(XenLightError) {
    try ToolstackPaths.makeDirectories(paths.libDirectory)
    var full = text
    if !full.hasSuffix("\n") { full += "\n" }
    full += "uuid = \"\(uuid)\"\n"
    try FileIO.writeText(full, to: paths.savedConfig(domid: domid, uuid: uuid))
  }
}
