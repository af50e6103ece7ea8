#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import InteropSupport
import TestSupport
import XenStore

extension GuestSuites {
  /// `xl migrate` between two toolstacks on this machine (two testbeds: their own xenstored,
  /// run, log and lib directories), the receiver reached as xl's `-s ''` does: the host
  /// argument run as the command. A real Linux guest keeps its memory and uptime; and a fault
  /// at every step of the protocol (either xl killed, the transport cut, the receiver
  /// refusing) ends with exactly one copy of the guest, running.
  @Suite(.serialized) struct MigrationTests {
    static let peers: [Peer] = [.qemu, .linuxGuest]

    /// The command that runs `xl migrate-receive` on `bed`'s toolstack (with `environment` more).
    static func receiver(_ bed: XlTestbed, _ environment: [String: String] = [:], _ options: String = "") -> String {
      let variables = bed.environment.merging(environment) { $1 }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
      return "exec env \(variables.joined(separator: " ")) \(BuiltProducts.path("xl")) migrate-receive\(options)"
    }

    @Test(.enabled(if: TestEnvironment.shouldRun(peers)))
    func aLiveGuestMovesWithItsMemoryAndBack() async throws {
      let here = try XlTestbed()
      defer { here.stop() }
      let there = try XlTestbed()
      defer { there.stop() }
      try #require(try await here.xl(["create", "-q", here.linuxGuest()]).status == 0)
      let before = try await GuestProbe.mark(here, "linux")

      let sent = try await here.xl(["migrate", "--debug", "-s", "", "linux", Self.receiver(there)])
      #expect(sent.status == 0, "\(sent)")
      #expect(sent.stderr.hasSuffix("Migration successful.\n"), "\(sent)")
      #expect(sent.stderr.contains("migration target: Got permission, starting domain.\n"), "\(sent)")
      #expect(sent.stderr.contains("migration sender: QEMU: total "), "\(sent)")
      try await here.expectNoLeftovers()
      #expect(try await there.read("/local/domain/1/name") == "linux")
      #expect(try await there.read("/libxl/1/run-state") == "running")
      #expect(try await there.read("/libxl/1/migration") == nil)
      let monitor = try #require(try await there.read("/libxl/1/monitor-identity").flatMap(ProcessIdentity.init))
      #expect(isAlive(monitor.pid))
      let moved = try await GuestProbe.check(there, "linux")
      #expect(moved.marker == before.marker && moved.uptime > before.uptime, "\(before) then \(moved)")
      #expect(try GuestProbe.boots(here, "linux") == 1)
      // The receiver's console log is the guest's own name's, and shows no boot: it went on.
      #expect(try GuestProbe.boots(there, "linux") == 0)
      #expect(try readFile(there.logDirectory + "/console/guest-linux.log").contains("m=kept-42-"))

      // And back, paused at the end (-p), then unpaused.
      let back = try await there.xl(["migrate", "-p", "-s", "", "linux", Self.receiver(here, [:], " -p")])
      #expect(back.status == 0, "\(back)")
      try await there.expectNoLeftovers()
      #expect(try await here.read("/libxl/1/run-state") == "paused")
      #expect(try await here.xl(["unpause", "linux"]).status == 0)
      let home = try await GuestProbe.check(here, "linux")
      #expect(home.marker == before.marker && home.uptime > moved.uptime)
      #expect(try GuestProbe.boots(here, "linux") == 1)
      #expect(try await here.xl(["shutdown", "-w", "linux"]).status == 0)
      try await here.expectNoLeftovers()
    }

    /// One fault, and where the guest must end up: the sender's side ("here") or the receiver's.
    struct Fault: Sendable, CustomStringConvertible {
      var sender: String?
      var receiver: String?
      var endsThere: Bool
      var description: String { "sender \(sender ?? "-"), receiver \(receiver ?? "-")" }
    }

