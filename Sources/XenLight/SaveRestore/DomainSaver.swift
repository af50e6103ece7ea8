#if canImport(Glibc)
import Glibc
#endif
import Spawn

/// What `xl save` did.
public struct SavedDomain: Sendable {
  public var domid: UInt32
  public var name: String
  public var header: SaveFileHeader
  /// The file's size.
  public var size: Int64
  /// What became of the domain: destroyed, running again (`-c`) or left paused (`-p`).
  public var after: DomainSaver.After
  /// From the guest stopped to its state in the file (and synced, when it is destroyed).
  public var pausedFor: Duration
}

/// `xl save`: the domain's config and its device model's state into one file, after xl
/// (xl_saverestore.c `save_domain`): the header with the config (the domain's saved config,
/// which includes the devices attached while it ran, or the one given), then QEMU's
/// migration stream, written by QEMU itself into the descriptor xl opened (`getfd`), so a
/// confined device model saves too. The guest is stopped first, as xl suspends it: the file
/// is one consistent instant. Then, as asked, the domain is destroyed (after the file is on
/// disk), resumed (`-c`), or left paused (`-p`). A failure removes the file and resumes the
/// guest if it was running: nothing is lost, nothing left behind.
public struct DomainSaver: Sendable {
  public enum After: Sendable, Hashable {
    case destroy, keepRunning, leavePaused
  }

  public var toolstack: Toolstack

  public init(toolstack: Toolstack) { self.toolstack = toolstack }

  public func save(_ reference: String, to path: String, configFile: String?, after: After) async throws(XenLightError)
    -> SavedDomain
  {
    let saved = try await toolstack.withStore { store throws(XenLightError) -> SavedDomain in
      let control = DomainControl(store: store, loop: toolstack.spawner.loop)
      let target = try await control.target(reference)
      try control.require(target, "save", allowed: [.running, .paused])
      guard let socket = target.qmpSocket, target.deviceModelTarget == .local else {
        throw XenLightError(.invalidState, "cannot save domain \(target.domid) (\(target.name)): only a local device model's state can be saved here")
      }
      let config = try Self.configText(target, file: configFile, paths: toolstack.paths)
      let confined = try await Self.isConfined(target, store)
      let header = SaveFileHeader(config: config)
      let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
      guard fd >= 0 else {
        let e = errno
        throw XenLightError(.io, "cannot open \(path) for writing: \(FileIO.describe(errno: e))", errno: e)
      }
      defer { close(fd) }
      do throws(XenLightError) {
        let file = DescriptorStream(fd: fd, source: path, loop: toolstack.spawner.loop)
        try await file.write(header.encoded, what: "header")
        let pausedFor = try await QMPClient.session(
          path: socket, loop: toolstack.spawner.loop, what: "domain \(target.domid) device model"
        ) { qmp throws(XenLightError) -> Duration in
          let wasRunning = target.runState != .paused
          let clock = ContinuousClock()
          let stopped = clock.now
          // The guest paused, recorded so beside the save (the monitor records it too).
          let recorded = Task { () async -> Void in
            guard wasRunning else { return }
            _ = try? await store.update(domid: target.domid, [XenStoreRecord(target.layout.runStatePath, RunState.paused.rawValue)])
          }
          do throws(XenLightError) {
            try await send(qmp, into: file, confined: confined, stop: wasRunning)
            await recorded.value
            if after == .destroy, fdatasync(fd) != 0 {
              let e = errno
              throw XenLightError(.io, "cannot write \(path) to disk: \(FileIO.describe(errno: e))", errno: e)
            }
            let pausedFor = clock.now - stopped
            if after == .keepRunning && wasRunning { try await resume(qmp, target, store) }
            return pausedFor
          } catch {
            await recorded.value
            if wasRunning { try? await resume(qmp, target, store) }
            throw error
          }
        }
        var info = stat()
        let size = fstat(fd, &info) == 0 ? Int64(info.st_size) : 0
        return SavedDomain(domid: target.domid, name: target.name, header: header, size: size, after: after, pausedFor: pausedFor)
      } catch {
        unlink(path)
        throw XenLightError(error.code, "domain \(target.domid) (\(target.name)) not saved (it runs on as before): \(error.message)", errno: error.errno, cause: error.cause)
      }
    }
    guard let saved else { throw XenLightError(.notFound, "no domain \"\(reference)\" (no xenstored answers at \(toolstack.connector.socketPath))") }
    if after == .destroy { _ = try await toolstack.destroy("\(saved.domid)") }
    return saved
  }

  /// QEMU writes the state into `file` itself — or, confined, into a socket xl drains into
  /// the file: libxl's RLIMIT_FSIZE (256 KiB) on a confined device model would stop it early
  /// in a file, and a socket is no file.
  private func send(_ qmp: QMPClient, into file: DescriptorStream, confined: Bool, stop: Bool) async throws(XenLightError) {
    let stopping = stop ? [QEMUMigration.Command("stop")] : []
    guard confined else {
      _ = try await QEMUMigration.send(qmp, into: file.fd, alongside: stopping, totals: false)
      return
    }
    let (ours, theirs) = try DescriptorStream.socketPair()
    let source = DescriptorStream(fd: ours, source: file.source, loop: file.loop)
    source.makeNonBlocking()
    defer { close(ours) }
    let drain = Task { () async -> Result<Int64, XenLightError> in
      do throws(XenLightError) { return .success(try await source.copy(to: file)) } catch { return .failure(error) }
    }
    let sent: Result<QEMUMigration.Totals, XenLightError>
    var held = true
    do throws(XenLightError) {
      sent = .success(
        try await QEMUMigration.send(qmp, into: theirs, alongside: stopping, totals: false, handedOver: { close(theirs); held = false }))
    } catch {
      sent = .failure(error)
      if held { close(theirs) }
      shutdown(ours, Int32(SHUT_RDWR))
    }
    let drained = await drain.value
    _ = try sent.get()
    _ = try drained.get()
  }

  /// Whether the domain's device model runs confined (libxl's kill uid is recorded).
  static func isConfined(_ target: DomainControl.Target, _ store: DomainStore) async throws(XenLightError) -> Bool {
    do { return try await DomainStore.readOptional(store.xenstore, target.layout.deviceModelKillUIDPath) != nil } catch {
      throw XenStoreConnector.failure("cannot read domain \(target.domid)'s records", error)
    }
  }

  private func resume(_ qmp: QMPClient, _ target: DomainControl.Target, _ store: DomainStore) async throws(XenLightError) {
    try await QEMUMigration.resume(qmp)
    try await store.update(domid: target.domid, [XenStoreRecord(target.layout.runStatePath, RunState.running.rawValue)])
  }

  /// The config to put in the file: `file` (checked), else the domain's saved config.
  static func configText(_ target: DomainControl.Target, file: String?, paths: ToolstackPaths) throws(XenLightError) -> String {
    if let file {
      let text = try FileIO.readText(file)
      _ = try DomainConfiguration(try ConfigFile.parse(text, file: file), source: file)
      return text
    }
    let saved = paths.savedConfig(domid: target.domid, uuid: target.layout.uuid)
    do { return try FileIO.readText(saved) } catch {
      throw XenLightError(
        .invalidState,
        "domain \(target.domid) (\(target.name)) has no saved config (\(saved)): give one (xl save \(target.name) <file> <config>)")
    }
  }
}
