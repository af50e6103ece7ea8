#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import InteropSupport
import TestSupport
import XenStore

/// Real faults at the worst moment of `xl create`: `xl` SIGKILLed at each phase, the device
/// model killed before and after its confirmation, xenstored killed mid-create. Each test
/// asserts the exact end state: no process of the test left (by pid and by a /proc scan for
/// its directory, which QEMU's QMP path and the config path contain), xenstored's descriptors
/// back to where they were, no socket file, and either no records or records that
/// `xl destroy` removes, saying what it did — which of the two, for each case.
@Suite(.serialized) struct FaultTests {
  static let header = "Name                                        ID   Mem VCPUs      State   Time(s)\n"

  /// Killed once connected, while waiting for the domains lock (held here): nothing written.
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func xlKilledAfterConnectingLeavesNothing() async throws {
    let f = try await FaultBed()
    defer { f.stop() }
    let descriptors = f.xenstoredDescriptors
    mkdir(f.bed.runDirectory, 0o755)
    let lock = open(f.bed.runDirectory + "/domains.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    #expect(flock(lock, LOCK_EX) == 0)
    let xl = try f.startXL(["create", "-v", f.bed.tinyGuest()])
    #expect(await waitForLine(in: xl.stderr, containing: "allocate a domid and write the records"))
    kill(xl.pid, SIGKILL)
    await waitForExit(xl.pid, seconds: 60)
    close(lock)

    #expect(await f.waitForNoStrayProcesses() == [])
    #expect(try await f.domains() == [])
    let destroy = try await f.bed.xl(["destroy", "tiny"])
    #expect(destroy.status == 1 && destroy.stderr == "xl: no domain \"tiny\"\n", "\(destroy)")
    try await expectCleanSlate(f, descriptors: descriptors)
  }

  /// Killed as soon as the domain's first records appear: they stay, no device model runs,
  /// and `xl destroy` removes them.
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func xlKilledWhileWritingRecordsLeavesRecordsThatDestroyRemoves() async throws {
    let f = try await FaultBed()
    defer { f.stop() }
    let descriptors = f.xenstoredDescriptors
    let xl = try f.startXL(["create", "-v", f.bed.tinyGuest(), "device_model_override=\"\(f.unconfirmedQEMU())\""])
    #expect(try await eventually { try await f.domains() == ["1"] })
    kill(xl.pid, SIGKILL)
    await waitForExit(xl.pid, seconds: 60)

    #expect(await f.waitForNoStrayProcesses() == [])
    #expect(try await f.domains() == ["1"], "the records stay")
    // By domid: the kill may have come before the name was written. Only a race this test
    // cannot control decides whether the spawn had begun.
    let destroy = try await f.bed.xl(["destroy", "1"])
    #expect(destroy.status == 0, "\(destroy)")
    #expect(["no device model was recorded\n", "device model already exited\n"].contains { destroy.stdout.hasSuffix("destroyed: " + $0) }, "\(destroy)")
    // The claim writes /local/domain/<domid>/vm with /vm/<uuid>, so removal finds it.
    #expect(try await f.bed.children("/vm") == [])
    try await expectCleanSlate(f, descriptors: descriptors, checkVM: false)
  }

  /// Killed right as the spawn begins: the monitor (if it got that far) takes QEMU with it;
  /// the records stay and `xl destroy` removes them.
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func xlKilledRightAfterTheSpawnLeavesNoDeviceModel() async throws {
    let f = try await FaultBed()
    defer { f.stop() }
    let descriptors = f.xenstoredDescriptors
    let xl = try f.startXL(["create", "-v", f.bed.tinyGuest(), "device_model_override=\"\(f.unconfirmedQEMU())\""])
    #expect(await waitForLine(in: xl.stderr, containing: "spawn the device model"))
    kill(xl.pid, SIGKILL)
    await waitForExit(xl.pid, seconds: 60)

    #expect(await f.waitForNoStrayProcesses() == [])
    #expect(try await f.domains() == ["1"], "the records stay")
    let destroy = try await f.bed.xl(["destroy", "tiny"])
    #expect(destroy.status == 0, "\(destroy)")
    #expect(
      ["Domain 1 (tiny) destroyed: no device model was recorded\n", "Domain 1 (tiny) destroyed: device model already exited\n"]
        .contains(destroy.stdout), "\(destroy)")
    try await expectCleanSlate(f, descriptors: descriptors)
  }

