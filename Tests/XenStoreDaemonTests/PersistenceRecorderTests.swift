import Testing
import TestSupport
import XenStore
@testable import XenStoreDaemon

/// What the log records of each request: replaying the records of random requests rebuilds
/// exactly the engine's durable state, and a transaction is one record or none.
@Suite(.ownThread) struct PersistenceRecorderTests {
  /// An engine whose store reports to a recorder, and a shadow state rebuilt from records only.
  final class Mirror {
    let h = EngineHarness()
    let recorder = ChangeRecorder()
    var shadow: DurableState
    var records: [ChangeRecord] = []

    init() {
      shadow = h.engine.durableState
      h.engine.store.recorder = recorder
    }

    /// The last request's record, through its encoded bytes, applied to the shadow.
    func takeRecord() throws -> ChangeRecord? {
      let taken = recorder.take(from: h.engine)
      guard !taken.changes.isEmpty else { return nil }
      let record = try ChangeRecord(decoding: ChangeRecord(sequence: shadow.sequence + 1, changes: taken.changes).encoded()[...])
      try shadow.apply(record)
      records.append(record)
      return record
    }
  }

  /// Children appended in place during a replay: a record that does not fit is undone
  /// whole (its appends too), a name appended twice is refused, and the lists stay exact.
  @Test func appendsAreUndoneWithTheirRecordAndRefusedTwice() throws {
    var state = DurableState.initial
    let owner = Permissions(owner: 0)
    try state.apply(ChangeRecord(sequence: 1, changes: [
      .put(path: "/d", value: [], permissions: owner, children: .all([])),
      .put(path: "/", value: [], permissions: owner, children: .append("d")),
    ]))
    let appends: [StateChange] = [
      .put(path: "/d", value: Array("v".utf8), permissions: owner, children: .append("a")),
      .put(path: "/d/a", value: [], permissions: owner, children: .all([])),
      .put(path: "/d", value: Array("w".utf8), permissions: owner, children: .append("b")),
      .put(path: "/d/b", value: [], permissions: owner, children: .all([])),
    ]
    #expect(throws: DurableState.Inconsistency.self) {
      try state.apply(ChangeRecord(sequence: 2, changes: appends + [.remove(path: "/missing")]))
    }
    #expect(state.sequence == 1)
    #expect(state.nodes["/d"]?.children == [])
    #expect(state.nodes["/d"]?.value == [])
    #expect(state.nodes["/d/a"] == nil)

