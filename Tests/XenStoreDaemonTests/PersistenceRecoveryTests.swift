#if canImport(Glibc)
import Glibc
#endif
import Logging
import Testing
import TestSupport
import XenStore
@testable import XenStoreDaemon

/// A daemon with a state directory, restarted in this process: what survives a restart, and
/// what happens to a torn log, a damaged snapshot or log, a missing log, a second daemon,
/// and a state written during an earlier boot. (SIGKILL at random points: CrashRecoveryTests.)
@Suite(.serialized) struct PersistenceRecoveryTests {
  /// One temporary directory: the socket, and the state directory that outlives each server.
  final class Fixture {
    let directory = TemporaryDirectory("dur")
    var socket: String { directory.appending("socket") }
    var state: StateDirectory { StateDirectory(directory.appending("state")) }

    func configuration(compactionBytes: Int = 16 << 20) -> XenstoredConfiguration {
      var logger = Logger(label: "persistence-test")
      logger.logLevel = .critical
      var configuration = XenstoredConfiguration(socketPath: socket, logger: logger)
      configuration.durability = DurabilityConfiguration(stateDirectory: state.path, compactionBytes: compactionBytes)
      return configuration
    }

    func start(compactionBytes: Int = 16 << 20) throws(XenstoredError) -> XenstoredServer {
      let server = XenstoredServer(configuration(compactionBytes: compactionBytes))
      try server.start()
      return server
    }

    /// Starts a server, runs `body` with a client, stops both.
    func session(compactionBytes: Int = 16 << 20, _ body: (XenStoreClient, XenstoredServer) async throws -> Void) async throws {
      let server = try start(compactionBytes: compactionBytes)
      defer { server.stop() }
      let client = try await XenStoreClient.connect(to: socket)
      defer { client.close() }
      try await body(client, server)
    }

    /// The start error, if starting fails.
    func startFailure() -> XenstoredError? {
      do throws(XenstoredError) {
        try start().stop()
        return nil
      } catch {
        return error
      }
    }

    func newestLog() throws -> String { StateDirectory.logName(try state.listing().logs.last!) }
    func newestSnapshot() throws -> String { StateDirectory.snapshotName(try state.listing().snapshots.last!) }

    /// Byte offsets of the records of a file.
    func recordOffsets(_ name: String) throws -> [Int] {
      let bytes = try state.read(name)
      var offsets: [Int] = []
      var offset = 0
      while case .record(_, let next) = Frame.read(bytes, at: offset) {
        offsets.append(offset)
        offset = next
      }
      return offsets
    }

    func overwrite(_ name: String, _ bytes: [UInt8]) throws {
      try state.remove(name)
      let fd = open(state.file(name), O_WRONLY | O_CREAT | O_TRUNC, 0o600)
      try StateDirectory.writeAll(fd, bytes, path: name)
      close(fd)
    }

    func flipByte(_ name: String, at offset: Int) throws {
      var bytes = try state.read(name)
      bytes[offset] ^= 0x20
      try overwrite(name, bytes)
    }

    func files() throws -> [String] {
      let listing = try state.listing()
      return listing.snapshots.map(StateDirectory.snapshotName) + listing.logs.map(StateDirectory.logName)
    }

    deinit { directory.remove() }
  }