  /// Killed while QEMU runs and xl waits for its confirmation: the monitor kills QEMU; the
  /// records, with QEMU's identity, stay; `xl list` shows the domain dead and `xl destroy`
  /// says its device model already exited.
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func xlKilledWhileAwaitingConfirmationTakesQEMUWithIt() async throws {
    let f = try await FaultBed()
    defer { f.stop() }
    let descriptors = f.xenstoredDescriptors
    let xl = try f.startXL(["create", "-v", f.bed.tinyGuest(), "device_model_override=\"\(f.unconfirmedQEMU())\""])
    #expect(await waitForLine(in: xl.stderr, containing: "wait for the device model to confirm"))
    let qemu = try await runningQEMU(f)
    kill(xl.pid, SIGKILL)
    await waitForExit(xl.pid, seconds: 60)

    #expect(await f.waitForNoStrayProcesses() == [])
    #expect(!isAlive(qemu.pid))
    #expect(try await f.domains() == ["1"], "the records stay")
    let list = try await f.bed.xl(["list"])
    #expect(list.stdout.hasPrefix(Self.header + "tiny                                         1    32     1     ---sc-"), "\(list)")
    let destroy = try await f.bed.xl(["destroy", "tiny"])
    #expect(destroy.status == 0 && destroy.stdout == "Domain 1 (tiny) destroyed: device model already exited\n", "\(destroy)")
    try await expectCleanSlate(f, descriptors: descriptors)
  }

  /// QEMU SIGKILLed before it confirmed: xl says so, with the signal, and leaves nothing.
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func deviceModelKilledDuringStartupFailsTheCreateAndLeavesNothing() async throws {
    let f = try await FaultBed()
    defer { f.stop() }
    let descriptors = f.xenstoredDescriptors
    let xl = try f.startXL(["create", "-q", f.bed.tinyGuest(), "device_model_override=\"\(f.unconfirmedQEMU())\""])
    let qemu = try await runningQEMU(f)
    kill(qemu.pid, SIGKILL)
    let status = await waitForExit(xl.pid, seconds: 60)

    #expect(status.map { ($0 >> 8) & 0xff } == 3)
    let stderr = try readFile(xl.stderr)
    // QEMU may have printed a warning (KVM CPUID) before the kill: it is quoted between.
    let message = normalized(stderr)
    #expect(message.hasPrefix("xl: domain \"tiny\" not created: domain 1 device model [PID] was killed by signal SIGKILL during startup after T"), "\(stderr)")
    #expect(message.hasSuffix("(log: \(f.bed.logDirectory)/qemu-dm-tiny.log)\n"), "\(stderr)")
    #expect(await f.waitForNoStrayProcesses() == [])
    try await expectCleanSlate(f, descriptors: descriptors)
  }

  /// QEMU SIGKILLed after it confirmed: the domain is listed dead, and `xl destroy` says its
  /// device model already exited and removes the records.
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func deviceModelKilledAfterConfirmationIsListedDeadAndDestroyed() async throws {
    let f = try await FaultBed()
    defer { f.stop() }
    let descriptors = f.xenstoredDescriptors
    // -e: unmonitored, so the domain stays as it died (with a monitor, on_crash applies:
    // GuestLifecycleTests).
    let created = try await f.bed.xl(["create", "-q", "-e", f.bed.tinyGuest()])
    #expect(created.status == 0, "\(created)")
    let text = try #require(try await f.bed.read("/libxl/1/device-model-identity"))
    let identity = try #require(ProcessIdentity(text))
    #expect(f.strayProcesses() == [identity.pid], "only QEMU runs; xl and the monitor are gone")
    kill(identity.pid, SIGKILL)
    // Dead, not merely dying: a QEMU being torn down has lost its command line (so it is no
    // stray any more) before its threads are gone, and until then `xl list` rightly lists it.
    for _ in 0..<3000 where isAlive(identity.pid) { try? await Task.sleep(for: .microseconds(10_000)) }
    #expect(!isAlive(identity.pid))
    #expect(await f.waitForNoStrayProcesses() == [])

    let list = try await f.bed.xl(["list"])
    #expect(list.stdout.hasPrefix(Self.header + "tiny                                         1    32     1     ---sc-"), "\(list)")
    let destroy = try await f.bed.xl(["destroy", "tiny"])
    #expect(destroy.status == 0 && destroy.stdout == "Domain 1 (tiny) destroyed: device model already exited\n", "\(destroy)")
    try await expectCleanSlate(f, descriptors: descriptors)
  }

