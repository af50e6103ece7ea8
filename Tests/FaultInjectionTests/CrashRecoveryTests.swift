#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import InteropSupport
import TestSupport
import XenStore

/// The real `xenstored --state-dir`, SIGKILLed at random moments under a write load from
/// several clients, restarted each time: every write a client saw acknowledged is there, no
/// value appears that was never written, and each transaction is there whole or not at all.
///
/// `XENSTORED_CRASH_ITERATIONS=500 swift test --filter CrashRecoveryTests` kills it more often.
@Suite(.serialized, .ownThread) struct CrashRecoveryTests {
  /// What one writer knows of its keys (`/crash/w<id>/...`): the values acknowledged, and
  /// the one change in flight when the daemon died, which may or may not have been applied.
  struct WriterModel: Sendable {
    let id: Int
    var acknowledged: [String: String] = [:]   // key → value; a missing key: absent
    var inFlight: [String: String?] = [:]      // key → value, nil: a removal
    var sequence = 0
    var acknowledgedCount = 0
    var transactions = 0

    var base: String { "/crash/w\(id)" }

    /// The values `key` may have now: the acknowledged one (nil: absent) or the one in flight.
    func allowed(_ key: String) -> [String?] {
      var values: [String?] = [acknowledged[key]]
      if let pending = inFlight[key] { values.append(pending) }
      return values
    }
  }

  static let domid: UInt32 = 50

  @Test func sigkillAtRandomPointsLosesNoAcknowledgedWriteAndInventsNone() async throws {
    let iterations = getenv("XENSTORED_CRASH_ITERATIONS").flatMap { Int(String(cString: $0)) } ?? 25
    let directory = TemporaryDirectory("crash")
    defer { directory.remove() }
    let socket = directory.appending("socket")
    let arguments = ["-N", "--socket", socket, "--state-dir", directory.appending("state"), "--ready-fd", "3",
                     "--compact-after", "8192"]
    var models = (0..<4).map { WriterModel(id: $0) }
    var domainAcknowledged = false
    var domainInFlight: Bool?
    var random = SystemRandomNumberGenerator()

    for iteration in 0...iterations {
      let pid = try spawnConfirmed(BuiltProducts.path("xenstored"), arguments, log: directory.appending("stderr"))
      let checker = try await XenStoreClient.connect(to: socket)
      for i in models.indices {
        try await verify(&models[i], with: checker, iteration: iteration)
      }
      let introduced = try await checker.isDomainIntroduced(Self.domid)
      #expect(introduced == domainAcknowledged || introduced == domainInFlight, "domain \(Self.domid) after restart \(iteration)")
      domainAcknowledged = introduced
      domainInFlight = nil
      #expect(try await checker.control("check") == "OK")
      checker.close()
      if iteration == iterations {
        kill(pid, SIGTERM)
        _ = await waitForExit(pid, seconds: 30)
        break
      }

      // The load: four writers until the daemon dies under them.
      let writers = models.map { model in
        Task { await Self.write(model, socket: socket) }
      }
      let introducedNow = domainAcknowledged
      let domainTask = Task { await Self.toggleDomain(socket: socket, introduced: introducedNow) }
      try await Task.sleep(for: .milliseconds(Int.random(in: 20...400, using: &random)))
      kill(pid, SIGKILL)
      _ = await waitForExit(pid, seconds: 30)
      for (i, writer) in writers.enumerated() { models[i] = await writer.value }
      (domainAcknowledged, domainInFlight) = await domainTask.value
    }
    let acknowledged = models.reduce(0) { $0 + $1.acknowledgedCount }
    let transactions = models.reduce(0) { $0 + $1.transactions }
    #expect(acknowledged > iterations * 4, "the load must have written between the kills")
    #expect(transactions > 0)
  }

