#if canImport(Glibc)
import Glibc
#endif
import Logging
import Reactor
import XenStore

/// Makes the engine's changes durable before anyone learns of them.
///
/// Each request's changes become one log record (all or nothing). Records of one loop
/// iteration are written together and share one `fdatasync` on a sync thread (group commit);
/// meanwhile the loop keeps serving, and the records that arrive form the next group.
///
/// Every message the engine sends (replies and watch events) is held until the records it
/// may reveal are durable: a reply to a change, or an event it causes, until that change's
/// record is; any other reply until every record written so far is, except a plain read
/// (READ, DIRECTORY, DIRECTORY_PART, GET_PERMS outside a transaction) of a node none of whose
/// ancestors has an unsynced change. A connection's messages keep their order.
///
/// When the log outgrows the last snapshot (and `compactionBytes`), a new log begins and the
/// state is written as a snapshot on a third thread; older files then go.
///
/// Confined to the server's loop, like the engine.
final class Journal: @unchecked Sendable {
  let report: RecoveryReport
  /// Where held messages go once durable, and the engine's other outputs at once.
  var deliver: (EngineOutput) -> Void = { _ in }
  /// Called after a batch of held messages was delivered (the server sends them).
  var released: () -> Void = {}

  private let configuration: DurabilityConfiguration
  private let directory: StateDirectory
  private let engine: XenStoreEngine
  private let loop: EventLoop
  private let logger: Logger
  private let bootID = StateDirectory.currentBootID
  private let syncLoop = EventLoop(name: "xenstored-sync")
  private let snapshotLoop = EventLoop(name: "xenstored-snap")
  private let lock: StateLock
  private var log: LogFile
  private let recorder = ChangeRecorder()

  /// Sequence numbers: the last record made, written to the file, known durable.
  private var sequence: UInt64
  private var written: UInt64
  private var durable: UInt64
  /// Framed records not yet written.
  private var pending: [UInt8] = []
  private var flushScheduled = false
  private var syncInFlight = false
  private var compacting = false
  private var snapshotBytes: Int
  private var failed = false
  private var closed = false

  /// Messages of the request being handled.
  private var staged: [(Message, ConnectionID)] = []
  /// Messages waiting for their record's sync, per connection, in order.
  private var held: [ConnectionID: [(sequence: UInt64, message: Message)]] = [:]
  /// Nodes changed by records not yet durable: the last such record of each.
  private var unsyncedPaths: [String: UInt64] = [:]
  /// The last record that changed domains or special access lists.
  private var domainsSequence: UInt64 = 0

  /// Opens (creating if needed) and locks the state directory, loads its state into
  /// `engine`, and starts a new generation: a new log and a snapshot of what was loaded.
  /// Throws, changing nothing, if the state is damaged.
  init(_ configuration: DurabilityConfiguration, engine: XenStoreEngine, loop: EventLoop,
       logger: Logger) throws(XenstoredError) {
    self.configuration = configuration
    directory = StateDirectory(configuration.stateDirectory)
    self.engine = engine
    self.loop = loop
    self.logger = logger
    try directory.create()
    lock = try StateLock(directory)
    do throws(XenstoredError) {
      let loaded = try StateLoader(directory: directory).load()
      report = loaded.report
      if let cut = loaded.truncate {
        logger.warning("dropping a torn last record (a write cut short by the crash, never acknowledged)",
                       metadata: ["file": "\(directory.file(cut.name))", "offset": "\(cut.length)"])
        try directory.truncate(cut.name, to: cut.length)
      }
      engine.restore(loaded.state)
      // A new generation: a log, then the snapshot that starts it, then the old files go.
      let generation = loaded.report.generation + 1
      let newLog = try LogFile.create(in: directory, generation: generation, bootID: bootID)
      let snapshot = SnapshotFile.encode(loaded.state, generation: generation, bootID: bootID)
      do throws(XenstoredError) {
        try directory.writeAtomically(StateDirectory.snapshotName(generation), snapshot)
        try directory.removeFiles(olderThan: generation)
      } catch {
        newLog.close()
        throw error
      }
      log = newLog
      snapshotBytes = snapshot.count
      sequence = loaded.state.sequence
    } catch {
      lock.release()
      syncLoop.shutdown()
      snapshotLoop.shutdown()
      throw error
    }
    written = sequence
    durable = sequence
    engine.store.recorder = recorder
  }

  // MARK: The server's hooks

  /// The engine's output: messages are staged until the request's end, the rest passes.
  func intercept(_ output: EngineOutput) {
    if case .message(let message, let to) = output { staged.append((message, to)) } else { deliver(output) }
  }

  /// The engine has handled `request`: its changes become a record, and its messages are
  /// sent or held.
  func requestHandled(_ request: Message, from connection: ConnectionID) {
    let taken = recorder.take(from: engine)
    let tag: UInt64
    if !taken.changes.isEmpty {
      sequence += 1
      Frame.append(ChangeRecord(sequence: sequence, changes: taken.changes).encoded(), to: &pending)
      for path in taken.paths { unsyncedPaths[path] = sequence }
      if taken.domainsChanged { domainsSequence = sequence }
      if !flushScheduled {
        flushScheduled = true
        // After every handler of this loop iteration: one write and one sync for all of them.
        loop.execute { [self] in flush() }
      }
      tag = sequence
    } else {
      tag = plainReadTag(request, connection) ?? sequence
    }
    for (message, to) in staged {
      if tag > durable || held[to] != nil {
        held[to, default: []].append((tag, message))
      } else {
        deliver(.message(message, to: to))
      }
    }
    staged.removeAll(keepingCapacity: true)
  }