  /// xenstored SIGKILLed while QEMU runs unconfirmed: xl exits 2 saying so and stops QEMU.
  /// The records died with xenstored (it keeps no state unless given --state-dir): a new
  /// xenstored at the same socket starts empty and a new create works.
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func xenstoredKilledMidCreateStopsQEMU() async throws {
    let f = try await FaultBed()
    defer { f.stop() }
    let xl = try f.startXL(["create", "-q", f.bed.tinyGuest(), "device_model_override=\"\(f.unconfirmedQEMU())\""])
    let qemu = try await runningQEMU(f)
    kill(f.xenstored, SIGKILL)
    let status = await waitForExit(xl.pid, seconds: 60)

    #expect(status.map { ($0 >> 8) & 0xff } == 2)
    let stderr = try readFile(xl.stderr)
    #expect(normalized(stderr).hasPrefix("""
      xl: domain "tiny" not created: domain 1 device model [PID] startup confirmation failed after T: \
      xenstore failed while waiting for /local/domain/0/device-model/1/state: connection to xenstored at \
      \(f.bed.socketPath) lost: xenstored closed the connection (connection-lost); it was stopped
      """), "\(stderr)")
    #expect(stderr.contains("\(f.bed.logDirectory)/qemu-dm-tiny.log"), "\(stderr)")
    #expect(!isAlive(qemu.pid))
    #expect(await f.waitForNoStrayProcesses() == [])
    #expect(f.bed.sockets(in: f.bed.runDirectory) == [])

    try await f.restartXenstored()
    let descriptors = f.xenstoredDescriptors
    #expect(try await f.domains() == [], "the records went with xenstored")
    let again = try await f.bed.xl(["create", "-q", f.bed.tinyGuest()])
    #expect(again.status == 0, "\(again)")
    #expect(try await f.bed.xl(["destroy", "tiny"]).stdout == "Domain 1 (tiny) destroyed: device model stopped\n")
    try await expectCleanSlate(f, descriptors: descriptors)
  }

  /// A short soak: create/destroy cycles with real QEMU under one name against one
  /// xenstored. Afterwards nothing is left, xenstored holds the descriptors it started with,
  /// and the logs are the current one and ten rotated ones (scripts/soak.sh runs the long one).
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func shortSoakLeavesNothingBehind() async throws {
    let f = try await FaultBed()
    defer { f.stop() }
    let descriptors = f.xenstoredDescriptors
    let cfg = f.bed.tinyGuest()
    for cycle in 1...20 {
      let created = try await f.bed.xl(["create", "-q", cfg])
      try #require(created.status == 0, "cycle \(cycle): \(created)")
      let destroyed = try await f.bed.xl(["destroy", "tiny"])
      try #require(
        destroyed.stdout == "Domain 1 (tiny) destroyed: device model stopped\n",
        "cycle \(cycle): \(destroyed)\nQEMU's log: \((try? readFile(f.bed.logDirectory + "/qemu-dm-tiny.log")) ?? "none")\nmonitor's log: \((try? readFile(f.bed.logDirectory + "/xl-tiny.log")) ?? "none")")
    }
    #expect(await f.waitForNoStrayProcesses() == [])
    try await expectCleanSlate(f, descriptors: descriptors)
    #expect(files(in: f.bed.logDirectory) == ["qemu-dm-tiny", "xl-tiny"].flatMap { log in
      ["\(log).log"] + (1...10).map { "\(log).log.\($0)" }
    }.sorted())
  }

  /// QEMU's identity, once xl has recorded it and QEMU listens on its (hidden) QMP socket.
  private func runningQEMU(_ f: FaultBed) async throws -> ProcessIdentity {
    var identity: ProcessIdentity?
    #expect(await eventually {
      identity = (try? await f.bed.read("/libxl/1/device-model-identity")).flatMap { $0 }.flatMap(ProcessIdentity.init)
      return identity != nil && f.bed.sockets(in: f.bed.directory.path).contains("hidden-qmp")
    })
    let qemu = try #require(identity)
    #expect(isAlive(qemu.pid))
    return qemu
  }

  /// No records, no sockets, no process, `xl list` empty, and xenstored holding exactly the
  /// descriptors it had before the fault.
  private func expectCleanSlate(
    _ f: FaultBed, descriptors: Int, checkVM: Bool = true, sourceLocation: SourceLocation = #_sourceLocation
  ) async throws {
    if checkVM {
      try await f.bed.expectNoLeftovers(sourceLocation: sourceLocation)
    } else {
      #expect(try await f.domains() == [], sourceLocation: sourceLocation)
      #expect(try await f.bed.children("/local/domain/0/device-model") == [], sourceLocation: sourceLocation)
      #expect(try await f.bed.children("/libxl") == [], sourceLocation: sourceLocation)
      #expect(f.bed.sockets(in: f.bed.runDirectory) == [], sourceLocation: sourceLocation)
    }
    #expect(f.strayProcesses() == [], sourceLocation: sourceLocation)
    let list = try await f.bed.xl(["list"])
    #expect(list.status == 0 && list.stdout == Self.header, "\(list)", sourceLocation: sourceLocation)
    // Clients that have just closed may not have been noticed yet.
    _ = await eventually(seconds: 10) { f.xenstoredDescriptors == descriptors }
    #expect(f.xenstoredDescriptors == descriptors, sourceLocation: sourceLocation)
  }
}