  @Test func aRestartKeepsTheTreePermissionsDomainsAndSpecialAccessLists() async throws {
    let f = Fixture()
    try await f.session { client, _ in
      try await client.write("/vm/1/name", "guest")
      try await client.write("/vm/1/binary", bytes: [0, 1, 2, 255])
      try await client.introduce(domain: 5, gfn: 1, eventChannel: 2)
      try await client.introduce(domain: 6, gfn: 1, eventChannel: 2)
      try await client.setTarget(domain: 6, target: 5)
      try await client.write("/local/domain/5/device-model-pid", "1234:5678:boot")
      try await client.setPermissions("/local/domain/5", Permissions([Permission(domain: 5, access: .none), Permission(domain: 0, access: .read)])!)
      try await client.setPermissions("@releaseDomain", Permissions([Permission(domain: 0, access: .none), Permission(domain: 5, access: .read)])!)
      try await client.transaction { t in
        try await t.write("/vm/2/a", "x")
        try await t.write("/vm/2/b", "y")
        try await t.rm("/vm/1/binary")
      }
    }
    let server = try f.start()
    defer { server.stop() }
    let report = try #require(server.recoveryReport)
    #expect(report.records == 9 && report.tornTail == nil && !report.isFromEarlierBoot)
    let client = try await XenStoreClient.connect(to: f.socket)
    defer { client.close() }
    #expect(try await client.read("/vm/1/name") == "guest")
    #expect(try await !client.exists("/vm/1/binary"))
    #expect(try await client.directory("/vm") == ["1", "2"])
    #expect(try await client.read("/vm/2/b") == "y")
    #expect(try await client.read("/local/domain/5/device-model-pid") == "1234:5678:boot")
    #expect(try await client.getPermissions("/local/domain/5").description == "n5,r0")
    #expect(try await client.isDomainIntroduced(5))
    #expect(try await client.isDomainIntroduced(6))
    #expect(access(server.domainSocketPath(for: 5), F_OK) == 0, "a restored domain gets its socket back")
    let engineView = try await server.withEngine { engine in
      ("\(engine.domains[6]?.target.map(String.init) ?? "none")", engine.specialPermissions["@releaseDomain"]!.description)
    }
    #expect(engineView == ("5", "n0,r5"))
    #expect(try await client.control("check") == "OK")
  }

  @Test func withoutAStateDirectoryNothingIsWritten() throws {
    let f = Fixture()
    var configuration = f.configuration()
    configuration.durability = nil
    let server = XenstoredServer(configuration)
    try server.start()
    server.stop()
    #expect(server.recoveryReport == nil)
    #expect(access(f.state.path, F_OK) != 0)
  }

  @Test func aTornLastRecordIsDroppedAndTheRestKept() async throws {
    let f = Fixture()
    try await f.session { client, _ in
      try await client.write("/a", "1")
      try await client.write("/b", "2")
    }
    let log = try f.newestLog()
    let size = try f.state.read(log).count
    let last = try f.recordOffsets(log).last!
    try f.state.truncate(log, to: size - 3)

    let server = try f.start()
    let torn = try #require(server.recoveryReport?.tornTail)
    #expect(torn.file == log && torn.offset == last && torn.droppedBytes == size - 3 - last)
    #expect(server.recoveryReport?.description.contains("dropped the torn last record of \(log)") == true)
    let client = try await XenStoreClient.connect(to: f.socket)
    #expect(try await client.read("/a") == "1")
    #expect(try await !client.exists("/b"))
    client.close()
    server.stop()
  }

  @Test func zerosAfterTheLastRecordAreUnusedSpaceNotDamage() async throws {
    let f = Fixture()
    try await f.session { client, _ in try await client.write("/a", "1") }
    let log = try f.newestLog()
    // What a killed daemon leaves: the log's preallocated zeros after its last record.
    try f.overwrite(log, try f.state.read(log) + [UInt8](repeating: 0, count: 4096))
    let server = try f.start()
    #expect(server.recoveryReport?.tornTail == nil)
    let client = try await XenStoreClient.connect(to: f.socket)
    #expect(try await client.read("/a") == "1")
    client.close()
    server.stop()
  }

