#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Spawn
import XenStore

/// The steps of `xl create`, reported as each begins.
public enum CreatePhase: String, Sendable, CaseIterable {
  case connect = "connect to xenstore"
  case register = "allocate a domid and write the records"
  case spawn = "spawn the device model"
  case confirm = "wait for the device model to confirm"
  case receive = "load the saved state"
  case guest = "wait for the guest's console"
  case record = "record the device model as running"
  case cleanUp = "stop the device model and remove the records"
}

/// What `DomainCreator.create` tells its caller as it goes (all optional).
public struct CreateEvents: Sendable {
  /// A phase begins; `detail` says with what (the socket, the domid, the command).
  public var phase: @Sendable (CreatePhase, String) -> Void
  /// This create started the embedded xenstored.
  public var xenstoredStarted: @Sendable (SpawnConfirmation) -> Void
  /// While waiting for confirmation: at least every 100 ms, on the spawner's loop thread.
  public var waiting: @Sendable (SpawnProgress) -> Void

  public init(
    phase: @escaping @Sendable (CreatePhase, String) -> Void = { _, _ in },
    xenstoredStarted: @escaping @Sendable (SpawnConfirmation) -> Void = { _ in },
    waiting: @escaping @Sendable (SpawnProgress) -> Void = { _ in }
  ) {
    self.phase = phase
    self.xenstoredStarted = xenstoredStarted
    self.waiting = waiting
  }
}

/// A domain `xl create` made: records written, device model confirmed and detached.
public struct CreatedDomain: Sendable {
  public var domid: UInt32
  public var name: String
  public var uuid: DomainUUID
  public var deviceModel: DeviceModelCommand
  public var identity: ProcessIdentity
  /// What confirmed the device model ("running" from QMP, or the state node).
  public var confirmedBy: String
  /// From the spawn to the confirmation.
  public var confirmationTime: Duration
  public var logPath: String
  /// The first serial port's pseudo-terminal (`serial = "pty"`), as QEMU reported it.
  public var consoleTTY: String?
  /// The domain monitor, confirmed watching (nil when none was asked for).
  public var monitor: ProcessIdentity?
  /// The console line that confirmed the guest (`guest_ready_console`; nil without one).
  public var guest: GuestConfirmation?
}

/// The domain monitor's start, run beside the device model's confirmation.
typealias MonitorLaunch = Task<Result<ProcessIdentity, XenLightError>, Never>

/// `xl create`: records, device model, confirmation — or, on any failure, nothing left.
///
/// The flow after libxl's `libxl_domain_create_new`: connect to xenstore (starting the
/// embedded xenstored if none answers); in one transaction take the lowest free domid and
/// write the domain's records; spawn the device model through the spawn library's startup
/// monitor, recording its pid and identity from the hook; wait for the first of confirmation
/// (QMP or the xenstore state node), death, timeout or cancellation; then detach. On failure
/// the device model is stopped (the spawn library does it; after a confirmation, a safe stop
/// by identity), every record removed and the QMP socket file deleted, and one
/// `XenLightError` says what failed, how, and what the device model printed last.
///
/// Cancelling the task (Ctrl-C in `xl`) aborts at once, with the same cleanup. xenstore
/// writes run to completion even then, so that no write lands unseen.
public struct DomainCreator: Sendable {
  public var connector: XenStoreConnector
  public var paths: ToolstackPaths
  public var host: HostCapabilities
  /// Overrides `device_model_start_timeout`.
  public var timeout: Duration?
  /// How long xenstored may take over each step.
  public var xenstoreDeadline: XenStoreDeadline
  /// Rotate the device-model and console logs first (a restart by the domain monitor
  /// appends instead, so that the console log shows every boot).
  public var rotateLogs = true
  /// The config's text, kept as libxl keeps xl's userdata (`SavedConfig`) once the domid is
  /// known, so that a restart can re-create the domain.
  public var configText: String?
  /// Starts the domain's monitor and returns its identity once it is confirmed watching and
  /// recorded. It runs beside the device model's confirmation (the monitor acts only once the
  /// domain is recorded running); a create that fails removes the records, which ends it.
  public var monitor: (@Sendable (_ domid: UInt32, _ uuid: DomainUUID) async throws(XenLightError) -> ProcessIdentity)?
  /// The domain a restart replaces: it hands its name to this one inside the claim's
  /// transaction (`DomainStore.claim`), so no other create can take the name meanwhile.
  public var replacing: DomainReplacement?
  /// Restore and migrate-receive: the device model starts waiting for a migration stream
  /// (`-S -incoming defer`, confirmed in QEMU's `inmigrate` state); once it is confirmed,
  /// `incoming` feeds it the stream (its command QMP socket is free) and returns the state
  /// the guest is left in, recorded as the domain's run state. A failure is create's: the
  /// device model is stopped and every record removed.
  public var incoming: (@Sendable (_ domid: UInt32, _ command: DeviceModelCommand) async throws(XenLightError) -> RunState)?
  /// The PCI layout the incoming state was saved with (`PCISlots.pin`).
  public var incomingPCISlots: PCISlots?
  /// The name the logs go by, when the domain is created under a passing one (a migration's
  /// `<name>--incoming`): its console log goes on in the name it keeps.
  public var logName: String?
  /// `xl create -p`: the guest is created paused (QEMU's `-S`: no instruction runs until
  /// `xl unpause`), and no `guest_ready_console` is waited for.
  public var startsPaused = false

