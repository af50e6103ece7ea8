#if canImport(Glibc)
import Glibc
#endif
import Spawn

/// What `xl migrate` did.
public struct MigratedDomain: Sendable {
  public var domid: UInt32
  public var name: String
  public var totals: QEMUMigration.Totals
  /// From QEMU stopping the guest for the last pass to the receiver's report that it runs.
  public var stoppedFor: Duration?
  /// From `migrate` to the report.
  public var elapsed: Duration
}

/// `xl migrate`: the sending side of `MigrationProtocol` (read its table first). The
/// transport (`sh -c <rune>`, its stdin and stdout one end of a socket pair, its stderr
/// ours) is started through the spawn library and confirmed by the receiver's banner.
public struct MigrationSender: Sendable {
  public var toolstack: Toolstack
  /// Where each step is told (`--debug` prints them).
  public var log: @Sendable (String) -> Void = { _ in }
  /// For fault-injection tests only: `XL_MIGRATION_FAULT=<step>` makes this process die
  /// (SIGKILL) when it reaches that step of the table (banner, preamble, stream, ready, go).
  public var fault: String?

  public init(toolstack: Toolstack) { self.toolstack = toolstack }

  public func migrate(_ reference: String, rune: String, configFile: String?) async throws(XenLightError) -> MigratedDomain {
    let loop = toolstack.spawner.loop
    let found = try await toolstack.withStore { store throws(XenLightError) -> (DomainControl.Target, String, Bool) in
      await MigrationLeftovers.resolve(store, toolstack: toolstack, log: log)
      let control = DomainControl(store: store, loop: loop)
      let target = try await control.target(reference)
      try control.require(target, "migrate", allowed: [.running, .paused])
      guard target.deviceModelTarget == .local, target.qmpSocket != nil else {
        throw XenLightError(.invalidState, "cannot migrate domain \(target.domid) (\(target.name)): only a local device model's state can be sent here")
      }
      if let text = try? await DomainStore.readOptional(store.xenstore, MigrationProtocol.Note.path(target.domid)),
        let other = MigrationProtocol.Note(text), toolstack.spawner.isRunning(other.driver)
      {
        throw XenLightError(.invalidState, "cannot migrate domain \(target.domid) (\(target.name)): xl [\(other.driver.pid)] is migrating it")
      }
      let config = try DomainSaver.configText(target, file: configFile, paths: toolstack.paths)
      let note = MigrationProtocol.Note(
        step: .outgoing, driver: try MigrationProtocol.Note.me(), name: target.name, wasRunning: target.runState != .paused)
      try await note.write(target.domid, store)
      _ = try await store.update(domid: target.domid, [XenStoreRecord(MigrationProtocol.Note.runePath(target.domid), rune)])
      return (target, config, note.wasRunning)
    }
    guard let (target, config, wasRunning) = found else {
      throw XenLightError(.notFound, "no domain \"\(reference)\" (no xenstored answers at \(toolstack.connector.socketPath))")
    }
    let clock = ContinuousClock()
    let began = clock.now
    let (ours, theirs) = try DescriptorStream.socketPair()
    defer { close(ours) }
    let stream = DescriptorStream(fd: ours, source: "migration receiver stream", loop: loop)
    stream.makeNonBlocking()

    // Steps 1-4: any failure leaves the guest ours, running again as it was.
    let totals: QEMUMigration.Totals
    do throws(XenLightError) {
      try await startTransport(rune, socket: theirs, stream: stream)
      step("preamble", stream)
      try await stream.write(SaveFileHeader(config: config).encoded, what: "header")
      step("stream", stream)
      log("migration sender: sending domain \(target.domid) (\(target.name))")
      totals = try await QMPClient.session(path: target.qmpSocket!, loop: loop, what: "domain \(target.domid) device model") {
        qmp throws(XenLightError) in try await QEMUMigration.send(qmp, into: ours)
      }
      // QEMU made the socket blocking for its writes: ours must not block the pool.
      stream.makeNonBlocking()
      step("ready", stream)
      try await stream.expect(MigrationProtocol.ready, what: "ready message")
    } catch {
      let resumed = await undo(target, wasRunning: wasRunning, renamed: false)
      throw XenLightError(error.code, "\(error.message); migration failed, \(resumed)", errno: error.errno, cause: error.cause)
    }
    log("migration sender: Target has acknowledged transfer.")

    // Step 5: renamed away and noted, then `go`: from its write on, the guest is the receiver's.
    do throws(XenLightError) {
      try await withStore { store throws(XenLightError) in
        try await store.rename(domid: target.domid, to: MigrationProtocol.awayName(target.name))
        let note = MigrationProtocol.Note(step: .outgoingGo, driver: try MigrationProtocol.Note.me(), name: target.name, wasRunning: wasRunning)
        try await note.write(target.domid, store)
      }
    } catch {
      let resumed = await undo(target, wasRunning: wasRunning, renamed: true)
      throw XenLightError(error.code, "\(error.message); migration failed, \(resumed)", errno: error.errno, cause: error.cause)
    }
    log("migration sender: Giving target permission to start.")
    step("go", stream)
    do throws(XenLightError) {
      try await stream.write(MigrationProtocol.go, what: "GO message")
      step("report", stream)
    } catch {
      // Nothing was written: the receiver cannot have it.
      let resumed = await undo(target, wasRunning: wasRunning, renamed: true)
      throw XenLightError(error.code, "\(error.message); migration failed, \(resumed)", errno: error.errno, cause: error.cause)
    }

    // Step 6: the receiver's report.
    let status: UInt8
    do throws(XenLightError) {
      try await stream.expect(MigrationProtocol.report, what: "success/failure report message")
      status = try await stream.readExactly(1, what: "success/failure status")[0]
    } catch {
      // In doubt: ask the receiver's side what it has.
      let settled = await MigrationLeftovers.settleInDoubt(
        target.domid, uuid: target.layout.uuid, name: target.name, wasRunning: wasRunning, rune: rune, toolstack: toolstack, log: log)
      throw XenLightError(error.code, "\(error.message) after the domain was handed over; \(settled)", errno: error.errno)
    }
    guard status == 0 else {
      log("migration sender: Target reports startup failure (status code \(status)).")
      try? await stream.expect(MigrationProtocol.go, what: "permission for sender to resume")
      let resumed = await undo(target, wasRunning: wasRunning, renamed: true)
      throw XenLightError(.deviceModelFailed, "Migration failed due to problems at target; \(resumed)")
    }
    let reported = clock.now
    log("migration sender: Target reports successful startup.")
    _ = try await toolstack.destroy("\(target.domid)")
    var stoppedFor: Duration?
    if totals.stoppedAtMicroseconds > 0 {
      var now = timespec()
      clock_gettime(CLOCK_REALTIME, &now)
      let nowMicros = Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
      stoppedFor = .microseconds(nowMicros - totals.stoppedAtMicroseconds) - (clock.now - reported)
    }
    // Beside the monitor's own lines about the domain (its MIGRATION events), the totals.
    let line = "Domain \(target.domid) migrated away (\(rune)): QEMU's \(totals.description)\n"
    let logFD = open(toolstack.paths.monitorLog(name: target.name), O_WRONLY | O_APPEND | O_CLOEXEC)
    if logFD >= 0 {
      _ = line.utf8CString.withUnsafeBytes { Glibc.write(logFD, $0.baseAddress, $0.count - 1) }
      close(logFD)
    }
    return MigratedDomain(domid: target.domid, name: target.name, totals: totals, stoppedFor: stoppedFor, elapsed: reported - began)
  }

