#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Synchronization
import XenStore

/// Why a guest stopped, with Xen's shutdown reason codes (`SHUTDOWN_*` in xen/sched.h), as
/// the monitor logs them and picks the `on_*` action by.
public enum ShutdownReason: Int, Hashable, Sendable, CaseIterable {
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
  /// Asks the monitor to stop between actions (`xl monitor`'s SIGTERM).
  public var stop = MonitorStop()
  /// The monitor locks it holds: its domid's, and in a restart the new domid's from the claim on.
  private let locks = MonitorLocks()

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
    case stopRequested

    /// The QMP session is subscribed (its first event is `query-status`'s answer), or will
    /// never be.
    var endsTheWaitForQMP: Bool {
      switch self {
      case .qmp(let event): event.name == "status"
      case .qmpClosed, .deviceModelExited: true
      default: false
      }
    }
  }

  /// How watching one domid ended.
  enum Outcome {
    case destroyed
    case restarted(UInt32)
  }

  /// Watches domain `domid` until it is destroyed. `ready` runs once, when the monitor is
  /// watching (QMP events subscribed, the device model's exit and the records watched).
  /// One monitor per domain: a second one for the same domid is refused (`.monitorFailed`).
  public func run(domid first: UInt32, ready: @escaping @Sendable () -> Void) async throws(XenLightError) {
    guard try locks.prepare(first, paths: paths) else {
      throw XenLightError(.monitorFailed, "domain \(first) already has a monitor (\(paths.monitorLock(domid: first)) is locked); not starting another")
    }
    locks.advance(to: first)
    defer { locks.releaseAll() }
    var domid = first
    var ready: (@Sendable () -> Void)? = ready
    while true {
      switch try await watch(domid, ready: ready) {
      case .destroyed: return
      case .restarted(let next):
        domid = next
        locks.advance(to: next)
      }
      ready = nil
    }
  }

  /// After xenstored died: waits, by inotify on its socket's directory, until a daemon
  /// answers again (the next `xl` starts it on its saved state), then connects. The monitor
  /// does not start one itself: who restarts the store, and when, stays the user's choice.
  private func reconnect() async throws(XenLightError) -> XenStoreClient {
    let directory = DirectoryWatch.directory(of: connector.socketPath)
    let appearing: DirectoryWatch
    do { appearing = try DirectoryWatch(directory) } catch {
      throw XenLightError(.xenstore, "cannot watch \(directory): \(error)", errno: error.rawValue)
    }
    while true {
      if let client = try await connector.connectIfRunning() { return client }
      do { try await appearing.next(on: spawner.loop) } catch {
        throw XenLightError(.interrupted, "interrupted while waiting for xenstored")
      }
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
    if try await domain.runState(DomainStore(xenstore: xenstore)) == .restarting {
      // A monitor died restarting it: its intent is finished here.
      ready?()
      log("Domain \(domid) (\(domain.name)) was being restarted; finishing the restart")
      return try await finishRestart(domain, DomainStore(xenstore: xenstore))
    }
    let (events, sink) = AsyncStream.makeStream(of: Event.self)
    stop.deliver { sink.yield(.stopRequested) }
    let spawner = self.spawner
    // The QMP session comes up in the background: its socket exists and queues us from the
    // moment QEMU was exec'd, and what happened before QEMU greets us is in `query-status`,
    // which is answered first, as a synthetic "status" event.
    let log = self.log
    let qmpTask = Task {
      do throws(XenLightError) {
        // Bounded: a device model that never greets is judged by its exit alone.
        let what = "domain \(domid) device model", path = domain.eventSocket, loop = spawner.loop
        let greeted: QMPClient?
        do {
          greeted = try await first(within: .seconds(30)) { () async throws -> QMPClient in
            try await QMPClient.connect(path: path, loop: loop, what: what)
          }
        } catch let error as XenLightError {
          throw error
        } catch {
          throw XenLightError(.interrupted, "\(what): interrupted waiting for its QMP greeting")
        }
        guard let qmp = greeted else {
          throw XenLightError(.deviceModelFailed, "\(what): no QMP greeting on \(path) within 30 s")
        }
        session.client.withLock { $0 = qmp }
        let status = try await qmp.execute("query-status")["status"]?.stringValue ?? ""
        sink.yield(.qmp(QMPClient.Event(name: "status", data: .string(status), timestampMicroseconds: 0)))
        // A restart's guest waits (-S) until its monitor listens: from here on, nothing it
        // does goes unseen. (`xl create -p` is left paused: it has no restart-config.)
        if status == "prelaunch", domain.isRestarted {
          log("domain \(domid): resuming the guest, its events watched")
          try await qmp.execute("cont")
        }
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
    log("Waiting for domain \(domain.name) (domid \(domid)) to die [pid \(getpid())]")
    // Ready once QMP events are subscribed (or QMP has failed: the exit decides then). A
    // reboot QEMU reported before that is seen only as the status "shutdown", whose reason
    // is gone; so whoever waits for the monitor (xl create, the next xl verb) knows that
    // from then on no shutdown goes unexplained.
    var ready = ready

    // Until create records the domain running, the domain is create's: what happens is held,
    // and a create that fails removes the records, which ends the monitor.
    var machine = MonitorMachine(live: try await domain.isRecordedRunning(DomainStore(xenstore: xenstore)))
    var held: [Event] = []
    var queue: [Event] = []
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
      if ready != nil, event.endsTheWaitForQMP {
        ready?()
        ready = nil
      }
      // xenstored may die while an event is handled: wait for it, then handle the event again.
      do throws(XenLightError) {
        let store = DomainStore(xenstore: xenstore)
        if machine.live, case .qmp(let qmpEvent) = event, qmpEvent.timestampMicroseconds > 0 {
          let t = qmpEvent.timestampMicroseconds
          log("QMP event \(qmpEvent) at \(t / 1_000_000).\(String(t % 1_000_000 + 1_000_000).dropFirst())")
        }
        switch machine.decide(try await input(for: event, domain, store, live: machine.live)) {
        case .ignore:
          break
        case .hold:
          held.append(event)
        case .takeOver:
          queue = held
          held = []
        case .act(let reason):
          var qmp = session.client.withLock { $0 }
          if case .deviceModelExited = event {
            log("domain \(domid): device model [\(domain.deviceModel?.pid ?? 0)] died unexpectedly")
            qmp = nil
          }
          switch try await act(on: reason, domain, store, qmp: qmp) {
          case .preserved: machine.preserve()
          case .ended(let outcome): return outcome
          }
        case .record(let state):
          try await store.update(domid: domid, [domain.runState(state)])
        case .end:
          if case .deviceModelExited = event {
            // Create failed (or was killed) before the domain ran: nothing to watch. Its
            // records, if any are left, are `xl destroy`'s.
            log("domain \(domid): device model [\(domain.deviceModel?.pid ?? 0)] ended before the domain was created; nothing to watch")
            return .destroyed
          }
          log("Domain \(domid) has been destroyed.")
          return try await claimedRestart(store).map(Outcome.restarted) ?? .destroyed
        case .reconnect:
          log("xenstore connection lost; waiting for xenstored to come back")
          watchTask.cancel()
          xenstore.close()
          xenstore = try await reconnect()
          log("xenstore connection restored")
          watchTask = try await Self.watchRecords(domid, xenstore, sink)
          sink.yield(.recordsChanged)
        case .stop:
          log("Asked to stop: domain \(domid) is left unmonitored (the next xl command starts another monitor)")
          return .destroyed
        }
      } catch {
        guard error.code == .xenstoreLost else { throw error }
        queue.insert(contentsOf: [.xenstoreLost, event], at: 0)
      }
    }
  }

  /// The machine's input for `event`: the facts read from the records that its decision
  /// needs (none for what a domain not yet handed over holds, or for QMP events that say nothing).
  private func input(for event: Event, _ domain: WatchedDomain, _ store: DomainStore, live: Bool)
    async throws(XenLightError) -> MonitorMachine.Input
  {
    switch event {
    case .qmp(let qmpEvent):
      guard live, MonitorMachine.Input.of(qmpEvent, going: false) != .nothing else { return .nothing }
      return .of(qmpEvent, going: try await domain.isGoing(store))
    case .qmpClosed: return .nothing
    case .deviceModelExited: return .deviceModelExited(going: live ? try await domain.isGoing(store) : false)
    case .recordsChanged:
      let exists = try await domain.exists(store)
      let running = live ? true : exists ? try await domain.isRecordedRunning(store) : false
      return .recordsChanged(exists: exists, recordedRunning: running)
    case .xenstoreLost: return .xenstoreLost
    case .stopRequested: return .stopRequested
    }
  }

  /// The QMP session once it is up (for the core dump).
  final class QMPSession: Sendable {
    let client = Mutex<QMPClient?>(nil)
  }

  /// The monitor locks (`ToolstackPaths.monitorLock`) one monitor holds: the domid it
  /// watches, and in a restart the new domid's, taken at the new domain's claim.
  final class MonitorLocks: Sendable {
    private struct Held {
      var current: (domid: UInt32, lock: FileLock)?
      var prepared: (domid: UInt32, lock: FileLock)?
    }
    private let held = Mutex(Held())

    /// Takes `domid`'s lock unless this monitor holds it already; false if another does.
    func prepare(_ domid: UInt32, paths: ToolstackPaths) throws(XenLightError) -> Bool {
      if held.withLock({ $0.current?.domid == domid || $0.prepared?.domid == domid }) { return true }
      guard let lock = try FileLock.take(paths.monitorLock(domid: domid)) else { return false }
      let dropped = held.withLock { held in
        defer { held.prepared = (domid, lock) }
        return held.prepared?.lock
      }
      dropped?.release()
      return true
    }

    /// The monitor now watches `domid`: its prepared lock becomes the current one.
    func advance(to domid: UInt32) {
      let released = held.withLock { held -> FileLock? in
        guard let prepared = held.prepared, prepared.domid == domid else { return nil }
        defer { held.current = prepared; held.prepared = nil }
        return held.current?.lock
      }
      released?.release()
    }

    /// A restart that failed: the new domid's lock goes.
    func dropPrepared() {
      held.withLock { held in defer { held.prepared = nil }; return held.prepared?.lock }?.release()
    }

    func releaseAll() {
      let all = held.withLock { held in
        defer { held = Held() }
        return [held.current?.lock, held.prepared?.lock].compactMap { $0 }
      }
      for lock in all { lock.release() }
    }
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
    let action = domain.savedConfig.map { reason.action(in: $0.config) }
    log("Action for shutdown reason code \(reason.rawValue) is \((action ?? .destroy).rawValue)")
    let plan = MonitorPlan.of(reason, action: action)
    if plan.dump {
      let file = paths.dumpFile(name: domain.name)
      log("dumping core to \(file)")
      do throws(XenLightError) {
        guard let qmp else { throw XenLightError(.deviceModelFailed, "the device model is gone") }
        if let slash = file.lastIndex(of: "/") { try ToolstackPaths.makeDirectories(String(file[..<slash])) }
        try await qmp.execute("dump-guest-memory", [("paging", .bool(false)), ("protocol", .string("file:" + file))])
      } catch {
        log("core dump failed (\(error.message)).")
      }
    }
    switch plan.then {
    case .preserve(let state):
      try await store.update(domid: domid, [domain.runState(state)])
      return .preserved
    case .restart(renamed: true, let kept):
      let stamp = Self.utcStamp()
      log("Preserving domain \(domid) \(domain.name) with suffix \(stamp)")
      return .ended(try await restart(domain, store, renamedTo: "\(domain.name)-\(stamp)", kept: kept))
    case .restart(renamed: false, let kept):
      log("Domain \(domid) needs to be cleaned up: restarting it")
      return .ended(try await restart(domain, store, renamedTo: nil, kept: kept))
    case .destroy:
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

  /// Restarts the domain: the intent recorded first (run state `restarting`, and for
  /// `rename-restart` the name the old domain keeps), then carried out by `finishRestart`.
  private func restart(_ old: WatchedDomain, _ store: DomainStore, renamedTo: String?, kept: RunState)
    async throws(XenLightError) -> Outcome
  {
    var intent = [old.runState(.restarting)]
    if let renamedTo {
      intent += [XenStoreRecord(old.layout.restartAsPath, renamedTo), XenStoreRecord(old.layout.restartKeptPath, kept.rawValue)]
    }
    guard try await store.update(domid: old.domid, intent) else {
      log("Domain \(old.domid) has been destroyed.")
      return .destroyed
    }
    return try await finishRestart(old, store)
  }

  /// A restart of this monitor's whose new domain was claimed when xenstored went away under
  /// it (the create failed; the claim stood): that domain is "restarting" and names this
  /// monitor. It is finished here, not left to the next `xl`.
  private func claimedRestart(_ store: DomainStore) async throws(XenLightError) -> UInt32? {
    guard let me = try? ProcessIdentity.of(pid: getpid()) else { return nil }
    for orphan in try await MonitorKeeper.domains(in: store, where: { $0.monitor == me && $0.runState == .restarting }) {
      log("Domain \(orphan.domid) (\(orphan.name)), this monitor's restart, was left half-created; finishing it")
      return orphan.domid
    }
    return nil
  }

  /// Carries out a recorded restart, from wherever it was left: the old device model stopped
  /// (by its identity: at most once), then the domain created again from its saved config.
  /// The old records hold the name until the new domain's claim takes it over in the same
  /// transaction (`DomainReplacement`): no other create can take the name meanwhile. The
  /// monitor goes on with the new domid, whose monitor lock it takes at the claim.
  private func finishRestart(_ old: WatchedDomain, _ store: DomainStore) async throws(XenLightError) -> Outcome {
    let notes: [String: String]
    do { notes = try await store.read(["restart-as", "restart-kept", "restart-config"], under: old.layout.libxlPath) } catch {
      throw XenStoreConnector.failure("cannot read domain \(old.domid)'s records", error)
    }
    // A restart's new domain cut short before its own config was saved: the one it came from.
    let own = old.savedConfig
    guard let saved = own ?? notes["restart-config"].flatMap(WatchedDomain.savedConfig(at:)) else {
      log("Domain \(old.domid): no saved config to restart from; destroying it")
      try await destroy(old, store, keepConfig: false)
      return .destroyed
    }
    var stopper = DomainDestroyer(spawner: spawner)
    stopper.monitor = .isCaller
    stopper.removesRecords = false
    _ = try await stopper.destroy(domid: old.domid, in: store)
    // Where create makes its sockets (a create cut short may not have recorded them).
    let sockets = DeviceModelCommand.socketPaths(runDirectory: paths.runDirectory, domid: old.domid)
    unlink(sockets.commands)
    unlink(sockets.events)

    var config = saved.config
    let renamedTo = notes["restart-as"]
    if renamedTo != nil { config.uuid = .random() } else if own == nil { config.uuid = old.uuid }
    log("Done. Rebooting now")
    var creator = DomainCreator(connector: connector, paths: paths, host: host)
    creator.rotateLogs = false
    creator.configText = saved.text
    // The new guest starts stopped; its monitor resumes it once it watches its events (`watch`).
    creator.startsPaused = true
    let me: ProcessIdentity
    do { me = try ProcessIdentity.of(pid: getpid()) } catch {
      throw XenLightError(.monitorFailed, "cannot read this monitor's identity: \(error)")
    }
    // The new domain names this monitor from its claim on (`DomainReplacement.monitor`).
    creator.replacing = DomainReplacement(
      domid: old.domid, layout: old.layout, renamedTo: renamedTo,
      keptRunState: notes["restart-kept"].flatMap(RunState.init) ?? .shutdown, monitor: me,
      config: saved.path)
    let (paths, locks) = (self.paths, self.locks)
    creator.monitor = { domid, _ throws(XenLightError) in
      guard try locks.prepare(domid, paths: paths) else {
        throw XenLightError(.monitorFailed, "domain \(domid) already has a monitor")
      }
      return me
    }
    let created: CreatedDomain
    do {
      created = try await creator.create(config)
    } catch {
      locks.dropPrepared()
      if error.code == .notFound {
        log("Domain \(old.domid) has been destroyed meanwhile (\(error.message)).")
        return .destroyed
      }
      log("restarting domain \(config.name) failed: \(error.message)")
      // xenstored gone under the create (its error may say so only as a cause): the monitor
      // waits for it and goes on from what the records say then.
      if error.code != .xenstoreLost, await !store.xenstore.answers() {
        throw XenLightError(.xenstoreLost, error.message)
      }
      throw error
    }
    if renamedTo == nil { SavedConfig.remove(domid: old.domid, uuid: old.uuid, paths: paths) }
    if let first = notes["restart-config"], first != paths.savedConfig(domid: created.domid, uuid: config.uuid) { unlink(first) }
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
  /// Created by a restart (it records the config it came from): started stopped, for its
  /// monitor to resume.
  let isRestarted: Bool

  /// The saved config's text and what it parses to (nil if missing or no longer valid).
  var savedConfig: (text: String, config: DomainConfiguration, path: String)? { Self.savedConfig(at: configPath) }

  static func savedConfig(at path: String) -> (text: String, config: DomainConfiguration, path: String)? {
    guard let saved = try? SavedConfig.read(path) else { return nil }
    return (saved.text, saved.config, path)
  }

  static func read(_ domid: UInt32, _ store: DomainStore, paths: ToolstackPaths) async throws(XenLightError) -> WatchedDomain {
    do {
      let home = try await store.read(["name", "vm"], under: "/local/domain/\(domid)")
      guard let name = home["name"], let vm = home["vm"], let uuid = DomainUUID(String(vm.dropFirst(4))) else {
        throw XenLightError(.notFound, "no domain \(domid)")
      }
      let layout = DomainLayout(domid: domid, uuid: uuid)
      let notes = try await store.read(["device-model-identity", "qmp-events-path", "restart-config"], under: layout.libxlPath)
      return WatchedDomain(
        domid: domid, uuid: uuid, name: name, layout: layout,
        deviceModel: notes["device-model-identity"].flatMap(ProcessIdentity.init),
        eventSocket: notes["qmp-events-path"] ?? "", configPath: paths.savedConfig(domid: domid, uuid: uuid),
        isRestarted: notes["restart-config"] != nil)
    } catch let error as XenLightError {
      throw error
    } catch {
      throw XenStoreConnector.failure("cannot read domain \(domid)'s records", error)
    }
  }

  func runState(_ state: RunState) -> XenStoreRecord { XenStoreRecord(layout.runStatePath, state.rawValue) }

  /// The recorded run state (nil: create has not recorded one yet).
  func runState(_ store: DomainStore) async throws(XenLightError) -> RunState? {
    do { return try await currentRunState(store) } catch {
      throw XenStoreConnector.failure("cannot read domain \(domid)'s records", error)
    }
  }

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

  /// Removes domain `domid`'s saved config, and the half-written copy of a writer killed
  /// mid-write (`FileIO.writeText`'s temporary).
  public static func remove(domid: UInt32, uuid: DomainUUID, paths: ToolstackPaths) {
    let path = paths.savedConfig(domid: domid, uuid: uuid)
    unlink(path)
    unlink(path + ".tmp")
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

extension XenStoreClient {
  /// Whether xenstored still answers on this connection (a read of the root's permissions).
  func answers() async -> Bool {
    do {
      _ = try await getPermissions("/")
      return true
    } catch {
      return error.code != .connectionLost
    }
  }
}
