import Spawn
import XenStore

/// The toolstack as an embedder (and `xl`) uses it: where its files live, how xenstore is
/// reached, and every verb over it, each connecting and locking the same way.
///
/// xenstore policy, in one place: `create` starts the embedded xenstored when none answers
/// (`XenStoreConnector.connect`); every other verb connects to the running daemon, or starts
/// it again on its saved state (`connectRestoringSavedState`: the records are the only safe
/// way to find and stop device models that may still run), and finds no domain when there is
/// neither. Each verb opens its own connection and closes it before returning.
///
/// ```swift
/// let toolstack = Toolstack()
/// let created = try await toolstack.create(try DomainConfiguration(file, source: path))
/// try await toolstack.control(created.name) { control, domain in try await control.pause(domain) }
/// _ = try await toolstack.destroy(created.name)
/// ```
public struct Toolstack: Sendable {
  public var paths: ToolstackPaths
  public var connector: XenStoreConnector
  /// How long xenstored may take over each step.
  public var xenstoreTimeout: Duration
  /// Called when a verb had to start xenstored (on its saved state, or anew for `create`).
  public var xenstoredStarted: @Sendable (SpawnConfirmation) -> Void
  /// Starts a monitor for a domain whose monitor died (`MonitorKeeper`), confirmed; `list`
  /// and the control verbs call it for each such domain they find. nil: none is started.
  public var replaceMonitor: (@Sendable (MonitorKeeper.Orphan, DomainStore) async -> Void)?

  public init(
    paths: ToolstackPaths = .current(), spawner: Spawner = Spawner(), xenstoreTimeout: Duration = .seconds(10),
    xenstoredStarted: @escaping @Sendable (SpawnConfirmation) -> Void = { _ in }
  ) {
    self.paths = paths
    self.connector = XenStoreConnector(paths: paths, spawner: spawner)
    self.xenstoreTimeout = xenstoreTimeout
    self.xenstoredStarted = xenstoredStarted
  }

  public var spawner: Spawner { connector.spawner }
  var deadline: XenStoreDeadline { XenStoreDeadline(limit: xenstoreTimeout, loop: spawner.loop) }

  /// A `DomainCreator` on this toolstack's paths and xenstore (set its `monitor`,
  /// `configText`, `timeout` as needed), then `create`.
  public func creator(timeout: Duration? = nil) -> DomainCreator {
    DomainCreator(connector: connector, paths: paths, timeout: timeout, xenstoreTimeout: xenstoreTimeout)
  }

  /// Creates `domain` (see `DomainCreator.create`).
  public func create(_ domain: DomainConfiguration, events: CreateEvents = CreateEvents()) async throws(XenLightError)
    -> CreatedDomain
  {
    try await creator().create(domain, events: events)
  }

  /// Runs `body` on the domains' records; nil when no xenstored answers and none has a saved
  /// state (there are no domains).
  public func withStore<T: Sendable>(_ body: (DomainStore) async throws(XenLightError) -> T) async throws(XenLightError)
    -> T?
  {
    guard let client = try await connector.connectRestoringSavedState(started: xenstoredStarted) else { return nil }
    defer { client.close() }
    return try await body(DomainStore(xenstore: client))
  }

  /// Starts a monitor for each domain of `store` whose monitor died (`replaceMonitor`). Two
  /// `xl` doing so at once start one: each holds the domain's start lock while it looks
  /// again and starts it; the other, finding it held, leaves the domain to it.
  func replaceDeadMonitors(in store: DomainStore) async {
    guard let replaceMonitor else { return }
    let orphans = try? await deadline.run(store.xenstore, "finding domains without a monitor") {
      () async throws(XenLightError) in try await MonitorKeeper.orphans(in: store)
    }
    for orphan in orphans ?? [] {
      guard let starting = try? FileLock.take(paths.monitorLock(domid: orphan.domid) + ".start") else { continue }
      defer { starting.release() }
      let still = try? await deadline.run(store.xenstore, "finding domains without a monitor") {
        () async throws(XenLightError) in try await MonitorKeeper.orphans(in: store)
      }
      guard still?.contains(orphan) == true else { continue }
      await replaceMonitor(orphan, store)
    }
  }

  /// The domain `reference` (a name or a domid) in `store`, or `.notFound`.
  func find(_ reference: String, in store: DomainStore) async throws(XenLightError) -> UInt32 {
    let found = try await deadline.run(store.xenstore, "finding the domain") { () async throws(XenLightError) in
      try await store.find(reference)
    }
    guard let domid = found else { throw XenLightError(.notFound, "no domain \"\(reference)\"") }
    return domid
  }

  /// `xl list`: every domain, or those `references` name (an unknown one is `.notFound`).
  public func list(_ references: [String] = []) async throws(XenLightError) -> [DomainInfo] {
    let listed = try await withStore { store throws(XenLightError) -> [DomainInfo] in try await list(references, in: store) }
    guard let listed else {
      if let first = references.first { throw noDaemon(first) }
      return []
    }
    return listed
  }

  /// `list` on a connection the caller holds.
  public func list(_ references: [String], in store: DomainStore) async throws(XenLightError) -> [DomainInfo] {
    var selection: [UInt32]?
    if !references.isEmpty {
      selection = []
      for reference in references { selection!.append(try await find(reference, in: store)) }
    }
    let listed = try await deadline.run(store.xenstore, "listing domains") { [selection] () async throws(XenLightError) in
      try await DomainLister().list(store, only: selection)
    }
    await replaceDeadMonitors(in: store)
    return listed
  }

  /// `xl destroy`: stops the device model by its recorded identity, removes the records,
  /// waits for the monitor to end (see `DomainDestroyer`).
  public func destroy(_ reference: String) async throws(XenLightError) -> DestroyedDomain {
    let destroyed = try await withStore { store throws(XenLightError) -> DestroyedDomain in
      let domid = try await find(reference, in: store)
      // The stop itself is not limited: it has its own grace period and SIGKILL.
      var destroyer = DomainDestroyer(spawner: spawner, deadline: deadline, lockPath: paths.domainsLock)
      destroyer.paths = paths
      return try await destroyer.destroy(domid: domid, in: store)
    }
    guard let destroyed else { throw noDaemon(reference) }
    return destroyed
  }

  /// Runs `verb` (pause, unpause, shutdown, reboot, a wait…) on the domain `reference` names.
  /// `onLoopThread`: on the xenstore client's loop thread (`withLoopExecutor`), where its
  /// requests and the device model's QMP replies (same loop) cost no thread hop each; for
  /// verbs of many short steps that never block (the device verbs).
  public func control<T: Sendable>(
    _ reference: String, onLoopThread: Bool = false, _ verb: (DomainControl, DomainControl.Target) async throws(XenLightError) -> T
  ) async throws(XenLightError) -> T {
    let result = try await withStore { store throws(XenLightError) -> T in
      await replaceDeadMonitors(in: store)
      let control = DomainControl(store: store, loop: spawner.loop)
      guard onLoopThread else { return try await verb(control, try await control.target(reference)) }
      return try await store.xenstore.withLoopExecutor { () async throws(XenLightError) -> T in
        try await verb(control, try await control.target(reference))
      }
    }
    guard let result else { throw noDaemon(reference) }
    return result
  }

  private func noDaemon(_ reference: String) -> XenLightError {
    XenLightError(.notFound, "no domain \"\(reference)\" (no xenstored answers at \(connector.socketPath))")
  }
}