  public init(
    connector: XenStoreConnector, paths: ToolstackPaths, host: HostCapabilities = .current, timeout: Duration? = nil,
    xenstoreTimeout: Duration = .seconds(10)
  ) {
    self.connector = connector
    self.paths = paths
    self.host = host
    self.timeout = timeout
    self.xenstoreDeadline = XenStoreDeadline(limit: xenstoreTimeout, loop: connector.spawner.loop)
  }

  var spawner: Spawner { connector.spawner }

  public func create(_ domain: DomainConfiguration, events: CreateEvents = CreateEvents()) async throws(XenLightError) -> CreatedDomain {
    events.phase(.connect, connector.socketPath)
    let xenstore: XenStoreClient
    do {
      xenstore = try await connector.connect(started: events.xenstoredStarted)
    } catch where Task.isCancelled {
      throw XenLightError(.interrupted, "interrupted while connecting to xenstore; nothing was created")
    }
    defer { xenstore.close() }
    // On the client's loop thread throughout: the dozen or so requests in a row of a create
    // are each sent and resumed there, without two thread hops apiece.
    return try await xenstore.withLoopExecutor { () async throws(XenLightError) -> CreatedDomain in
      try await create(domain, xenstore: xenstore, events: events)
    }
  }

  private func create(_ domain: DomainConfiguration, xenstore: XenStoreClient, events: CreateEvents) async throws(XenLightError)
    -> CreatedDomain
  {
    try checkInterrupt("before any record was written")
    try ToolstackPaths.makeDirectories(paths.runDirectory)

    // A missing bridge is refused before anything is claimed (a script decides for itself).
    for nic in domain.nics where nic.script == nil {
      if let bridge = nic.bridge { try BridgePort.check(bridge, what: "vif \(nic.devid ?? 0)") }
    }
    events.phase(.register, domain.name)
    let account = try DeviceModelUser.account(for: domain.deviceModel)
    let run = Run(
      creator: self, domain: domain, store: DomainStore(xenstore: xenstore), startTime: Self.epochTime(), account: account)
    let domid = try await run.claim()
    var identity: ProcessIdentity?
    var monitor: MonitorLaunch?
    do {
      if let configText {
        // Its NICs pinned (random MACs and devids written out): a restart brings back the same ones.
        let pinned = domain.nics.isEmpty ? configText : SavedConfigEditor.replacingList("vif", with: domain.nics.map(\.canonical), in: configText)
        try SavedConfig.write(pinned, uuid: domain.uuid, domid: domid, paths: paths)
      }
      guard run.command(domid).target == .local else {
        // Under Xen, QEMU reads the domain's records as it starts: they come first.
        try await run.fill(domid)
        try checkInterrupt("after domain \(domid)'s records were written")
        return try await run.launch(domid, events: events, started: { identity = $0 }, monitorLaunched: { monitor = $0 })
      }
      // A local QEMU reads nothing from xenstore: the rest of the records are written while
      // it starts, and both must succeed. The writes end before anything is cleaned up.
      let fill = Task { () async -> Result<Void, XenLightError> in
        do throws(XenLightError) { return .success(try await run.fill(domid)) } catch { return .failure(error) }
      }
      let launched: Result<CreatedDomain, XenLightError>
      do throws(XenLightError) {
        launched = .success(
          try await run.launch(domid, events: events, records: fill, started: { identity = $0 }, monitorLaunched: { monitor = $0 }))
      } catch {
        launched = .failure(error)
      }
      let filled = await fill.value
      let created = try launched.get()
      try filled.get()
      return created
    } catch {
      events.phase(.cleanUp, "domain \(domid)")
      throw await run.cleanUp(domid, after: error, running: identity, monitor: monitor)
    }
  }

