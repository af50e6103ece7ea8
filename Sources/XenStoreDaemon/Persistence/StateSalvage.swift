#if canImport(Glibc)
import Glibc
#endif
import XenStore

/// What `xenstored --state-dir DIR --recover` found, kept and dropped.
public struct SalvageReport: Sendable, CustomStringConvertible {
  /// No damage found (a torn last record is not damage: the daemon drops it when it starts).
  public var wasIntact = true
  /// What the new state holds.
  public var kept = ""
  /// Each piece of damage and what it cost, one line each.
  public var dropped: [String] = []
  /// Where the damaged files went.
  public var movedTo: String?

  public var description: String {
    if wasIntact { return "The state is intact: nothing to recover. \(kept)" }
    var lines = ["Recovered: \(kept)"]
    lines += dropped.map { "Dropped: \($0)" }
    if let movedTo { lines.append("The damaged files were moved to \(movedTo).") }
    return lines.joined(separator: "\n")
  }
}

/// Recovers what can be recovered from a damaged state directory: the newest snapshot up to
/// its first damaged record, then the logs in order up to the first damaged record (nothing
/// after it: later records may depend on the lost one). After a damaged snapshot the records
/// are applied leniently and the tree repaired (nodes cut off from the root are dropped).
///
/// The result is written as a new generation (log, then snapshot), then every older file
/// moves to `damaged-<UTC time>/` in the directory. An intact directory is left alone.
public enum StateSalvage {
  public static func recover(stateDirectory path: String) throws(XenstoredError) -> SalvageReport {
    let directory = StateDirectory(path)
    let lock = try StateLock(directory)
    defer { lock.release() }
    let listing = try directory.listing()
    var report = SalvageReport()
    let base = listing.snapshots.last ?? 0
    var state = DurableState.initial
    var lenient = false

    if base > 0 {
      let name = StateDirectory.snapshotName(base)
      let bytes = (try? directory.read(name)) ?? []
      let decoded = SnapshotFile.decode(bytes)
      if let damage = decoded.damage {
        report.wasIntact = false
        report.dropped.append("\(name) from byte \(damage.offset) on (\(damage.reason)): \(bytes.count - damage.offset) bytes; \(decoded.state.nodes.count) nodes before it kept")
        lenient = true
      }
      state = decoded.state
    }

    var expected = max(base, 1)
    var stopped = false
    var replayed = 0
    for generation in listing.logs where generation >= max(base, 1) {
      let name = StateDirectory.logName(generation)
      if !stopped && generation != expected {
        report.dropped.append("\(StateDirectory.logName(expected)) is missing: every later log is dropped")
        stopped = true
      }
      if stopped {
        report.wasIntact = false
        report.dropped.append("\(name): all of it (it follows the damage)")
        continue
      }
      expected += 1
      let bytes = (try? directory.read(name)) ?? []
      let outcome = LogReplay.replay(bytes, generation: generation, into: &state, lenient: lenient)
      replayed += outcome.records
      guard let stop = outcome.stop else { continue }
      if generation == listing.logs.last && !outcome.intactAfterStop {
        report.dropped.append("\(name): its torn last record (\(bytes.count - stop.offset) bytes at \(stop.offset), never acknowledged)")
      } else {
        report.wasIntact = false
        report.dropped.append("\(name) from byte \(stop.offset) on (\(stop.reason)): \(bytes.count - stop.offset) bytes")
        stopped = true
      }
    }
    state.endReplay()
    let problems = state.problems
    if !problems.isEmpty {
      report.wasIntact = false
      report.dropped.append("the tree was not whole (\(problems.prefix(3).joined(separator: "; "))\(problems.count > 3 ? "; …" : "")): repaired")
    }
    let repaired = state.repairTree()
    if !repaired.isEmpty {
      report.wasIntact = false
      let shown = repaired.prefix(10).joined(separator: ", ")
      report.dropped.append("\(repaired.count) nodes cut off from the tree by the damage: \(shown)\(repaired.count > 10 ? ", …" : "")")
    }
    report.kept = "\(state.nodes.count) nodes, \(state.domains.count) domains, \(replayed) log records replayed."
    guard !report.wasIntact else {
      report.dropped.removeAll()
      return report
    }

    // The new generation first, so that a crash meanwhile leaves a loadable directory.
    let generation = max(listing.snapshots.last ?? 0, listing.logs.last ?? 0) + 1
    let bootID = StateDirectory.currentBootID
    let log = try LogFile.create(in: directory, generation: generation, bootID: bootID)
    log.close()
    try directory.writeAtomically(StateDirectory.snapshotName(generation),
                                  SnapshotFile.encode(state, generation: generation, bootID: bootID))
    let aside = "damaged-" + Self.timestamp()
    guard mkdir(directory.file(aside), 0o700) == 0 || errno == EEXIST else { throw .stateIO("cannot create", directory.file(aside)) }
    let old = listing.snapshots.map(StateDirectory.snapshotName) + listing.logs.map(StateDirectory.logName) + listing.temporaries
    for name in old where rename(directory.file(name), directory.file(aside + "/" + name)) != 0 {
      throw .stateIO("cannot move", directory.file(name))
    }
    try directory.sync()
    report.movedTo = directory.file(aside)
    return report
  }

  private static func timestamp() -> String {
    var now = time(nil)
    var parts = tm()
    gmtime_r(&now, &parts)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
  }
}