  /// Writes what is left, syncs it, and stops the threads (the server is stopping).
  func close() {
    guard !closed else { return }
    if !failed, (try? writePending()) != nil, (try? log.trim()) != nil {
      advance(to: written, notify: false)
    }
    closed = true
    held.removeAll()
    try? syncLoop.runBlocking {}
    try? snapshotLoop.runBlocking {}
    syncLoop.shutdown()
    snapshotLoop.shutdown()
    log.close()
    lock.release()
    engine.store.recorder = nil
  }

  // MARK: Group commit

  private func flush() {
    flushScheduled = false
    guard !closed, !failed else { return }
    do {
      try writePending()
    } catch {
      fail(error)
      return
    }
    if !syncInFlight && written > durable { startSync() }
  }

  private func writePending() throws(XenstoredError) {
    guard !pending.isEmpty else { return }
    try log.append(pending)
    pending.removeAll(keepingCapacity: pending.capacity <= 1 << 20)
    written = sequence
  }

  private func startSync() {
    syncInFlight = true
    let (fd, target) = (log.fd, written)
    syncLoop.execute { [self] in
      configuration.beforeSync?()
      let failure: Int32? = fdatasync(fd) == 0 ? nil : errno
      loop.execute { [self] in synced(target, failure: failure) }
    }
  }

  private func synced(_ target: UInt64, failure: Int32?) {
    syncInFlight = false
    guard !closed, !failed else { return }
    if let failure {
      fail(.stateIO("cannot fdatasync", log.path, errno: failure))
      return
    }
    advance(to: target)
    if !compacting && log.size >= max(configuration.compactionBytes, snapshotBytes) { compact() }
    if !syncInFlight && written > durable { startSync() }
  }

  /// Records up to `target` are durable: send what waited for them.
  private func advance(to target: UInt64, notify: Bool = true) {
    guard target > durable else { return }
    durable = target
    for connection in Array(held.keys) {
      let queue = held[connection]!
      let ready = queue.prefix { $0.sequence <= target }.count
      held[connection] = ready == queue.count ? nil : Array(queue.dropFirst(ready))
      for (_, message) in queue.prefix(ready) { deliver(.message(message, to: connection)) }
    }
    if durable == sequence { unsyncedPaths.removeAll(keepingCapacity: true) }
    else { unsyncedPaths = unsyncedPaths.filter { $0.value > target } }
    if notify { released() }
  }

  /// The tag of a plain read: the newest unsynced record that changed the node it reads or
  /// one of its ancestors (or the domains, which access checks use); nil if not a plain read.
  private func plainReadTag(_ request: Message, _ connection: ConnectionID) -> UInt64? {
    switch request.type {
    case .read, .directory, .directoryPart, .getPerms: break
    default: return nil
    }
    guard request.transactionID == 0, let domid = engine.domain(of: connection) else { return nil }
    let argument = request.payload.prefix { $0 != 0 }
    var path = XenStorePath.canonicalize(String(decoding: argument, as: UTF8.self), domain: domid)
    guard path.utf8.first == UInt8(ascii: "/") else { return nil }
    var tag = domainsSequence
    if unsyncedPaths.isEmpty { return tag }
    while true {
      if let s = unsyncedPaths[path], s > tag { tag = s }
      if path == "/" { return tag }
      path = XenStorePath.parent(of: path)
    }
  }

  // MARK: Compaction

  /// Ends the current log (everything in it durable first, so that only the newest log can
  /// ever have a torn tail), begins the next, and writes the snapshot for it on the snapshot
  /// thread from an O(1) copy of the state.
  private func compact() {
    do {
      try writePending()
      try log.trim()
      let next = try LogFile.create(in: directory, generation: log.generation + 1, bootID: bootID)
      log.close()
      log = next
    } catch {
      fail(error)
      return
    }
    compacting = true
    var captured = engine.durableState
    captured.sequence = sequence
    let (state, directory, generation, bootID) = (captured, directory, log.generation, bootID)
    snapshotLoop.execute { [self] in
      let bytes = SnapshotFile.encode(state, generation: generation, bootID: bootID)
      let result: Result<Int, XenstoredError>
      do throws(XenstoredError) {
        try directory.writeAtomically(StateDirectory.snapshotName(generation), bytes)
        try directory.removeFiles(olderThan: generation)
        result = .success(bytes.count)
      } catch {
        result = .failure(error)
      }
      loop.execute { [self] in compacted(generation, result) }
    }
    advance(to: written)
  }

  private func compacted(_ generation: UInt64, _ result: Result<Int, XenstoredError>) {
    compacting = false
    switch result {
    case .success(let bytes):
      snapshotBytes = bytes
      logger.debug("snapshot written", metadata: ["generation": "\(generation)", "bytes": "\(bytes)"])
    case .failure(let error):
      // The logs still hold everything: nothing is lost, the next compaction tries again.
      logger.error("cannot write a snapshot: \(error.message)")
    }
  }

  private func fail(_ error: XenstoredError) {
    guard !failed else { return }
    failed = true
    held.removeAll()
    logger.critical("""
      the state can no longer be made durable: \(error.message). Nothing more is acknowledged; \
      a restart recovers every change acknowledged before.
      """)
    configuration.onFailure(error)
  }
}

extension StateDirectory {
  /// Removes snapshots and logs older than `generation`, and temporary files, durably.
  func removeFiles(olderThan generation: UInt64) throws(XenstoredError) {
    let listing = try listing()
    for g in listing.snapshots where g < generation { try remove(Self.snapshotName(g)) }
    for g in listing.logs where g < generation { try remove(Self.logName(g)) }
    for name in listing.temporaries { try remove(name) }
    try sync()
  }
}