  @Test func aRecordCutShortBeforeTheZerosIsATornTail() async throws {
    let f = Fixture()
    try await f.session { client, _ in
      try await client.write("/a", "1")
      try await client.write("/b", "2")
    }
    let log = try f.newestLog()
    let bytes = try f.state.read(log)
    let last = try f.recordOffsets(log).last!
    // The last record's first 20 bytes reached the disk, the rest of its page did not.
    try f.overwrite(log, Array(bytes[..<(last + 20)]) + [UInt8](repeating: 0, count: 4096))
    let server = try f.start()
    let torn = try #require(server.recoveryReport?.tornTail)
    #expect(torn.offset == last && torn.droppedBytes == 20 + 4096 && torn.reason == "checksum mismatch")
    let client = try await XenStoreClient.connect(to: f.socket)
    #expect(try await client.read("/a") == "1")
    #expect(try await !client.exists("/b"))
    client.close()
    server.stop()
  }

  @Test func aDamagedSnapshotIsRefusedWithItsFileAndOffsetAndRecoverKeepsWhatPrecedesTheDamage() async throws {
    let f = Fixture()
    try await f.session { client, _ in
      for i in 0..<2000 { try await client.write("/data/\(i % 20)/\(i)", String(repeating: "x", count: 40)) }
    }
    // The next start writes everything into a new snapshot.
    try f.start().stop()
    let snapshot = try f.newestSnapshot()
    let offsets = try f.recordOffsets(snapshot)
    #expect(offsets.count > 4, "header, meta, several node batches, end")
    try f.flipByte(snapshot, at: offsets[3] + 20)
    let before = try f.files()

    let error = try #require(f.startFailure())
    #expect(error.code == .stateCorrupted)
    #expect(error.message.hasPrefix("\(f.state.file(snapshot)) is damaged at byte offset \(offsets[3]) (checksum mismatch)"))
    #expect(error.message.contains("xenstored --state-dir \(f.state.path) --recover"))
    #expect(try f.files() == before, "a refused start changes nothing")

    let report = try StateSalvage.recover(stateDirectory: f.state.path)
    #expect(!report.wasIntact)
    #expect(report.dropped.first?.hasPrefix("\(snapshot) from byte \(offsets[3]) on (checksum mismatch)") == true)
    let movedTo = try #require(report.movedTo)
    #expect(access(movedTo + "/" + snapshot, F_OK) == 0)

    let server = try f.start()
    defer { server.stop() }
    let client = try await XenStoreClient.connect(to: f.socket)
    defer { client.close() }
    #expect(try await client.control("check") == "OK")
    let kept = try await client.directory("/data").count
    #expect(kept > 0 && kept < 20, "the batches before the damage are kept, the damaged one is not")
  }

  @Test func aCutShortSnapshotIsRefused() async throws {
    let f = Fixture()
    try await f.session { client, _ in try await client.write("/a", "1") }
    try f.start().stop()
    let snapshot = try f.newestSnapshot()
    let bytes = try f.state.read(snapshot)
    let end = try f.recordOffsets(snapshot).last!
    try f.overwrite(snapshot, Array(bytes[..<end]))
    let error = try #require(f.startFailure())
    #expect(error.code == .stateCorrupted)
    #expect(error.message.hasPrefix("\(f.state.file(snapshot)) is damaged at byte offset \(end) (the snapshot ends before its end record)"))
  }

  @Test func damageInTheMiddleOfTheLogIsRefusedAndRecoverKeepsEveryRecordBeforeIt() async throws {
    let f = Fixture()
    try await f.session { client, _ in
      for i in 0..<10 { try await client.write("/k\(i)", "v\(i)") }
    }
    let log = try f.newestLog()
    let offsets = try f.recordOffsets(log)
    #expect(offsets.count == 11, "header and ten records")
    try f.flipByte(log, at: offsets[6] + 14)   // inside the sixth write's record (k5)

    let error = try #require(f.startFailure())
    #expect(error.code == .stateCorrupted)
    #expect(error.message.hasPrefix("\(f.state.file(log)) is damaged at byte offset \(offsets[6]) (checksum mismatch)"))

    let report = try StateSalvage.recover(stateDirectory: f.state.path)
    #expect(report.dropped.first?.hasPrefix("\(log) from byte \(offsets[6]) on (checksum mismatch)") == true)
    #expect(report.description.contains("Recovered: "))
    let server = try f.start()
    defer { server.stop() }
    let client = try await XenStoreClient.connect(to: f.socket)
    defer { client.close() }
    for i in 0..<10 {
      #expect(try await client.exists("/k\(i)") == (i < 5), "k\(i)")
    }
  }