    try state.apply(ChangeRecord(sequence: 2, changes: appends))
    #expect(state.nodes["/d"]?.children == ["a", "b"])
    #expect(state.nodes["/d"]?.value == Array("w".utf8))
    do {
      try state.apply(ChangeRecord(sequence: 3, changes: [
        .put(path: "/d", value: [], permissions: owner, children: .append("c")),
        .put(path: "/d", value: [], permissions: owner, children: .append("a")),
      ]))
      Issue.record("a child appended twice was taken")
    } catch {
      #expect(error.description == "cannot add child a to /d")
    }
    #expect(state.nodes["/d"]?.children == ["a", "b"], "the refused record's first append is undone too")
    try state.apply(ChangeRecord(sequence: 3, changes: [
      .put(path: "/d", value: [], permissions: owner, children: .remove("a")),
      .put(path: "/d", value: [], permissions: owner, children: .append("a")),
    ]))
    #expect(state.nodes["/d"]?.children == ["b", "a"])
    state.endReplay()
    #expect(state.problems.isEmpty)
  }

  @Test(arguments: [UInt64(11), 12, 13])
  func replayingTheRecordsOfRandomRequestsRebuildsTheState(seed: UInt64) throws {
    var random = RandomRequestTests.SplitMix(state: seed)
    let m = Mirror()
    let dom0 = m.h.connect()
    var connections = [dom0, dom0, m.h.connect(5)]
    let names = ["a", "b", "c", "local", "domain", "5", "6"]
    let types: [MessageType] = [.write, .write, .write, .mkdir, .rm, .rm, .setPerms, .transactionStart,
                                .transactionEnd, .read, .introduce, .release, .setTarget]
    var openTransactions: [UInt32] = []
    for step in 0..<4000 {
      let conn = connections.randomElement(using: &random)!
      let path = (["/local/domain/5"] + (0..<Int.random(in: 0...3, using: &random)).map { _ in names.randomElement(using: &random)! })
        .joined(separator: "/")
      let type = types.randomElement(using: &random)!
      let tx = openTransactions.isEmpty || Bool.random(using: &random) ? 0 : openTransactions.randomElement(using: &random)!
      let domid = String(Int.random(in: 5...7, using: &random))
      switch type {
      case .write: m.h.write(conn, path, "v\(step)", tx: tx)
      case .setPerms: m.h.call(conn, .setPerms, path, ["n5", "r0", "b6", "w7"].randomElement(using: &random)!, "r6", tx: tx)
      case .transactionStart:
        if let id = UInt32(m.h.call(conn, .transactionStart).dropLast()) { openTransactions.append(id) }
      case .transactionEnd:
        guard tx != 0 else { continue }
        m.h.call(conn, .transactionEnd, Bool.random(using: &random) ? "T" : "F", tx: tx)
        openTransactions.removeAll { $0 == tx }
      case .introduce: m.h.call(dom0, .introduce, domid, "1", "2")
      case .release: m.h.call(dom0, .release, domid)
      case .setTarget: m.h.call(dom0, .setTarget, domid, "5")
      default: m.h.call(conn, type, path, tx: tx)
      }
      _ = m.h.events(conn)
      for notice in m.h.notices() where notice.hasPrefix("close ") {
        if let i = connections.firstIndex(where: { "close \($0.rawValue)" == notice }) { connections[i] = m.h.connect(5) }
      }
      _ = try m.takeRecord()
      #expect(sameState(m.shadow, m.h.engine.durableState), "after step \(step): \(type)")
      if !sameState(m.shadow, m.h.engine.durableState) { return }
    }
    #expect(m.records.count > 500)
    #expect(m.shadow.treeProblems.isEmpty)
  }

  @Test func aCommittedTransactionIsOneRecordAndAnAbortedOneNone() throws {
    let m = Mirror()
    let dom0 = m.h.connect()
    let tx = UInt32(m.h.call(dom0, .transactionStart).dropLast())!
    for i in 0..<20 { m.h.write(dom0, "/vm/\(i)/name", "guest\(i)", tx: tx) }
    #expect(try m.takeRecord() == nil)
    #expect(m.h.call(dom0, .transactionEnd, "T", tx: tx) == "OK|")
    let record = try #require(try m.takeRecord())
    #expect(record.changes.count > 40)

    let aborted = UInt32(m.h.call(dom0, .transactionStart).dropLast())!
    m.h.write(dom0, "/vm/0/name", "never", tx: aborted)
    m.h.call(dom0, .transactionEnd, "F", tx: aborted)
    #expect(try m.takeRecord() == nil)

    let conflicting = UInt32(m.h.call(dom0, .transactionStart).dropLast())!
    m.h.write(dom0, "/vm/1/name", "never", tx: conflicting)
    m.h.write(dom0, "/vm/1/name", "outside")
    #expect(try m.takeRecord() != nil)
    #expect(m.h.call(dom0, .transactionEnd, "T", tx: conflicting) == "EAGAIN")
    #expect(try m.takeRecord() == nil)
  }

  @Test func readsAndFailedRequestsRecordNothing() throws {
    let m = Mirror()
    let dom0 = m.h.connect()
    let guest = m.h.connect(5)
    m.h.write(dom0, "/a", "1")
    _ = try m.takeRecord()
    m.h.call(dom0, .read, "/a")
    m.h.call(dom0, .directory, "/")
    m.h.call(dom0, .watch, "/a", "tok")
    m.h.write(guest, "/a", "2")                 // EACCES
    m.h.call(dom0, .setPerms, "/a", "n99")      // ENOENT: no domain 99
    m.h.call(dom0, .rm, "/missing")
    m.h.call(dom0, .release, "9")
    #expect(try m.takeRecord() == nil)
  }

  @Test func domainChangesAreRecordedWhole() throws {
    let m = Mirror()
    let dom0 = m.h.connect()
    m.h.call(dom0, .introduce, "5", "1", "2")
    #expect(try m.takeRecord()?.changes == [.domains([DomainEntry(domid: 0), DomainEntry(domid: 5)])])
    m.h.call(dom0, .introduce, "6", "1", "2")
    #expect(try m.takeRecord() != nil)
    m.h.call(dom0, .setTarget, "6", "5")
    #expect(try m.takeRecord()?.changes.last == .domains([DomainEntry(domid: 0), DomainEntry(domid: 5), DomainEntry(domid: 6, target: 5)]))
    m.h.call(dom0, .setPerms, "@releaseDomain", "n0", "r5")
    let special = try #require(try m.takeRecord())
    #expect(special.changes.contains(.specialPermissions(name: "@releaseDomain", Permissions([Permission(domain: 0, access: .none), Permission(domain: 5, access: .read)])!)))
  }
}