    static let faults: [Fault] = [
      // The sender killed at each step, then the transport cut at each step.
      Fault(sender: "banner", endsThere: false), Fault(sender: "preamble", endsThere: false),
      Fault(sender: "stream", endsThere: false), Fault(sender: "ready", endsThere: false),
      Fault(sender: "go", endsThere: false),
      Fault(sender: "cut-preamble", endsThere: false), Fault(sender: "cut-stream", endsThere: false),
      Fault(sender: "cut-ready", endsThere: false), Fault(sender: "cut-go", endsThere: false),
      // Cut after `go`: the report is lost; the sender asks the receiver's side, which has it.
      Fault(sender: "cut-report", endsThere: true),
      // The receiver killed at each step.
      Fault(receiver: "banner", endsThere: false), Fault(receiver: "stream", endsThere: false),
      Fault(receiver: "ready", endsThere: false), Fault(receiver: "go", endsThere: false),
      Fault(receiver: "start", endsThere: true),
    ]

    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])), arguments: faults)
    func aFaultAtAnyStepLeavesExactlyOneRunningCopy(fault: Fault) async throws {
      let here = try XlTestbed()
      defer { here.stop() }
      let there = try XlTestbed()
      defer { there.stop() }
      try #require(try await here.xl(["create", "-q", here.tinyGuest()]).status == 0)
      // The transport inherits the sender's environment: the receiver's fault is set either way.
      let receiverEnvironment = ["XL_MIGRATION_FAULT": fault.receiver ?? "none"]
      let senderEnvironment = fault.sender.map { ["XL_MIGRATION_FAULT": $0] } ?? [:]
      let sent = try await here.xl(
        ["migrate", "-s", "", "tiny", Self.receiver(there, receiverEnvironment)], environment: senderEnvironment)
      if fault.sender?.hasPrefix("cut-") == false {
        #expect(sent.status == 128 + SIGKILL, "\(sent)")
      } else {
        #expect(sent.status == 1, "\(sent)")
      }
      // The receiver, if it lives, ends by itself once its stream ends.
      for pid in processes(mentioning: "migrate-receive") where processes(mentioning: there.directory.path).contains(pid) {
        #expect(await awaitExit(pid, seconds: 60), "receiver [\(pid)] still running")
      }
      // The next xl on each side settles what a dead xl left.
      _ = try await here.xl(["list"])
      _ = try await there.xl(["list"])
      let (home, away) = (try await guests(here), try await guests(there))
      if fault.endsThere {
        #expect(home == [], "\(fault): here \(home)")
        #expect(away == ["tiny running"], "\(fault): there \(away)")
      } else {
        #expect(home == ["tiny running"], "\(fault): here \(home); \(sent)")
        #expect(away == [], "\(fault): there \(away)")
      }
      for bed in [here, there] where try await bed.read("/local/domain/1/name") != nil {
        #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
      }
      try await here.expectNoLeftovers()
      try await there.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
    func aReceiverWithTheNameRefusesAndTheGuestRunsOn() async throws {
      let here = try XlTestbed()
      defer { here.stop() }
      let there = try XlTestbed()
      defer { there.stop() }
      try #require(try await here.xl(["create", "-q", here.tinyGuest()]).status == 0)
      try #require(try await there.xl(["create", "-q", there.tinyGuest()]).status == 0)
      let theirs = try await there.read("/libxl/1/device-model-identity")
      let sent = try await here.xl(["migrate", "-s", "", "tiny", Self.receiver(there)])
      #expect(sent.status == 1, "\(sent)")
      #expect(sent.stderr.contains("xl: migration target: a domain named \"tiny\" already exists here (domain 1); refusing it\n"), "\(sent)")
      #expect(sent.stderr.hasSuffix("; migration failed, resuming at sender\n"), "\(sent)")
      #expect(try await guests(here) == ["tiny running"])
      #expect(try await guests(there) == ["tiny running"])
      #expect(try await there.read("/libxl/1/device-model-identity") == theirs)

      // A transport that never answers: said, and the guest runs on here.
      let nowhere = try await here.xl(["migrate", "-s", "", "tiny", "exit 3"])
      #expect(nowhere.status == 1, "\(nowhere)")
      #expect(normalized(nowhere.stderr) == "xl: the migration receiver did not answer: migration transport (exit 3) [PID] exited with status 3 during startup after T; migration failed, resuming at sender\n", "\(nowhere)")
      #expect(try await guests(here) == ["tiny running"])
      #expect(try await here.read("/libxl/1/migration") == nil)
      for bed in [here, there] { #expect(try await bed.xl(["destroy", "tiny"]).status == 0) }
      try await here.expectNoLeftovers()
      try await there.expectNoLeftovers()
    }

    /// A confined guest moves too. On one machine both sides would give its device model the
    /// same uid, and the sender's destroy kills every process of that uid (libxl's kill by
    /// uid): the receiver gets a config naming another user (`-C`).
    @Test(.enabled(if: TestEnvironment.shouldRun(peers)))
    func aConfinedGuestMovesConfined() async throws {
      let first = try await DeviceModelRestrictTests.TestUser("xldm-mig18a", uid: 231_182)
      defer { first.remove() }
      let second = try await DeviceModelRestrictTests.TestUser("xldm-mig18b", uid: 231_183)
      defer { second.remove() }
      let here = try XlTestbed()
      defer { here.stop() }
      let there = try XlTestbed()
      defer { there.stop() }
      for bed in [here, there] { chmod(bed.directory.path, 0o755) }
      try #require(try await here.xl(["create", "-q", here.linuxGuest("device_model_user = \"xldm-mig18a\"")]).status == 0)
      let before = try await GuestProbe.mark(here, "linux")
      let other = here.linuxGuest(name: "linux", "device_model_user = \"xldm-mig18b\"")
      let sent = try await here.xl(["migrate", "-C", other, "-s", "", "linux", Self.receiver(there)])
      #expect(sent.status == 0, "\(sent)")
      try await here.expectNoLeftovers()
      let qemu = try #require(try await there.read("/libxl/1/device-model-identity").flatMap(ProcessIdentity.init))
      let status = try readFile("/proc/\(qemu.pid)/status")
      #expect(status.contains("Uid:\t\(second.uid)\t\(second.uid)\t\(second.uid)\t\(second.uid)\n"), "\(status)")
      #expect(status.contains("Seccomp:\t2\n"))
      let moved = try await GuestProbe.check(there, "linux")
      #expect(moved.marker == before.marker && moved.uptime > before.uptime)
      #expect(try await there.xl(["destroy", "linux"]).status == 0)
      try await there.expectNoLeftovers()
    }

    /// "<name> <run state>" of every domain on `bed`.
    func guests(_ bed: XlTestbed) async throws -> [String] {
      var found: [String] = []
      for domid in try await bed.children("/local/domain") where domid != "0" {
        found.append("\(try await bed.read("/local/domain/\(domid)/name") ?? "?") \(try await bed.read("/libxl/\(domid)/run-state") ?? "?")")
      }
      return found.sorted()
    }
  }
}