  /// Writes `state` as snapshot 1 with an empty log 1, as a daemon would leave them.
  func plant(_ state: DurableState, in f: Fixture) throws {
    try f.state.create()
    try f.state.writeAtomically(StateDirectory.snapshotName(1), SnapshotFile.encode(state, generation: 1, bootID: "b"))
    var log: [UInt8] = []
    Frame.append(FileHeader(kind: .log, generation: 1, bootID: "b").encoded(), to: &log)
    try f.overwrite(StateDirectory.logName(1), log)
  }

  @Test func intactRecordsOfABrokenTreeAreRefusedAndRecoverRepairsThem() async throws {
    let f = Fixture()
    var state = DurableState.initial
    state.nodes["/orphan"] = Node(value: Array("x".utf8), permissions: Permissions(owner: 0))
    var tool = state.nodes["/tool"]!
    tool.addChild("ghost")
    state.nodes["/tool"] = tool
    try plant(state, in: f)
    let error = try #require(f.startFailure())
    #expect(error.code == .stateCorrupted)
    #expect(error.message.hasPrefix("""
      \(f.state.file(StateDirectory.snapshotName(1))) gives a state xenstored cannot have made \
      (/orphan is not listed by its parent; /tool lists missing child ghost); refusing to start
      """))

    let report = try StateSalvage.recover(stateDirectory: f.state.path)
    #expect(report.dropped.first == "the tree was not whole (/orphan is not listed by its parent; /tool lists missing child ghost): repaired")
    #expect(report.dropped.last == "1 nodes cut off from the tree by the damage: /orphan")
    let server = try f.start()
    defer { server.stop() }
    let client = try await XenStoreClient.connect(to: f.socket)
    defer { client.close() }
    #expect(try await client.directory("/tool") == ["xenstored"])
    #expect(try await !client.exists("/orphan"))
    #expect(try await client.control("check") == "OK")
  }

  @Test func aDomainTableNamingADomainTwiceIsDamageNotACrash() throws {
    let f = Fixture()
    var state = DurableState.initial
    state.domains = [DomainEntry(domid: 0), DomainEntry(domid: 5), DomainEntry(domid: 5)]
    try plant(state, in: f)
    let meta = try f.recordOffsets(StateDirectory.snapshotName(1))[1]
    let error = try #require(f.startFailure())
    #expect(error.message.hasPrefix("\(f.state.file(StateDirectory.snapshotName(1))) is damaged at byte offset \(meta) (domain 5 listed twice)"))
    state.domains = [DomainEntry(domid: 5)]
    try f.state.remove(StateDirectory.snapshotName(1))
    try plant(state, in: f)
    #expect(f.startFailure()?.message.contains("(no domain 0 in the domain table)") == true)
  }

  @Test func recoverLeavesAnIntactDirectoryAlone() async throws {
    let f = Fixture()
    try await f.session { client, _ in try await client.write("/a", "1") }
    let before = try f.files()
    let report = try StateSalvage.recover(stateDirectory: f.state.path)
    #expect(report.wasIntact && report.movedTo == nil)
    #expect(report.description.hasPrefix("The state is intact: nothing to recover."))
    #expect(try f.files() == before)
  }

  @Test func aMissingLogIsRefused() async throws {
    let f = Fixture()
    try await f.session { client, _ in try await client.write("/a", "1") }
    let log = try f.newestLog()
    try f.state.remove(log)
    let error = try #require(f.startFailure())
    #expect(error.code == .stateCorrupted)
    #expect(error.message.hasPrefix("\(f.state.file(log)) is missing"))
  }

  @Test func aSecondDaemonOnTheSameStateDirectoryIsRefused() throws {
    let f = Fixture()
    let first = try f.start()
    defer { first.stop() }
    var configuration = f.configuration()
    configuration.socketPath = f.directory.appending("other-socket")
    configuration.domainSocketDirectory = configuration.socketPath + ".d"
    let error = try #require({ () -> XenstoredError? in
      do throws(XenstoredError) { try XenstoredServer(configuration).start(); return nil } catch { return error }
    }())
    #expect(error.code == .stateLocked)
    #expect(error.message == "state directory \(f.state.path) is in use by another xenstored")
  }

  @Test func compactionWhileServingKeepsEverythingAndDropsOldFiles() async throws {
    let f = Fixture()
    try await f.session(compactionBytes: 2048) { client, _ in
      for i in 0..<600 { try await client.write("/c/\(i % 30)/\(i)", "value-\(i)") }
      try await client.rm("/c/0")
    }
    let listing = try f.state.listing()
    #expect(listing.snapshots.count == 1 && listing.logs.count == 1 && listing.temporaries.isEmpty,
            "\(listing.snapshots) \(listing.logs)")
    let server = try f.start()
    defer { server.stop() }
    #expect(server.recoveryReport!.generation > 3, "the log was compacted while serving")
    let client = try await XenStoreClient.connect(to: f.socket)
    defer { client.close() }
    #expect(try await client.directory("/c").count == 29)
    #expect(try await client.read("/c/29/599") == "value-599")
    #expect(try await client.directory("/c/7").count == 20)
    #expect(try await client.control("check") == "OK")
  }

  @Test func aStateFromAnEarlierBootIsLoadedAndSaysSo() async throws {
    let f = Fixture()
    try f.state.create()
    // What a daemon of an earlier boot left: a device model's identity under its domain.
    let h = EngineHarness()
    let dom0 = h.connect()
    h.call(dom0, .introduce, "3", "1", "2")
    h.write(dom0, "/local/domain/3/image/device-model-pid", "4242:99:00000000-0000-0000-0000-000000000000")
    try f.state.writeAtomically(StateDirectory.snapshotName(1),
                                SnapshotFile.encode(h.engine.durableState, generation: 1, bootID: "00000000-0000-0000-0000-000000000000"))
    var log: [UInt8] = []
    Frame.append(FileHeader(kind: .log, generation: 1, bootID: "00000000-0000-0000-0000-000000000000").encoded(), to: &log)
    try f.overwrite(StateDirectory.logName(1), log)

    let server = try f.start()
    defer { server.stop() }
    let report = try #require(server.recoveryReport)
    #expect(report.isFromEarlierBoot && report.previousBootID == "00000000-0000-0000-0000-000000000000")
    #expect(report.description.contains("written during an earlier boot"))
    let client = try await XenStoreClient.connect(to: f.socket)
    defer { client.close() }
    #expect(try await client.read("/local/domain/3/image/device-model-pid") == "4242:99:00000000-0000-0000-0000-000000000000")
    #expect(try await client.isDomainIntroduced(3))
    // The next start finds this boot's id: the state was rewritten by this boot's daemon.
    server.stop()
    let again = try f.start()
    #expect(again.recoveryReport?.isFromEarlierBoot == false)
    again.stop()
  }

  @Test func afterARestartEveryWatchFiresOnceAtRegistration() async throws {
    let f = Fixture()
    try await f.session { client, _ in try await client.write("/vm/1/state", "running") }
    try await f.session { client, _ in
      let watch = try await client.watch("/vm")
      var events = watch.makeAsyncIterator()
      #expect(try await events.next()?.path == "/vm")
      try await client.write("/vm/1/state", "paused")
      #expect(try await events.next()?.path == "/vm/1/state")
      try await watch.unwatch()
    }
  }
}
