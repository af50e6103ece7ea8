#if canImport(Glibc)
import Glibc
#endif
import Spawn
import XenStore

/// What `xl destroy` did.
public struct DestroyedDomain: Sendable {
  public enum DeviceModel: Sendable, Hashable {
    /// It was running and was stopped (SIGTERM, or SIGKILL after the grace period).
    case stopped(StopOutcome)
    /// No process has the recorded pid any more.
    case alreadyExited
    /// The recorded pid now belongs to another process (or another boot): not signalled.
    case pidReused(Int32)
    /// No identity was recorded (the create failed before the spawn, or records from
    /// another toolstack): nothing was signalled.
    case notRecorded
  }

  public var domid: UInt32
  public var name: String?
  public var deviceModel: DeviceModel
}

/// `xl destroy`: stops the device model by its recorded identity — never a process that
/// merely has its old pid — then removes the domain's records and its QMP socket file.
/// Destroying a domain whose device model already died just removes the records.
public struct DomainDestroyer: Sendable {
  public var spawner: Spawner
  /// How long the device model has after SIGTERM before SIGKILL.
  public var grace: Duration
  /// How long xenstored may take over reading and removing the records.
  public var deadline: XenStoreDeadline
  /// Held while the records are removed (`ToolstackPaths.domainsLock`), if given.
  public var lockPath: String?
  /// Where the domain's saved config lives, removed with it (nil: kept, for a restart).
  public var paths: ToolstackPaths?

  /// What to do about the domain's monitor.
  public enum MonitorHandling: Sendable {
    /// Wait for it to see the domain go and exit; stop it (by identity) if it has not within 3 s.
    case waitForExit
    /// The caller is the monitor.
    case isCaller
  }
  public var monitor = MonitorHandling.waitForExit
  /// Remove the domain's records (false: a restart, whose new domain takes them over in its
  /// claim, `DomainReplacement`; only the device model is stopped and its sockets removed).
  public var removesRecords = true

  public init(
    spawner: Spawner, grace: Duration = .seconds(10), deadline: XenStoreDeadline = XenStoreDeadline(),
    lockPath: String? = nil
  ) {
    self.spawner = spawner
    self.grace = grace
    self.deadline = deadline
    self.lockPath = lockPath
  }