  /// Starts `sh -c <rune>` with the socket as its stdin and stdout and our stderr as its own,
  /// confirmed by the receiver's banner. The transport lives on, detached.
  private func startTransport(_ rune: String, socket: Int32, stream: DescriptorStream) async throws(XenLightError) {
    step("banner")
    var command = SpawnCommand(
      what: "migration transport (\(rune))", executable: "/bin/sh",
      arguments: ["-c", "exec 0<&3 1>&3 2>&4 3<&- 4>&-\n" + rune], passedDescriptors: [3: socket, 4: 2],
      timeout: .seconds(120))
    command.stopGrace = .seconds(2)
    let readiness = CheckReadiness(awaiting: "the migration receiver's banner") { _ in
      try await stream.expect(MigrationProtocol.banner, what: "banner")
      return "banner"
    }
    do {
      let transport = try await toolstack.spawner.start(command, readiness: readiness)
      close(socket)
      _ = try await transport.confirm()
    } catch {
      close(socket)
      throw XenLightError(.io, "the migration receiver did not answer: \(error)")
    }
  }

  /// Gives the guest back to this side: its name again, running if it ran. Returns what it did.
  private func undo(_ target: DomainControl.Target, wasRunning: Bool, renamed: Bool) async -> String {
    do throws(XenLightError) {
      try await withStore { store throws(XenLightError) in
        if renamed { try await store.rename(domid: target.domid, to: target.name) }
        if wasRunning { try await MigrationLeftovers.resume(target.domid, store, loop: toolstack.spawner.loop) }
        await MigrationProtocol.Note.clear(target.domid, store)
      }
      return wasRunning ? "resuming at sender" : "the domain stays here, paused as it was"
    } catch {
      return "and resuming at the sender failed too: \(error.message)"
    }
  }

  private func withStore(_ body: (DomainStore) async throws(XenLightError) -> Void) async throws(XenLightError) {
    guard try await toolstack.withStore(body) != nil else {
      throw XenLightError(.xenstoreLost, "xenstored is gone (\(toolstack.connector.socketPath))")
    }
  }

  /// `<step>`: this process dies there; `cut-<step>`: the transport is cut there (both ends
  /// shut), as if the link went down.
  private func step(_ name: String, _ stream: DescriptorStream? = nil) {
    if fault == name { kill(getpid(), SIGKILL) }
    if fault == "cut-" + name, let stream { shutdown(stream.fd, Int32(SHUT_RDWR)) }
  }
}
