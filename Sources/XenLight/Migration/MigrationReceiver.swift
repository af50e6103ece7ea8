#if canImport(Glibc)
import Glibc
#endif
import Spawn

/// `xl migrate-receive`: the receiving side of `MigrationProtocol` (read its table first), on
/// this process's stdin and stdout.
public struct MigrationReceiver: Sendable {
  public var toolstack: Toolstack
  /// Leave the domain paused once it is ours (`-p`).
  public var pauseAfter = false
  /// Starts the domain's monitor (nil: none, `-e`).
  public var monitor: (@Sendable (_ domid: UInt32, _ uuid: DomainUUID, _ name: String) async throws(XenLightError) -> ProcessIdentity)?
  /// Each step, on stderr (which the sender's transport passes on).
  public var log: @Sendable (String) -> Void = { _ in }
  /// For fault-injection tests only, as `MigrationSender.fault` (banner, stream, ready, go, start).
  public var fault: String?

  public init(toolstack: Toolstack) { self.toolstack = toolstack }

  public func receive(input: Int32 = 0, output: Int32 = 1) async throws(XenLightError) -> CreatedDomain {
    let loop = toolstack.spawner.loop
    _ = try await toolstack.withStore { store throws(XenLightError) in
      await MigrationLeftovers.resolve(store, toolstack: toolstack, log: log)
    }
    let incoming = DescriptorStream(fd: input, source: "migration stream", loop: loop)
    let acks = DescriptorStream(fd: output, source: "migration ack stream", loop: loop)
    incoming.makeNonBlocking()
    acks.makeNonBlocking()
    log("migration target: Ready to receive domain.")
    step("banner")
    try await acks.write(MigrationProtocol.banner, what: "banner")
    let preamble = try await DomainRestorer.readPreamble(incoming, configFile: nil)
    let name = preamble.config.name
    if let existing = try await toolstack.withStore({ store throws(XenLightError) in try await store.find(name) }) ?? nil {
      throw XenLightError(.duplicateName, "migration target: a domain named \"\(name)\" already exists here (domain \(existing)); refusing it")
    }

    // Steps 2-4: the copy is made paused, noted as this process's; any failure removes it.
    var restorer = DomainRestorer(toolstack: toolstack)
    restorer.paused = true
    restorer.temporaryName = MigrationProtocol.incomingName(name)
    restorer.monitor = monitor
    let (stack, faultStep) = (toolstack, fault)
    restorer.beforeLoading = { domid throws(XenLightError) in
      let note = MigrationProtocol.Note(step: .incoming, driver: try MigrationProtocol.Note.me(), name: name, wasRunning: true)
      _ = try await stack.withStore { store throws(XenLightError) in try await note.write(domid, store) }
      if faultStep == "stream" { kill(getpid(), SIGKILL) }
    }
    let created = try await restorer.restore(preamble, from: incoming, events: CreateEvents())
    let domid = created.domid
    let clock = ContinuousClock()
    let loaded = clock.now
    log("migration target: Transfer complete, requesting permission to start domain.")
    step("ready")
    do throws(XenLightError) {
      try await acks.write(MigrationProtocol.ready, what: "ready message")
      step("go")
      try await incoming.expect(MigrationProtocol.go, what: "GO message")
    } catch {
      await destroy(domid)
      throw XenLightError(error.code, "migration target: \(error.message); no permission to start, our copy destroyed", errno: error.errno)
    }
    log("migration target: Got permission, starting domain.")

    // Step 6: ours now.
    do throws(XenLightError) {
      try await withStore { store throws(XenLightError) in
        let note = MigrationProtocol.Note(step: .incomingGo, driver: try MigrationProtocol.Note.me(), name: name, wasRunning: true)
        try await note.write(domid, store)
        step("start")
        try await MigrationProtocol.rename(domid, to: name, store, toolstack: toolstack)
        if !pauseAfter { try await MigrationLeftovers.resume(domid, store, loop: loop) }
        await MigrationProtocol.Note.clear(domid, store)
      }
    } catch {
      log("migration target: Failure, destroying our copy (\(error.message)).")
      try? await acks.write(MigrationProtocol.report + [1], what: "success/failure report")
      await destroy(domid)
      log("migration target: Cleanup OK, granting sender permission to resume.")
      try? await acks.write(MigrationProtocol.go, what: "permission for sender to resume")
      throw XenLightError(error.code, "migration target: \(error.message)", errno: error.errno)
    }
    let paused = clock.now - loaded
    try? await acks.write(MigrationProtocol.report + [0], what: "success/failure report")
    log("migration target: Domain started successsfully (paused here \(paused.readable) from loaded to started).")
    var result = created
    result.name = name
    return result
  }

  private func destroy(_ domid: UInt32) async {
    _ = try? await toolstack.destroy("\(domid)")
  }

  private func withStore(_ body: (DomainStore) async throws(XenLightError) -> Void) async throws(XenLightError) {
    guard try await toolstack.withStore(body) != nil else {
      throw XenLightError(.xenstoreLost, "xenstored is gone (\(toolstack.connector.socketPath))")
    }
  }

  private func step(_ name: String) {
    if fault == name { kill(getpid(), SIGKILL) }
  }
}