  /// One create's state and steps, once connected.
  private struct Run: Sendable {
    let creator: DomainCreator
    let domain: DomainConfiguration
    let store: DomainStore
    let startTime: String
    /// A restricted device model's account (nil: unrestricted).
    let account: DeviceModelUser.Account?

    var paths: ToolstackPaths { creator.paths }
    var deadline: XenStoreDeadline { creator.xenstoreDeadline }
    var xenstore: XenStoreClient { store.xenstore }

    /// `DomainCreator.uncancellable` on the xenstore client's executor: the step's requests
    /// go out and come back on its loop thread, without a hop each.
    func uncancellable<T: Sendable>(_ body: @escaping @Sendable () async throws(XenLightError) -> T) async throws(XenLightError) -> T {
      try await DomainCreator.uncancellable(on: xenstore.executor, body)
    }

    var consoleLog: String? { domain.serial.first == "pty" ? paths.consoleLog(name: logName) : nil }
    var logName: String { creator.logName ?? domain.name }

    func command(_ domid: UInt32) -> DeviceModelCommand {
      var command = DeviceModelCommand.build(
        for: domain, domid: domid, runDirectory: paths.runDirectory, host: creator.host, consoleLog: consoleLog,
        user: account?.user(domid: domid))
      if creator.incoming != nil { command.arguments += DeviceModelCommand.incomingArguments }
      if let slots = creator.incomingPCISlots { command.arguments = slots.pin(command.arguments) }
      if creator.startsPaused && creator.incoming == nil { command.arguments.append("-S") }
      return command
    }

    func records(_ domid: UInt32) -> (DomainLayout, [XenStoreRecord]) {
      let layout = DomainLayout(domid: domid, uuid: domain.uuid)
      let log = paths.deviceModelLog(name: logName)
      var records = layout.records(
        for: domain, deviceModel: command(domid), logPath: log, startTime: startTime, scriptDirectory: paths.scriptDirectory)
      if let consoleLog { records.append(XenStoreRecord(layout.consoleLogPathPath, consoleLog)) }
      return (layout, records)
    }