  /// Destroys domain `domid`, whose records `store` holds.
  public func destroy(domid: UInt32, in store: DomainStore) async throws(XenLightError) -> DestroyedDomain {
    let (notes, name) = try await deadline.run(store.xenstore, "reading the domain's records") {
      () async throws(XenLightError) -> ([String: String], String?) in
      do {
        var notes = try await store.read(
          ["device-model-identity", "qmp-path", "qmp-events-path", "monitor-identity", "dm-reaper-uid", "dm-chroot"],
          under: "/libxl/\(domid)")
        notes["vm"] = try await DomainStore.readOptional(store.xenstore, "/local/domain/\(domid)/vm")
        notes["kill-uid"] = try await DomainStore.readOptional(
          store.xenstore, "/local/domain/\(domid)/image/device-model-kill-uid")
        // `xl list` shows it dying, and the monitor takes the device model's end for a destroy
        // (the monitor destroying needs no such note to itself).
        if monitor == .waitForExit {
          try? await store.update(domid: domid, [XenStoreRecord("/libxl/\(domid)/run-state", RunState.dying.rawValue)])
        }
        return (notes, try await DomainStore.readOptional(store.xenstore, "/local/domain/\(domid)/name"))
      } catch {
        throw XenStoreConnector.failure("cannot read domain \(domid)'s records", error)
      }
    }

    var outcome = DestroyedDomain.DeviceModel.notRecorded
    if let text = notes["device-model-identity"], let identity = ProcessIdentity(text) {
      switch Self.liveness(of: identity) {
      case .running:
        do {
          outcome = .stopped(try await spawner.stop(identity, what: "domain \(domid) device model", grace: grace))
        } catch {
          throw XenLightError(.deviceModelFailed, "domain \(domid): \(error); its records were kept", cause: .init(error))
        }
      case .exited: outcome = .alreadyExited
      case .replaced: outcome = .pidReused(identity.pid)
      case .none: break
      }
    }
    // A restricted device model: every process of its uid goes too (libxl's kill by uid),
    // whatever it forked or however it escaped its recorded identity.
    if let text = notes["kill-uid"], let uid = UInt32(text), uid != 0 {
      let reaper = notes["dm-reaper-uid"].flatMap { UInt32($0) } ?? uid
      let chroot = notes["dm-chroot"]
      let runDirectory = chroot.flatMap { path in path.lastIndex(of: "/").map { String(path[..<$0]) } }
      let lockPath = (runDirectory ?? ToolstackPaths.current().runDirectory) + "/dm-reaper-lock"
      do {
        try await spawner.killAll(uid: uid, reaperUID: reaper, lockPath: lockPath, what: "domain \(domid) device model")
      } catch {
        throw XenLightError(.deviceModelFailed, "domain \(domid): \(error); its records were kept", cause: .init(error))
      }
      if let chroot, chroot.hasPrefix("/") { rmdir(chroot) }
    }
    // Its NICs' hotplug scripts say `remove` (their taps went with the device model) while
    // the records they read are there. A failing one does not keep the domain.
    let hotplug = VifHotplug(
      domid: domid, paths: paths ?? ToolstackPaths.current(), spawner: spawner, xenstore: store.xenstore,
      xenstoreSocket: store.xenstore.socketPath)
    _ = await hotplug.disconnectAll()
    // The device model is gone: its files go before its records, so that whoever waits for
    // the records to go (`xl shutdown -w`) finds nothing else left. The sockets: those
    // recorded, and where create makes them (a create killed early may not have recorded them).
    var sockets = [notes["qmp-path"], notes["qmp-events-path"]].compactMap { $0 }.filter { $0.hasPrefix("/") }
    if let paths {
      let conventional = DeviceModelCommand.socketPaths(runDirectory: paths.runDirectory, domid: domid)
      sockets += [conventional.commands, conventional.events]
    }
    for socket in Set(sockets) { unlink(socket) }
    if let paths, let vm = notes["vm"], let uuid = DomainUUID(String(vm.dropFirst(4))) {
      SavedConfig.remove(domid: domid, uuid: uuid, paths: paths)
    }
    guard removesRecords else { return DestroyedDomain(domid: domid, name: name, deviceModel: outcome) }
    let lock = try await lockPath.asyncMap { path throws(XenLightError) in try await FileLock.acquire(path) }
    defer { lock?.release() }
    try await deadline.run(store.xenstore, "removing the records") { () async throws(XenLightError) in
      try await store.remove(domid: domid)
    }
    if monitor == .waitForExit, let text = notes["monitor-identity"], let identity = ProcessIdentity(text) {
      await Self.settle(monitor: identity, spawner: spawner)
    }
    return DestroyedDomain(domid: domid, name: name, deviceModel: outcome)
  }

  /// The monitor sees the records go and exits; one that does not within 3 s is stopped.
  static func settle(monitor identity: ProcessIdentity, spawner: Spawner) async {
    let exited = try? await first(within: .seconds(3)) { try await spawner.waitForExit(identity, what: "domain monitor") }
    if exited == nil { _ = try? await spawner.stop(identity, what: "domain monitor", grace: .seconds(2)) }
  }

  /// Whether the recorded process is still the live process with its pid. A zombie (dead,
  /// not yet reaped by init) has exited.
  static func liveness(of identity: ProcessIdentity) -> DomainInfo.DeviceModelState {
    do {
      guard try ProcessIdentity.of(pid: identity.pid) == identity else { return .replaced }
      return isZombie(identity.pid) ? .exited : .running
    } catch {
      return error == .ENOENT || error == .ESRCH ? .exited : .replaced
    }
  }

  /// `/proc/<pid>/stat` field 3 is "Z" (or gone).
  static func isZombie(_ pid: Int32) -> Bool {
    guard let text = try? FileIO.readText("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return true }
    return text[text.index(after: close)...].split(separator: " ").first == "Z"
  }
}

extension Optional {
  func asyncMap<U>(_ transform: (Wrapped) async throws(XenLightError) -> U) async throws(XenLightError) -> U? {
    guard let value = self else { return nil }
    return try await transform(value)
  }
}