  @Test func aDamagedStateStopsTheDaemonAndRecoverKeepsWhatItCan() async throws {
    let directory = TemporaryDirectory("crash")
    defer { directory.remove() }
    let socket = directory.appending("socket"), state = directory.appending("state")
    let xenstored = BuiltProducts.path("xenstored")
    var pid = try spawnConfirmed(xenstored, ["-N", "--socket", socket, "--state-dir", state, "--ready-fd", "3"],
                                 log: directory.appending("stderr"))
    let client = try await XenStoreClient.connect(to: socket)
    try await client.write("/vm/1/name", "guest")
    try await client.write("/vm/2/name", "other")
    client.close()
    kill(pid, SIGTERM)
    _ = await waitForExit(pid, seconds: 30)

    let snapshot = try Self.damageSnapshot(in: state)

    let refused = try await run([xenstored, "-N", "--socket", socket, "--state-dir", state])
    #expect(refused.status == 1)
    #expect(refused.stderr.contains("\(state)/\(snapshot) is damaged at byte offset 0 (checksum mismatch); refusing to start"))
    #expect(refused.stderr.contains("xenstored --state-dir \(state) --recover"))

    let recovered = try await run([xenstored, "--state-dir", state, "--recover"])
    #expect(recovered.status == 0, "\(recovered)")
    #expect(recovered.stdout.hasPrefix("Recovered: "))
    #expect(recovered.stdout.contains("Dropped: \(snapshot) from byte 0 on (checksum mismatch)"))
    #expect(recovered.stdout.contains("The damaged files were moved to \(state)/damaged-"))
    #expect(try await run([xenstored, "--state-dir", state, "--recover"]).stdout.hasPrefix("The state is intact"))

    pid = try spawnConfirmed(xenstored, ["-N", "--socket", socket, "--state-dir", state, "--ready-fd", "3"],
                             log: directory.appending("stderr"))
    defer {
      kill(pid, SIGTERM)
      reap(pid, seconds: 30)
    }
    let after = try await XenStoreClient.connect(to: socket)
    defer { after.close() }
    // The log's records still apply to what is left: both writes are back.
    #expect(try await after.read("/vm/1/name") == "guest")
    #expect(try await after.read("/vm/2/name") == "other")
    #expect(try await after.control("check") == "OK")
  }

  /// A host reboot, as far as one can be made here: the device model is gone, and its
  /// recorded identity (from the earlier boot) names a pid that a live process now has, with
  /// the same start time even. xenstored crashes and comes back from its state directory;
  /// `xl destroy` removes the domain's records and signals nothing.
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func afterACrashAndAnotherBootXlDestroyRemovesTheRecordsAndSignalsNothing() async throws {
    let bed = try XlTestbed(xenstored: false)
    defer { bed.stop() }
    let xenstored = BuiltProducts.path("xenstored")
    let arguments = ["-N", "--socket", bed.socketPath, "--state-dir", bed.directory.appending("state"), "--ready-fd", "3"]
    var daemon = try spawnConfirmed(xenstored, arguments, log: bed.directory.appending("xenstored.log"))
    defer {
      kill(daemon, SIGTERM)
      reap(daemon, seconds: 30)
    }
    let created = try await bed.xl(["create", "-q", "-e", bed.tinyGuest()])  // -e: unmonitored, the domain stays as it died
    #expect(created.status == 0, "\(created)")
    let recorded = try #require(try await bed.read("/libxl/1/device-model-identity"))
    let deviceModel = try #require(ProcessIdentity(recorded))
    kill(deviceModel.pid, SIGKILL)
    #expect(await awaitExit(deviceModel.pid, seconds: 30))

    // The process that now has "the device model's pid" in the new boot: a sleep of ours.
    let bystander = try spawnBackground(["/bin/sleep", "1000"], environment: [:], output: bed.directory.appending("sleep.out"))
    defer {
      kill(bystander, SIGKILL)
      reap(bystander, seconds: 10)
    }
    let live = try ProcessIdentity.of(pid: bystander)
    let earlierBoot = ProcessIdentity(pid: live.pid, startTime: live.startTime, bootID: "00000000-0000-0000-0000-000000000000")
    let client = try await bed.client()
    try await client.write("/libxl/1/device-model-identity", earlierBoot.description)
    client.close()

    kill(daemon, SIGKILL)
    _ = await waitForExit(daemon, seconds: 30)
    daemon = try spawnConfirmed(xenstored, arguments, log: bed.directory.appending("xenstored.log"))
    #expect(try await bed.read("/libxl/1/device-model-identity") == earlierBoot.description, "the record survived the crash")

    let destroyed = try await bed.xl(["destroy", "tiny"])
    #expect(destroyed.status == 0, "\(destroyed)")
    #expect(destroyed.stdout.contains("already exited"), "\(destroyed)")
    #expect(isAlive(bystander), "a process of another boot's pid was signalled")
    try await bed.expectNoLeftovers()
  }