    /// The domid, with the roots of the domain's records written. Not cancellable: a commit
    /// whose reply we stopped waiting for would leave records nobody knows of. The lock keeps
    /// this host's concurrent creates from retrying each other's claims.
    func claim() async throws(XenLightError) -> UInt32 {
      try await uncancellable { () async throws(XenLightError) -> UInt32 in
        let lock = try await FileLock.acquire(paths.domainsLock)
        defer { lock.release() }
        let killUID = account.map { account in
          { @Sendable (domid: UInt32) -> (uid: UInt32, user: String) in
            let user = account.user(domid: domid)
            return (user.uid, user.name)
          }
        }
        let domid = try await deadline.run(xenstore, "allocating a domid") { () async throws(XenLightError) in
          try await store.claim(name: domain.name, replacing: creator.replacing, killUID: killUID) { [replacing = creator.replacing] domid in
            let (layout, all) = records(domid)
            // A restart's new domain is "restarting" until it runs: if its monitor dies
            // before, the next one re-creates it (`DomainMonitor.finishRestart`).
            var intent: [XenStoreRecord] = []
            if let replacing {
              intent.append(XenStoreRecord(layout.runStatePath, RunState.restarting.rawValue))
              if let monitor = replacing.monitor { intent.append(XenStoreRecord(layout.monitorIdentityPath, monitor.description)) }
              if let config = replacing.config { intent.append(XenStoreRecord(layout.libxlPath + "/restart-config", config)) }
            }
            return all.filter(layout.isRoot) + intent
          }
        }
        if let old = creator.replacing, old.renamedTo == nil {
          // Its records went with the claim; xenstored forgets the domain too.
          try? await deadline.run(xenstore, "releasing the replaced domain") { () async throws(XenLightError) in
            do { try await xenstore.release(domain: old.domid) } catch let error as XenStoreError where error.code == .ENOENT {} catch {
              throw XenStoreConnector.failure("cannot release domain \(old.domid)", error)
            }
          }
        }
        return domid
      }
    }

    /// The rest of the records, then the domain introduced and given its own nodes.
    func fill(_ domid: UInt32) async throws(XenLightError) {
      let (layout, all) = records(domid)
      try await uncancellable { () async throws(XenLightError) in
        try await deadline.run(xenstore, "writing the records") { () async throws(XenLightError) in
          try await store.fill(domid: domid, records: all.filter { !layout.isRoot($0) })
        }
        try await deadline.run(xenstore, "introducing the domain") { () async throws(XenLightError) in
          try await store.introduce(domid: domid, records: all)
        }
      }
    }

