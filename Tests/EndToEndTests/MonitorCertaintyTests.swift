#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import InteropSupport
import TestSupport
import XenLight
import XenStore

extension GuestSuites {
  /// The domain monitor under faults, with real processes: a restart hit at a step (the
  /// monitor frozen or killed, xenstored killed) while an `xl create` of the same name races
  /// it; a second monitor; SIGTERM. After the next `xl` verb the domain is in the state its
  /// action names, exactly once, monitored; the racer never gets the name.
  @Suite(.serialized) struct MonitorCertaintyTests {
    /// Where a restart is hit: its intent recorded (the old domain "restarting"), or the new
    /// domain claimed (it holds the name; the old one's records are gone).
    enum Step: String, Sendable, CaseIterable { case intentRecorded, newDomainClaimed }
    /// What hits it.
    enum Fault: String, Sendable, CaseIterable { case monitorFrozen, monitorKilled, xenstoredKilled }

    static let cases: [(Step, Fault)] = Step.allCases.flatMap { step in Fault.allCases.map { (step, $0) } }

    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu, .xenstoreRead])), arguments: cases)
    func aRestartHitAtAStepEndsWithTheGuestRunningOnceUnderItsName(step: Step, fault: Fault) async throws {
      let bed = try XlTestbed(xenstored: false)  // xl's own durable xenstored: one that can be killed
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest()]).status == 0)
      let monitor = try #require(try await bed.read("/libxl/1/monitor-identity").flatMap(ProcessIdentity.init))
      let firstQEMU = try #require(try await bed.read("/libxl/1/device-model-identity").flatMap(ProcessIdentity.init))

      // The fault lands the moment the step is seen (the monitor may be a little further on).
      let (path, reached): (String, @Sendable (String?) -> Bool) = switch step {
      case .intentRecorded: ("/libxl/1/run-state", { $0 == "restarting" })
      case .newDomainClaimed: ("/local/domain/2/name", { $0 != nil })
      }
      let xenstored = try #require(processes(mentioning: bed.socketPath).first { isXenstored($0) })
      let hit = Task {
        try await bed.waitUntil(path, reached)
        switch fault {
        case .monitorFrozen: kill(monitor.pid, SIGSTOP)
        case .monitorKilled: kill(monitor.pid, SIGKILL)
        case .xenstoredKilled: kill(xenstored, SIGKILL)
        }
      }
      try await reset(bed, domid: 1)
      try await hit.value

      switch fault {
      case .monitorFrozen:
        // Whatever the step, the name is held: the racer is refused (it may wait for the
        // domains lock a frozen claim holds, so it runs beside the thaw).
        async let racer = bed.xl(["create", "-q", racerConfig(bed)])
        kill(monitor.pid, SIGCONT)
        let refused = try await racer
        #expect(refused.status == 4, "\(refused)")
        #expect(refused.stderr.contains("a domain named \"tiny\" already exists"), "\(refused)")
      case .monitorKilled:
        #expect(await awaitExit(monitor.pid, seconds: 10))
        let racer = try await bed.xl(["create", "-q", racerConfig(bed)])
        #expect(racer.status == 4, "\(racer)")
        // The next verb starts another monitor, which finishes the restart.
        let listed = try await bed.xl(["list"])
        #expect(listed.status == 0, "\(listed)")
        #expect(listed.stderr.contains("its monitor [\(monitor.pid)] had died; started another ["), "\(listed)")
      case .xenstoredKilled:
        #expect(await awaitExit(xenstored, seconds: 10))
        // The next verb brings xenstored back on its saved state; the racer comes after it.
        let listed = try await bed.xl(["list"])
        #expect(listed.status == 0, "\(listed)")
        let racer = try await bed.xl(["create", "-q", racerConfig(bed)])
        #expect(racer.status == 4, "\(racer)")
      }

      let running = try await waitForOneRunningGuest(bed, named: "tiny")
      #expect(running.memoryKiB == "32768", "the racer's guest (48 MiB) never took the name: \(monitorLogs(bed))")
      #expect(await awaitExit(firstQEMU.pid, seconds: 10), "the old device model is gone")
      let listed = try await bed.xl(["list"])
      #expect(!listed.stdout.contains("not monitored") && !listed.stderr.contains("had died"), "\(listed)")
      let destroyed = try await bed.xl(["destroy", "tiny"])
      #expect(destroyed.status == 0, "\(destroyed)\n\(monitorLogs(bed))")
      try await bed.expectNoLeftovers()
      #expect(files(in: bed.libDirectory).filter { $0.hasPrefix("userdata-") } == [])
    }

    /// The issue's reproduction: 15 reboots while a loop of `xl create` of the same name (with
    /// another memory size) runs beside them. Every racer is refused; the guest is the
    /// original one, once, monitored, after each reboot.
    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu, .xenstoreRead])))
    func fifteenRebootsRacingALoopOfCreatesKeepTheGuest() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest()]).status == 0)
      let racer = racerConfig(bed)
      let racing = Task {
        var outcomes: [Int32] = []
        while !Task.isCancelled { outcomes.append(try await bed.xl(["create", "-q", racer]).status) }
        return outcomes
      }
      var domid: UInt32 = 1
      for _ in 1...15 {
        try await reset(bed, domid: domid)
        try await bed.waitUntil("/local/domain/\(domid)/name", is: nil)  // the new domain took over
        let running = try await waitForOneRunningGuest(bed, named: "tiny")
        #expect(running.memoryKiB == "32768", "\(monitorLogs(bed))")
        domid = running.domid
      }
      racing.cancel()
      let outcomes = try await racing.value
      #expect(!outcomes.isEmpty && outcomes.allSatisfy { $0 == 4 }, "\(outcomes)")
      #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
      try await bed.expectNoLeftovers()
    }

    /// `rename-restart` killed at its intent: the next monitor finishes it. The old domain is
    /// kept, renamed and shut down; a new one runs under the name.
    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu, .xenstoreRead])))
    func aRenameRestartWhoseMonitorDiedIsFinishedByTheNext() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest("tiny", "on_reboot = \"rename-restart\"")]).status == 0)
      let monitor = try #require(try await bed.read("/libxl/1/monitor-identity").flatMap(ProcessIdentity.init))
      let hit = Task {
        try await bed.waitUntil("/libxl/1/run-state") { $0 == "restarting" }
        kill(monitor.pid, SIGKILL)
      }
      try await reset(bed, domid: 1)
      try await hit.value
      #expect(await awaitExit(monitor.pid, seconds: 10))
      #expect(try await bed.xl(["list"]).stderr.contains("had died; started another"))
      let running = try await waitForOneRunningGuest(bed, named: "tiny")
      #expect(running.domid == 2)
      let kept = try #require(try await bed.read("/local/domain/1/name"))
      #expect(kept.hasPrefix("tiny-") && kept.hasSuffix("Z"), "\(kept)")
      #expect(try await bed.read("/libxl/1/run-state") == "shutdown")
      #expect(try await bed.xl(["destroy", kept]).status == 0)
      #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
      try await bed.expectNoLeftovers()
    }

    /// One monitor per domain: a second `xl monitor` is refused, and the first one goes on.
    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
    func aSecondMonitorIsRefused() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest()]).status == 0)
      let monitor = try #require(try await bed.read("/libxl/1/monitor-identity").flatMap(ProcessIdentity.init))
      let second = try await bed.xl(["monitor", "1", "--ready-descriptor=-1"])
      #expect(second.status == 3, "\(second)")
      #expect(second.stderr == """
        xl: domain 1 already has a monitor (\(bed.runDirectory)/monitor-1.lock is locked); not starting another

        """, "\(second)")
      #expect(isAlive(monitor.pid))
      // The guest's end is still acted on once, by the first.
      let qemu = try #require(try await bed.read("/libxl/1/device-model-identity").flatMap(ProcessIdentity.init))
      kill(qemu.pid, SIGKILL)
      try await bed.waitUntil("/local/domain/1/name", is: nil)
      #expect(await awaitExit(monitor.pid, seconds: 10))
      try await bed.expectNoLeftovers()
      let log = try readFile(bed.logDirectory + "/xl-tiny.log")
      #expect(log.components(separatedBy: "Action for shutdown reason code 3 is destroy").count == 2, "\(log)")
    }

    /// Two verbs that find the same dead monitor at once start one monitor between them.
    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
    func twoVerbsFindingADeadMonitorStartOne() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest()]).status == 0)
      let monitor = try #require(try await bed.read("/libxl/1/monitor-identity").flatMap(ProcessIdentity.init))
      kill(monitor.pid, SIGKILL)
      #expect(await awaitExit(monitor.pid, seconds: 10))
      async let first = bed.xl(["list"])
      async let second = bed.xl(["list"])
      let both = try await [first, second]
      #expect(both.allSatisfy { $0.status == 0 }, "\(both)")
      #expect(both.filter { $0.stderr.contains("had died; started another") }.count == 1, "\(both)")
      #expect(!both.contains { $0.stderr.contains("did not start") }, "\(both)")
      let next = try #require(try await bed.read("/libxl/1/monitor-identity").flatMap(ProcessIdentity.init))
      #expect(next != monitor && isAlive(next.pid))
      #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
      #expect(await awaitExit(next.pid, seconds: 10))
      try await bed.expectNoLeftovers()
    }

    /// SIGTERM stops the monitor between actions; the next verb starts another, which acts.
    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu, .xenstoreRead])))
    func aMonitorStoppedBySIGTERMIsReplacedAndTheNextOneActs() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest()]).status == 0)
      let monitor = try #require(try await bed.read("/libxl/1/monitor-identity").flatMap(ProcessIdentity.init))
      kill(monitor.pid, SIGTERM)
      #expect(await awaitExit(monitor.pid, seconds: 10))
      let log = try readFile(bed.logDirectory + "/xl-tiny.log")
      #expect(log.contains("Asked to stop: domain 1 is left unmonitored (the next xl command starts another monitor)\n"), "\(log)")
      let listed = try await bed.xl(["list"])
      #expect(listed.stdout.contains("(not monitored: its monitor is gone)"), "\(listed)")
      #expect(listed.stderr.contains("xl: domain 1 (tiny): its monitor [\(monitor.pid)] had died; started another ["), "\(listed)")
      let next = try #require(try await bed.read("/libxl/1/monitor-identity").flatMap(ProcessIdentity.init))
      #expect(next != monitor && isAlive(next.pid))
      try await reset(bed, domid: 1)
      try await bed.waitUntil("/local/domain/1/name", is: nil)  // the new domain took over
      let running = try await waitForOneRunningGuest(bed, named: "tiny")
      #expect(running.domid == 2)
      #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
      #expect(await awaitExit(next.pid, seconds: 10))
      try await bed.expectNoLeftovers()
    }

    // MARK: helpers

    /// A reset as a user's QMP `system_reset`: QEMU reports SHUTDOWN host-qmp-system-reset, a
    /// reboot. A restarted guest waits (-S) until its monitor watches and resumes it: the reset
    /// comes after that (its RESUME event; QMP sends every session the events).
    func reset(_ bed: XlTestbed, domid: UInt32) async throws {
      let path = try #require(try await bed.read("/libxl/\(domid)/qmp-path"))
      let qmp = try await QMPClient.connect(path: path)
      defer { qmp.close() }
      if try await qmp.execute("query-status")["status"]?.stringValue == "prelaunch" {
        for await event in qmp.events where event.name == "RESUME" { break }
      }
      try await qmp.execute("system_reset")
    }

    /// Another guest of the same name (48 MiB, so it would show if it ever took the name).
    func racerConfig(_ bed: XlTestbed) -> String {
      bed.config("name = \"tiny\"\ntype = \"hvm\"\nmemory = 48\nvnc = 0\nnographic = 1\ndevice_model_target = \"local\"\n", name: "racer.cfg")
    }

    /// The monitors' logs (this one's and those before it), for a failure's message.
    func monitorLogs(_ bed: XlTestbed) -> String {
      files(in: bed.logDirectory).filter { $0.hasPrefix("xl-") }.sorted().map { name in
        "\(name):\n" + ((try? readFile(bed.logDirectory + "/" + name)) ?? "")
      }.joined(separator: "\n")
    }

    func isXenstored(_ pid: Int32) -> Bool {
      ((try? readFile("/proc/\(pid)/cmdline")) ?? "").split(separator: "\0").first?.hasSuffix("/xenstored") == true
    }

    /// Waits, by watch on the domains' records, until exactly one domain is named `name`,
    /// recorded running, and its device model and its monitor are both the live processes
    /// recorded; then no other domain of that name exists.
    func waitForOneRunningGuest(_ bed: XlTestbed, named name: String, seconds: Int = 60) async throws
      -> (domid: UInt32, memoryKiB: String?)
    {
      let client = try await bed.client()
      defer { client.close() }
      let watch = try await client.watch(["/local/domain", "/libxl"])
      let found = try await withThrowingTaskGroup(of: (domid: UInt32, memoryKiB: String?)?.self) { group in
        group.addTask {
          for try await _ in watch {
            if let one = try await Self.oneRunning(client, named: name) { return one }
          }
          return nil
        }
        group.addTask {
          try await Task.sleep(for: .seconds(seconds))
          return nil
        }
        defer { group.cancelAll() }
        return try await group.next()!
      }
      if found == nil { Issue.record("no single running, monitored \"\(name)\" within \(seconds) s: \(try await bed.xl(["list"]))\n\(monitorLogs(bed))") }
      return try #require(found)
    }

    static func oneRunning(_ client: XenStoreClient, named name: String) async throws -> (domid: UInt32, memoryKiB: String?)? {
      func read(_ path: String) async throws -> String? {
        do { return try await client.read(path) } catch where error.code == .ENOENT { return nil }
      }
      var named: [UInt32] = []
      for child in (try? await client.directory("/local/domain")) ?? [] {
        if let domid = UInt32(child), domid != 0, try await read("/local/domain/\(domid)/name") == name { named.append(domid) }
      }
      guard named.count == 1, let domid = named.first, try await read("/libxl/\(domid)/run-state") == "running",
        let qemu = try await read("/libxl/\(domid)/device-model-identity").flatMap(ProcessIdentity.init),
        let monitor = try await read("/libxl/\(domid)/monitor-identity").flatMap(ProcessIdentity.init),
        isAlive(qemu.pid), isAlive(monitor.pid)
      else { return nil }
      return (domid, try await read("/local/domain/\(domid)/memory/target"))
    }
  }
}