  /// The xenstored that `xl create` starts keeps its state in `$XEN_LIB_DIR/xenstored`. Killed,
  /// it is brought back by the next `xl` (here `list`) with the domain's records, and
  /// `xl destroy` then stops the device model it recorded.
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func xlsXenstoredComesBackFromItsStateAndDestroyStillStopsTheDeviceModel() async throws {
    let bed = try XlTestbed(xenstored: false)
    defer { bed.stop() }
    // -e: no domain monitor, whose reconnection GuestLifecycleTests covers.
    let created = try await bed.xl(["create", "-e", bed.tinyGuest()])
    #expect(created.status == 0, "\(created)")
    let first = try #require(bracketedPID(created.stderr))
    let recorded = try #require(try await bed.read("/libxl/1/device-model-identity"))
    let deviceModel = try #require(ProcessIdentity(recorded))
    #expect(Self.names(in: bed.xenstoredStateDirectory).contains("lock"))
    kill(first, SIGKILL)
    #expect(await awaitExit(first, seconds: 30))  // not our child: xl detached it

    let listed = try await bed.xl(["list"])
    #expect(listed.status == 0, "\(listed)\nxenstored.log:\n\((try? readFile(bed.logDirectory + "/xenstored.log")) ?? "none")")
    #expect(normalized(listed.stderr) == """
      xl: no xenstored answered at \(bed.socketPath); started \(BuiltProducts.path("xenstored")) [PID] \
      on its saved state in \(bed.xenstoredStateDirectory)

      """)
    let second = try #require(bracketedPID(listed.stderr))
    defer {
      kill(second, SIGTERM)
      #expect(awaitExitInCleanup(second, seconds: 30))
    }
    #expect(listed.stdout.split(separator: "\n").contains { $0.hasPrefix("tiny ") && $0.contains(" 1 ") }, "\(listed)")

    let destroyed = try await bed.xl(["destroy", "tiny"])
    #expect(destroyed.status == 0, "\(destroyed)")
    #expect(destroyed.stdout == "Domain 1 (tiny) destroyed: device model stopped\n")
    #expect(!isAlive(deviceModel.pid))
    try await bed.expectNoLeftovers()
  }

  /// With no xenstored and no saved state there is nothing to list: `xl list` starts nothing.
  @Test func xlListWithoutXenstoredOrSavedStateStartsNothing() async throws {
    let bed = try XlTestbed(xenstored: false)
    defer { bed.stop() }
    let listed = try await bed.xl(["list"])
    #expect(listed.status == 0, "\(listed)")
    #expect(listed.stderr == "")
    #expect(listed.stdout.split(separator: "\n").count == 1, "only the header")
    #expect(access(bed.socketPath, F_OK) != 0, "no xenstored was started")
  }

  /// A damaged saved state: the xenstored `xl` starts refuses it, and `xl` says so in the
  /// daemon's words (which file, where, and the command that recovers it).
  @Test func xlReportsADamagedSavedStateInTheDaemonsWords() async throws {
    let bed = try XlTestbed(xenstored: false)
    defer { bed.stop() }
    let state = bed.xenstoredStateDirectory
    mkdir(bed.libDirectory, 0o755)
    let pid = try spawnConfirmed(BuiltProducts.path("xenstored"), ["-N", "--socket", bed.socketPath, "--state-dir", state, "--ready-fd", "3"],
                                 log: bed.directory.appending("xenstored.err"))
    kill(pid, SIGTERM)
    _ = await waitForExit(pid, seconds: 30)
    let snapshot = try Self.damageSnapshot(in: state)

    for command in [["list"], ["destroy", "tiny"], ["create", "-q", bed.tinyGuest()]] {
      let result = try await bed.xl(command)
      #expect(result.status == 2, "\(command): \(result)")
      #expect(result.stderr.hasPrefix("xl: no xenstored answers at \(bed.socketPath), and starting one failed: "), "\(result)")
      #expect(result.stderr.contains("\(state)/\(snapshot) is damaged at byte offset 0 (checksum mismatch); refusing to start"), "\(result)")
      #expect(result.stderr.contains("xenstored --state-dir \(state) --recover"), "\(result)")
      #expect(access(bed.socketPath, F_OK) != 0, "no xenstored serves")
    }
  }

  @Test func aSecondDaemonOnTheSameStateDirectoryIsRefusedWithTheHoldersPid() async throws {
    let directory = TemporaryDirectory("crash")
    defer { directory.remove() }
    let state = directory.appending("state")
    let first = try spawnConfirmed(BuiltProducts.path("xenstored"),
                                   ["-N", "--socket", directory.appending("one"), "--state-dir", state, "--ready-fd", "3"],
                                   log: directory.appending("stderr"))
    defer {
      kill(first, SIGTERM)
      reap(first, seconds: 30)
    }
    let second = try await run([BuiltProducts.path("xenstored"), "-N", "--socket", directory.appending("two"), "--state-dir", state])
    #expect(second.status == 1)
    #expect(second.stderr.contains("state directory \(state) is in use by another xenstored (pid \(first))"), "\(second)")
    let recover = try await run([BuiltProducts.path("xenstored"), "--state-dir", state, "--recover"])
    #expect(recover.status == 1 && recover.stderr.contains("is in use by another xenstored"), "\(recover)")
  }

  @Test func recoverNeedsAStateDirectory() async throws {
    let result = try await run([BuiltProducts.path("xenstored"), "--recover"])
    #expect(result.status == 64)
    #expect(result.stderr.contains("--recover needs --state-dir"))
  }

  /// Flips one byte of the snapshot's header record in `state` (it is then unreadable from
  /// byte 0) and returns the snapshot's name.
  static func damageSnapshot(in state: String) throws -> String {
    let snapshot = try #require(names(in: state).first { $0.hasPrefix("snapshot-") })
    let fd = open(state + "/" + snapshot, O_RDWR)
    defer { close(fd) }
    var byte: UInt8 = 0
    pread(fd, &byte, 1, 14)
    byte ^= 0xff
    pwrite(fd, &byte, 1, 14)
    return snapshot
  }

  static func names(in directory: String) -> [String] {
    guard let dir = opendir(directory) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
      names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
    }
    return names.sorted()
  }

  /// Each key of the writer holds an allowed value, and nothing else is under its base;
  /// the model then takes what is there as acknowledged.
  private func verify(_ model: inout WriterModel, with client: XenStoreClient, iteration: Int) async throws {
    let listed = try await client.exists(model.base) ? try await client.directory(model.base) : []
    let keys = Set(listed.filter { $0 != "tx" } + model.acknowledged.keys + model.inFlight.keys.filter { !$0.hasPrefix("tx/") })
    for key in keys {
      let value = try await read(client, "\(model.base)/\(key)")
      #expect(model.allowed(key).contains(value), "w\(model.id)/\(key) = \(value ?? "absent") after restart \(iteration); allowed \(model.allowed(key))")
      if let value { model.acknowledged[key] = value } else { model.acknowledged[key] = nil }
    }
    // A transaction's two nodes: both from the same commit, an allowed one.
    let a = try await read(client, "\(model.base)/tx/a")
    let b = try await read(client, "\(model.base)/tx/b")
    #expect(a == b, "w\(model.id): a transaction applied in part after restart \(iteration): \(a ?? "absent") / \(b ?? "absent")")
    #expect(model.allowed("tx/a").contains(a), "w\(model.id)/tx = \(a ?? "absent") after restart \(iteration)")
    model.acknowledged["tx/a"] = a
    model.acknowledged["tx/b"] = b
    model.inFlight.removeAll()
  }

  private func read(_ client: XenStoreClient, _ path: String) async throws -> String? {
    do {
      return try await client.read(path)
    } catch let error as XenStoreError where error.code == .ENOENT {
      return nil
    }
  }

  /// Writes, removes and two-node transactions on the writer's own keys until the
  /// connection is lost; each change is in flight until its reply, acknowledged after.
  private static func write(_ start: WriterModel, socket: String) async -> WriterModel {
    var model = start
    guard let client = try? await XenStoreClient.connect(to: socket) else { return model }
    defer { client.close() }
    var random = SystemRandomNumberGenerator()
    while true {
      model.sequence += 1
      let value = "\(model.id)-\(model.sequence)-\(random.next() % 1000)"
      let key = "k\(Int.random(in: 0..<8, using: &random))"
      do {
        switch Int.random(in: 0..<10, using: &random) {
        case 0..<6:
          model.inFlight = [key: value]
          try await client.write("\(model.base)/\(key)", value)
          model.acknowledged[key] = value
        case 6..<9:
          model.inFlight = ["tx/a": value, "tx/b": value]
          try await client.transaction { t in
            try await t.write("\(model.base)/tx/a", value)
            try await t.write("\(model.base)/tx/b", value)
          }
          model.acknowledged["tx/a"] = value
          model.acknowledged["tx/b"] = value
          model.transactions += 1
        default:
          model.inFlight = [key: String?.none]
          try await client.rm("\(model.base)/\(key)")
          model.acknowledged[key] = nil
        }
        model.inFlight.removeAll()
        model.acknowledgedCount += 1
      } catch {
        return model   // the daemon is gone; the change in flight stays unknown
      }
    }
  }

  /// Introduces and releases a domain until the connection is lost: (acknowledged state,
  /// state in flight).
  private static func toggleDomain(socket: String, introduced start: Bool) async -> (Bool, Bool?) {
    var introduced = start
    guard let client = try? await XenStoreClient.connect(to: socket) else { return (introduced, nil) }
    defer { client.close() }
    while true {
      do {
        if introduced {
          try await client.release(domain: domid)
        } else {
          try await client.introduce(domain: domid, gfn: 1, eventChannel: 1)
        }
        introduced.toggle()
      } catch {
        return (introduced, !introduced)
      }
    }
  }
}