    /// Spawns the device model, recording it, and waits for its confirmation. `started`
    /// learns the identity as soon as it is recorded. With `records` (being written beside),
    /// the monitor starts once they are written: it reads them as it starts.
    func launch(
      _ domid: UInt32, events: CreateEvents, records: Task<Result<Void, XenLightError>, Never>? = nil,
      started: (ProcessIdentity) -> Void, monitorLaunched: (MonitorLaunch) -> Void
    ) async throws(XenLightError) -> CreatedDomain {
      let layout = DomainLayout(domid: domid, uuid: domain.uuid)
      let command = command(domid)
      let what = "domain \(domid) device model"
      if !creator.rotateLogs { try ToolstackPaths.makeDirectories(paths.logDirectory) }
      let log = creator.rotateLogs ? try paths.rotatedDeviceModelLog(name: logName) : paths.deviceModelLog(name: logName)
      if let consoleLog {
        if creator.rotateLogs { _ = try ToolstackPaths.rotated(consoleLog) } else { try ToolstackPaths.makeDirectories(paths.logDirectory + "/console") }
      }
      // Both QMP sockets listen before QEMU runs; QEMU holds them from exec on.
      let sockets: (command: Int32, events: Int32)
      do throws(SpawnError) {
        let commands = try QMPConnection.listen(path: command.qmpSocketPath, what: what)
        do throws(SpawnError) { sockets = (commands, try QMPConnection.listen(path: command.eventSocketPath, what: what)) } catch {
          close(commands)
          throw error
        }
      } catch {
        throw DomainCreator.describe(error, domain: domain.name, log: log, xenstoreLost: false)
      }
      defer { close(sockets.command); close(sockets.events) }
      let consoleStart = try GuestReadiness.startOffset(domain, consoleLog: consoleLog, target: command.target)
      var passed = [
        DeviceModelCommand.commandSocketDescriptor: sockets.command, DeviceModelCommand.eventSocketDescriptor: sockets.events,
      ]
      var confinement: Confinement?
      var files: [Int32] = []
      defer { for fd in files { close(fd) } }
      if let user = command.user, let chroot = command.chrootPath {
        try Restriction.check(domain, user: user)
        for file in command.passedFiles {
          let fd = try Restriction.open(file)
          files.append(fd)
          passed[file.descriptor] = fd
        }
        try Restriction.makeRoot(chroot, user: user)
        confinement = Confinement(uid: user.uid, gid: user.gid, groups: user.groups)
      }
      var taps: [Int32] = []
      defer { for fd in taps { close(fd) } }
      for tap in command.taps {
        let fd = try TapDevice.open(tap.name, what: "vif \(tap.devid)")
        taps.append(fd)
        passed[tap.descriptor] = fd
      }
      if !command.taps.isEmpty {
        // Hotplug scripts read the NICs' records: those are written first.
        if command.taps.contains(where: { $0.nic.script != nil }), case .failure(let error)? = await records?.value { throw error }
        let hotplug = VifHotplug(
          domid: domid, paths: paths, spawner: creator.spawner, xenstore: xenstore, xenstoreSocket: creator.connector.socketPath)
        for tap in command.taps { try await hotplug.connect(tap: tap.name, nic: tap.nic, devid: tap.devid) }
      }
      events.phase(.spawn, command.shellCommand)
      var spawnCommand = SpawnCommand(
        what: what, executable: command.executable, arguments: command.arguments,
        logPath: log,
        passedDescriptors: passed,
        timeout: creator.timeout ?? .milliseconds(Int64(domain.deviceModel.startTimeoutSeconds * 1000)))
      spawnCommand.confinement = confinement
      let readiness = DeviceModelReadiness(
        qmp: creator.incoming == nil ? .qmp(socketPath: command.qmpSocketPath) : .qmp(socketPath: command.qmpSocketPath, acceptedStates: ["inmigrate"]),
        statePath: layout.deviceModelStatePath, xenstore: xenstore)
      let (store, deadline, xenstore) = (self.store, self.deadline, self.xenstore)
      let confirmation: SpawnConfirmation
      var monitorTask: MonitorLaunch?
      do {
        let daemon = try await creator.spawner.start(spawnCommand, readiness: readiness) { identity in
          try await uncancellable { () async throws(XenLightError) in
            try await deadline.run(xenstore, "recording the device model") { () async throws(XenLightError) in
              try await store.write(layout.deviceModelRecords(pid: identity.pid, identity: identity.description))
            }
          }
        }
        if let start = creator.monitor {
          let uuid = domain.uuid
          monitorTask = Task { () async -> Result<ProcessIdentity, XenLightError> in
            if case .failure(let error)? = await records?.value { return .failure(error) }
            do throws(XenLightError) { return .success(try await start(domid, uuid)) } catch { return .failure(error) }
          }
          monitorLaunched(monitorTask!)
        }
        events.phase(.confirm, readiness.awaiting)
        let waiting = events.waiting
        confirmation = try await daemon.confirm { progress in
          waiting(progress)
          return false
        }
        started(confirmation.identity)
      } catch {
        // The spawn library has stopped the device model; a monitor that started sees the
        // records go and ends (cleanUp waits for it).
        // A monitor still starting is stopped by the spawn library; cleanUp waits for that
        // (or for a confirmed one to see the records go) while it removes them.
        monitorTask?.cancel()
        throw DomainCreator.describe(
          error, domain: domain.name, log: log, xenstoreLost: readiness.xenstoreFailed.happened.load(ordering: .relaxed))
      }
      try creator.checkInterrupt("after the device model confirmed")
      if let cpus = domain.cpus, command.target == .local {
        try await VCPUThread.pinAll(qmpSocket: command.qmpSocketPath, to: cpus, loop: creator.spawner.loop)
      }
      var tty: String?
      var guest: GuestConfirmation?
      if command.target == .local {
        // Under Xen, QEMU writes the state itself; here xl says it for QEMU, after QMP, with
        // the console's pty where libxl keeps it.
        var state = RunState.running
        if let incoming = creator.incoming {
          events.phase(.receive, "\(command.qmpSocketPath)")
          state = try await incoming(domid, command)
        } else if creator.startsPaused {
          state = .paused
        }
        tty = try await Self.configureStarted(command, domain: domain, loop: creator.spawner.loop)
        if creator.incoming == nil, !creator.startsPaused, let check = domain.guestReady, let consoleLog {
          // The guest (when asked), before the run state: the domain monitor takes over only a
          // guest that is up. A restored guest is up already: its console printed the line
          // before it was saved; a paused one prints nothing.
          events.phase(.guest, "a line matching \(ConfigValue.quoted(check.consolePattern)) in \(consoleLog)")
          guest = try await GuestReadiness(
            check: check, domain: domain.name, consoleLog: consoleLog, startOffset: consoleStart, qmpSocket: command.qmpSocketPath,
            loop: creator.spawner.loop
          ).wait()
        }
        events.phase(.record, layout.deviceModelStatePath)
        // The run state last: the domain monitor takes the domain over when it appears.
        var running = [XenStoreRecord(layout.deviceModelStatePath, "running")]
        if let tty { running.append(XenStoreRecord(layout.serialTTYPath(0), tty)) }
        running.append(XenStoreRecord(layout.runStatePath, state.rawValue))
        try await uncancellable { [running] () async throws(XenLightError) in
          try await deadline.run(xenstore, "recording the device model as running") { () async throws(XenLightError) in
            try await store.writeInOrder(running)
          }
        }
      }
      var created = CreatedDomain(
        domid: domid, name: domain.name, uuid: domain.uuid, deviceModel: command, identity: confirmation.identity,
        confirmedBy: confirmation.value, confirmationTime: confirmation.elapsed, logPath: log, consoleTTY: tty)
      created.guest = guest
      if let monitorTask { created.monitor = try await monitorTask.value.get() }
      return created
    }

