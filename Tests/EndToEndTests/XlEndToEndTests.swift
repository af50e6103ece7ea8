#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import InteropSupport
import TestSupport
import XenStore

/// `xl create`, `list` and `destroy` end to end: the built `xl`, our xenstored, real QEMU.
@Suite(.serialized) struct XlEndToEndTests {
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func createConfirmsListShowsDestroyRemoves() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let cfg = bed.tinyGuest()

    let created = try await bed.xl(["create", cfg])
    #expect(created.status == 0, "\(created)")
    #expect(created.stderr.hasPrefix("Parsing config from \(cfg)\n"))
    #expect(normalized(created.stderr).contains(
      "Domain 1 (tiny) created: device model [PID] confirmed (running) in T; log \(bed.logDirectory)/qemu-dm-tiny.log\n"))

    // The records libxl would write, the device model's identity, and state = running.
    #expect(try await bed.read("/local/domain/1/name") == "tiny")
    #expect(try await bed.read("/local/domain/0/device-model/1/state") == "running")
    let identityText = try #require(try await bed.read("/libxl/1/device-model-identity"))
    let identity = try #require(ProcessIdentity(identityText))
    #expect(try await bed.read("/local/domain/1/image/device-model-pid") == "\(identity.pid)")
    #expect(try ProcessIdentity.of(pid: identity.pid) == identity)
    #expect(bed.sockets(in: bed.runDirectory) == ["qmp-events-1", "qmp-libxl-1"])
    #expect(bed.sockets(in: bed.socketPath + ".d") == ["domain-1"], "introduced to xenstored")

    let list = try await bed.xl(["list"])
    #expect(list.status == 0)
    let rows = list.stdout.split(separator: "\n")
    #expect(rows.first == "Name                                        ID   Mem VCPUs      State   Time(s)")
    #expect(rows.count == 2)
    #expect(rows.last?.hasPrefix("tiny                                         1    32     1     r-----  ") == true)

    let long = try await bed.xl(["list", "-l"])
    #expect(long.status == 0)
    #expect(long.stdout.contains("\"identity\": \"\(identityText)\""))
    #expect(long.stdout.contains("\"status\": \"running\""))

    let destroyed = try await bed.xl(["destroy", "tiny"])
    #expect(destroyed.status == 0, "\(destroyed)")
    #expect(destroyed.stdout == "Domain 1 (tiny) destroyed: device model stopped\n")
    #expect(!isAlive(identity.pid))
    try await bed.expectNoLeftovers()

    // As xl: a domain that is not there is an error.
    let again = try await bed.xl(["destroy", "tiny"])
    #expect(again.status == 1)
    #expect(again.stderr == "xl: no domain \"tiny\"\n")
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func quietCreatePrintsNothingAndDomidsAreReused() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let a = try await bed.xl(["create", "-q", bed.tinyGuest("a")])
    #expect(a.status == 0 && a.stdout.isEmpty && a.stderr.isEmpty, "\(a)")
    let b = try await bed.xl(["create", "-q", bed.tinyGuest("b")])
    #expect(b.status == 0, "\(b)")
    #expect(try await bed.read("/local/domain/2/name") == "b")
    #expect(try await bed.xl(["destroy", "1"]).status == 0)
    let c = try await bed.xl(["create", "-q", bed.tinyGuest("c")])
    #expect(c.status == 0, "\(c)")
    #expect(try await bed.read("/local/domain/1/name") == "c", "the lowest free domid is taken")
    #expect(try await bed.xl(["destroy", "b"]).status == 0)
    #expect(try await bed.xl(["destroy", "c"]).status == 0)
    try await bed.expectNoLeftovers()
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func verboseCreatePrintsATimeline() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let created = try await bed.xl(["create", "-v", bed.tinyGuest()])
    #expect(created.status == 0, "\(created)")
    let phases = created.stderr.split(separator: "\n").filter { $0.hasPrefix("xl: [") }.map {
      String($0[$0.index(after: $0.firstIndex(of: "]")!)...].drop(while: { $0 == " " }).prefix { $0 != ":" && $0 != "[" })
    }
    #expect(phases.map { $0.hasPrefix("accelerator ") ? "accelerator" : $0 } == [
      "parsed \(bed.directory.path)/tiny.cfg", "accelerator", "connect to xenstore", "allocate a domid and write the records",
      "spawn the device model", "wait for the device model to confirm", "record the device model as running",
      "confirmed by running", "monitor ",
    ])
    #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func aDomainWhoseDeviceModelDiedIsListedAsCrashedAndDestroyedAsAlreadyExited() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    // -e: no monitor, so nothing applies on_crash; the domain stays as it died.
    #expect(try await bed.xl(["create", "-q", "-e", bed.tinyGuest()]).status == 0)
    let identity = try await recordedIdentity(bed)
    kill(identity.pid, SIGKILL)
    #expect(await awaitExit(identity.pid, seconds: 30))

    let list = try await bed.xl(["list"])
    #expect(list.stdout.split(separator: "\n").last?.hasPrefix("tiny                                         1    32     1     ---sc-       0.0") == true)
    #expect(try await bed.xl(["list", "-l"]).stdout.contains("\"status\": \"exited\""))

    let destroyed = try await bed.xl(["destroy", "tiny"])
    #expect(destroyed.status == 0)
    #expect(destroyed.stdout == "Domain 1 (tiny) destroyed: device model already exited\n")
    try await bed.expectNoLeftovers()
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func destroyNeverSignalsAProcessThatReusedThePid() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    #expect(try await bed.xl(["create", "-q", bed.tinyGuest()]).status == 0)
    let identity = try await recordedIdentity(bed)
    #expect(try await bed.xl(["destroy", "tiny"]).status == 0)

    // Records pointing at a live process that is not the device model: this test process,
    // recorded with another start time, as if its pid had been reused.
    let client = try await bed.client()
    defer { client.close() }
    let me = try ProcessIdentity.of(pid: getpid())
    let stale = ProcessIdentity(pid: me.pid, startTime: me.startTime + 1, bootID: me.bootID)
    try await client.write("/local/domain/5/name", "stale")
    try await client.write("/libxl/5/device-model-identity", stale.description)
    let destroyed = try await bed.xl(["destroy", "stale"])
    #expect(destroyed.status == 0)
    #expect(destroyed.stdout == "Domain 5 (stale) destroyed: device model already exited (pid \(me.pid) now belongs to another process, which was left alone)\n")
    #expect(!isAlive(identity.pid))
    try await bed.expectNoLeftovers()
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu, .xenstoreRead])))
  func xlStartsItsOwnXenstoredOnceAndLaterRunsFindIt() async throws {
    let bed = try XlTestbed(xenstored: false)
    defer { bed.stop() }
    let first = try await bed.xl(["create", bed.tinyGuest("one")])
    #expect(first.status == 0, "\(first)")
    let line = try #require(first.stderr.split(separator: "\n").first { $0.contains("started") })
    #expect(normalized(String(line)) == "xl: no xenstored answered at \(bed.socketPath); started \(BuiltProducts.path("xenstored")) [PID]")
    let xenstored = try #require(bracketedPID(String(line)))
    defer {
      kill(xenstored, SIGTERM)
      #expect(awaitExitInCleanup(xenstored, seconds: 30))
    }

    let second = try await bed.xl(["create", bed.tinyGuest("two")])
    #expect(second.status == 0)
    #expect(!second.stderr.contains("started"))
    #expect(try await bed.xl(["list"]).stdout.split(separator: "\n").count == 3)
    // Xen's own client sees what xl wrote.
    let read = try await run(["/usr/bin/xenstore-read", "/local/domain/2/name"], environment: bed.environment)
    #expect(read.stdout == "two\n")
    #expect(try await bed.xl(["destroy", "one"]).status == 0)
    #expect(try await bed.xl(["destroy", "two"]).status == 0)
    try await bed.expectNoLeftovers()
  }

  @Test func dryRunPrintsCommandAndRecordsAndStartsNothing() async throws {
    let bed = try XlTestbed(xenstored: false)
    defer { bed.stop() }
    let result = try await bed.xl(["create", "-n", bed.tinyGuest(), "memory=48"])
    #expect(result.status == 0, "\(result)")
    let lines = result.stdout.split(separator: "\n").map(String.init)
    #expect(lines.first == "# domain \"tiny\" as domain 1 (no xenstored answers at \(bed.socketPath); create would start one)")
    #expect(lines.contains { $0.hasPrefix("qemu-system-x86_64 -name tiny -uuid ") && $0.contains(" -m 48 ") })
    #expect(lines.contains("/local/domain/1/name = \"tiny\""))
    #expect(lines.contains("/local/domain/1 = \"\"  (n0,r1)"))
    #expect(lines.contains("/local/domain/1/control/shutdown = \"\"  (n1)"))
    #expect(lines.contains("/local/domain/1/memory/target = \"49152\""))
    #expect(access(bed.socketPath, F_OK) != 0, "no xenstored was started")
    #expect(access(bed.logDirectory, F_OK) != 0, "no log was written")
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func concurrentCreatesGetDistinctDomidsAndAllConfirm() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let count = 6
    let results = await withTaskGroup(of: ProcessResult?.self) { group in
      for i in 0..<count {
        let cfg = bed.tinyGuest("g\(i)")
        group.addTask { try? await bed.xl(["create", "-q", cfg]) }
      }
      return await group.reduce(into: []) { $0.append($1) }
    }
    #expect(results.allSatisfy { $0?.status == 0 }, "\(results)")
    #expect(try await bed.children("/local/domain").filter { $0 != "0" }.sorted() == (1...count).map(String.init).sorted())
    for i in 0..<count { #expect(try await bed.xl(["destroy", "g\(i)"]).status == 0) }
    try await bed.expectNoLeftovers()
  }

  private func recordedIdentity(_ bed: XlTestbed, domid: Int = 1) async throws -> ProcessIdentity {
    let text = try #require(try await bed.read("/libxl/\(domid)/device-model-identity"))
    return try #require(ProcessIdentity(text))
  }
}

/// On a terminal, `xl create` shows what it waits for and for how long, in place.
@Suite(.serialized) struct XlTerminalTests {
  @Test(.enabled(if: access("/usr/bin/script", X_OK) == 0))
  func statusLineShowsTheWaitAndIsErasedBeforeTheResult() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let xl = BuiltProducts.path("xl")
    let command = "\(xl) create --timeout 2 \(bed.tinyGuest()) 'device_model_override=\"\(bed.neverConfirmingDeviceModel())\"'"
    // script(1) gives xl a pseudo-terminal as stdout and stderr. 2 s: long enough for the
    // device model to be running under a loaded CI (0.3 s once ran out before its pid was known).
    let result = try await run(["/usr/bin/script", "-qec", command, "/dev/null"], environment: bed.environment)
    let erase = "\r\u{1B}[K"
    #expect(result.stdout.contains("\(erase)waiting "))
    #expect(result.stdout.contains(" of 2 s for domain 1 device model: QMP on"))
    #expect(result.stdout.contains("\(erase)xl: domain \"tiny\" not created: domain 1 device model ["))
    #expect(result.status == 9)
  }
}
