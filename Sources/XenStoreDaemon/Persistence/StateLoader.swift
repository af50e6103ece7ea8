import XenStore

/// What a daemon found in its state directory at startup.
public struct RecoveryReport: Sendable, CustomStringConvertible {
  /// The newest generation found (0: a new directory).
  public var generation: UInt64 = 0
  /// The snapshot loaded, if any.
  public var snapshot: String?
  /// The logs replayed, oldest first.
  public var logs: [String] = []
  /// Change records replayed from them.
  public var records = 0
  public var nodes = 0
  /// Introduced domains, dom0 included.
  public var domains = 0
  /// A torn last record (a write the crash cut short, never acknowledged): where it was cut
  /// off, and how many bytes were dropped.
  public var tornTail: (file: String, offset: Int, droppedBytes: Int, reason: String)?
  /// The boot id recorded by the daemon that last wrote the state.
  public var previousBootID: String?
  /// Left-over temporary files (a snapshot a crash interrupted), removed.
  public var temporaries: [String] = []

  /// True if the state was written during an earlier boot of the host: processes recorded
  /// in it (device models) are gone, whatever their pids say.
  public var isFromEarlierBoot: Bool {
    guard let previousBootID, !previousBootID.isEmpty else { return false }
    return previousBootID != StateDirectory.currentBootID
  }

  public var description: String {
    guard generation > 0 else { return "new state directory" }
    var text = "\(nodes) nodes and \(domains) domains from \(snapshot ?? "the initial tree")"
    text += " and \(records) records of \(logs.isEmpty ? "no log" : logs.joined(separator: ", "))"
    if let torn = tornTail {
      text += "; dropped the torn last record of \(torn.file) (\(torn.droppedBytes) bytes at offset \(torn.offset): \(torn.reason))"
    }
    if isFromEarlierBoot { text += "; written during an earlier boot (\(previousBootID!))" }
    return text
  }
}

/// Rebuilds the durable state from a state directory: the newest snapshot, then every log
/// from its generation on, in order.
///
/// Strict: any damage refuses, with the file and byte offset, except a torn tail, the last
/// record of the newest log cut short or garbled with nothing intact after it, which is a
/// write the crash interrupted and therefore never acknowledged.
struct StateLoader {
  let directory: StateDirectory

  struct Loaded {
    var state: DurableState
    var report: RecoveryReport
    /// Where to cut the newest log (a torn tail), if anywhere.
    var truncate: (name: String, length: Int)?
  }

  func load() throws(XenstoredError) -> Loaded {
    let listing = try directory.listing()
    var report = RecoveryReport()
    report.temporaries = listing.temporaries
    let base = listing.snapshots.last ?? 0
    var state: DurableState
    if base > 0 {
      let name = StateDirectory.snapshotName(base)
      let decoded = SnapshotFile.decode(try directory.read(name))
      if let damage = decoded.damage {
        throw .stateDamage(directory.file(name), offset: damage.offset, damage.reason, directory: directory.path)
      }
      guard decoded.header?.generation == base else {
        throw .stateDamage(directory.file(name), offset: 0, "its header names another generation", directory: directory.path)
      }
      state = decoded.state
      if !state.problems.isEmpty {
        throw .stateImpossible(directory.file(name), state.problems, directory: directory.path)
      }
      report.snapshot = name
      report.previousBootID = decoded.header?.bootID
    } else {
      state = .initial
    }

    let logs = listing.logs.filter { $0 >= max(base, 1) }
    if let missing = Self.firstMissing(logs, from: max(base, 1)), base > 0 || !logs.isEmpty {
      throw XenstoredError(.stateCorrupted, """
        \(directory.file(StateDirectory.logName(missing))) is missing: changes acknowledged after \
        \(base > 0 ? StateDirectory.snapshotName(base) : "the initial tree") would be lost; refusing to start. \
        `xenstored --state-dir \(directory.path) --recover` keeps what the files hold.
        """)
    }
    var truncate: (name: String, length: Int)?
    for generation in logs {
      let name = StateDirectory.logName(generation)
      let bytes = try directory.read(name)
      let outcome = LogReplay.replay(bytes, generation: generation, into: &state)
      report.logs.append(name)
      report.records += outcome.records
      if let header = outcome.header { report.previousBootID = header.bootID }
      if let stop = outcome.stop {
        guard generation == logs.last, !outcome.intactAfterStop else {
          throw .stateDamage(directory.file(name), offset: stop.offset, stop.reason, directory: directory.path)
        }
        report.tornTail = (name, stop.offset, bytes.count - stop.offset, stop.reason)
        truncate = (name, stop.offset)
      }
    }
    state.endReplay()
    if !state.problems.isEmpty {
      let files = logs.map { directory.file(StateDirectory.logName($0)) }.joined(separator: ", ")
      throw .stateImpossible("replaying \(files)", state.problems, directory: directory.path)
    }
    report.generation = max(base, logs.last ?? 0)
    report.nodes = state.nodes.count
    report.domains = state.domains.count
    return Loaded(state: state, report: report, truncate: truncate)
  }

  /// The first generation from `start` on missing from `generations` (sorted), if any is
  /// missing before the last one; the first one if there are none.
  static func firstMissing(_ generations: [UInt64], from start: UInt64) -> UInt64? {
    var expected = start
    for g in generations {
      if g != expected { return expected }
      expected += 1
    }
    return generations.isEmpty ? start : nil
  }
}