    /// What QMP sets up once the device model confirmed, in one session: the VNC password
    /// (libxl's post-config step; until it is set, `password=on` refuses every client), the
    /// balloon set to `memory` when QEMU has room for more (`maxmem`), then the pty QEMU opened
    /// for serial port 0 (`query-chardev`, label `serial0`), returned.
    static func configureStarted(_ command: DeviceModelCommand, domain: DomainConfiguration, loop: EventLoop)
      async throws(XenLightError) -> String?
    {
      let password = domain.display.vnc ? domain.display.vncPassword : nil
      let balloonMiB = domain.maxMemoryMiB > domain.memoryMiB ? domain.memoryMiB : nil
      let wantsTTY = domain.serial.first == "pty"
      guard password != nil || balloonMiB != nil || wantsTTY else { return nil }
      let chardevs = try await QMPClient.session(path: command.qmpSocketPath, loop: loop) { qmp throws(XenLightError) in
        if let password {
          try await qmp.execute("set_password", [("protocol", .string("vnc")), ("password", .string(password))])
        }
        if let balloonMiB { try await qmp.execute("balloon", [("value", .number(Int64(balloonMiB) << 20))]) }
        return wantsTTY ? try await qmp.execute("query-chardev").arrayValue ?? [] : []
      }
      let serial = chardevs.first { $0["label"]?.stringValue == "serial0" }
      guard let filename = serial?["filename"]?.stringValue, filename.hasPrefix("pty:") else { return nil }
      return String(filename.dropFirst(4))
    }

    /// After `error`: stops the device model if it is still `running` (confirmed, then
    /// something else failed), removes every record and the QMP socket file. Returns the
    /// error to report, with any cleanup failure appended.
    func cleanUp(_ domid: UInt32, after error: any Error, running: ProcessIdentity?, monitor: MonitorLaunch?) async -> XenLightError {
      let failure = (error as? XenLightError) ?? XenLightError(.xenstore, "\(error)", cause: .init(error))
      let (creator, store, paths, deadline, xenstore) = (creator, store, paths, deadline, xenstore)
      let sockets = [command(domid).qmpSocketPath, command(domid).eventSocketPath]
      let problems = try? await uncancellable { () async throws(XenLightError) -> [String] in
        var problems: [String] = []
        if let running {
          do { _ = try await creator.spawner.stop(running) } catch { problems.append("\(error)") }
        }
        let command = command(domid)
        if let user = command.user {
          // Whatever the device model's uid still runs (a stray child, a half-started QEMU).
          do throws(SpawnError) {
            try await creator.spawner.killAll(
              uid: user.uid, reaperUID: user.reaperUID, lockPath: paths.reaperLock, what: "domain \(domid) device model")
          } catch {
            problems.append("\(error)")
          }
        }
        if let chroot = command.chrootPath { Restriction.removeRoot(chroot) }
        if domain.nics.contains(where: { $0.script != nil }) {
          let hotplug = VifHotplug(
            domid: domid, paths: paths, spawner: creator.spawner, xenstore: xenstore, xenstoreSocket: creator.connector.socketPath)
          // Their `remove` after a failed `add` may fail in turn: the failure reported is the first.
          _ = await hotplug.disconnectAll()
        }
        do throws(XenLightError) {
          let lock = try await FileLock.acquire(paths.domainsLock)
          defer { lock.release() }
          try await deadline.run(xenstore, "removing the records") { () async throws(XenLightError) in
            try await store.remove(domid: domid, vm: DomainLayout(domid: domid, uuid: domain.uuid).vmPath)
          }
        } catch where error.code == .xenstoreLost {
          // xenstored is gone, and its records with it.
        } catch {
          problems.append(error.message)
        }
        for socket in sockets { unlink(socket) }
        SavedConfig.remove(domid: domid, uuid: domain.uuid, paths: paths)
        // (A monitor restarting its domain is this process: nothing to wait for.)
        if case .success(let monitor)? = await monitor?.value, monitor.pid != getpid() {
          await DomainDestroyer.settle(monitor: monitor, spawner: creator.spawner)
        }
        return problems
      }
      guard let problems, !problems.isEmpty else { return failure }
      return XenLightError(
        failure.code, failure.message + "; cleaning up also failed: " + problems.joined(separator: "; "), errno: failure.errno,
        cause: failure.cause)
    }
  }

  fileprivate func checkInterrupt(_ when: String) throws(XenLightError) {
    if Task.isCancelled { throw XenLightError(.interrupted, "interrupted \(when)") }
  }

  /// The error for a device model that did not start: the spawn library's account (what,
  /// how, when), then what the device model printed last — inline if one line, else
  /// indented below — and where its log is.
  static func describe(_ error: SpawnError, domain: String, log: String, xenstoreLost: Bool) -> XenLightError {
    let code: XenLightError.Code
    switch error.code {
    case _ where xenstoreLost: code = .xenstoreLost
    case .timedOut: code = .timedOut
    case .aborted: code = .interrupted
    default: code = .deviceModelFailed
    }
    var sentence = error
    sentence.logTail = ""
    var message = "domain \"\(domain)\" not created: \(sentence)"
    if error.code == .aborted {
      let pid = error.pid.map { " [\($0)]" } ?? ""
      message = "domain \"\(domain)\" not created: interrupted after \(error.elapsed.readable); its device model\(pid) was stopped and its records removed"
    }
    let lines = error.logTail.split(separator: "\n").filter { !$0.allSatisfy(\.isWhitespace) }
    switch lines.count {
    case 0: message += " (log: \(log))"
    case 1: message += ": \(lines[0]) (log: \(log))"
    default: message += "; its last output (\(log)):\n" + lines.map { "    " + $0 }.joined(separator: "\n")
    }
    return XenLightError(code, message, errno: error.errno.map { $0.rawValue }, cause: .spawn(error))
  }

  /// Runs `body` in a task of its own that the caller's cancellation does not reach, on
  /// `executor` (the xenstore client's, for requests without a thread hop each).
  static func uncancellable<T: Sendable>(
    on executor: (any TaskExecutor)?, _ body: @escaping @Sendable () async throws(XenLightError) -> T
  ) async throws(XenLightError) -> T {
    let result = await Task.detached(executorPreference: executor) { () async -> Result<T, XenLightError> in
      do throws(XenLightError) { return .success(try await body()) } catch { return .failure(error) }
    }.value
    return try result.get()
  }

  /// Seconds since the epoch as libxl writes `start_time` ("%lu.%02d").
  static func epochTime() -> String {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    let hundredths = ts.tv_nsec / 10_000_000
    return "\(ts.tv_sec).\(hundredths < 10 ? "0" : "")\(hundredths)"
  }
}
