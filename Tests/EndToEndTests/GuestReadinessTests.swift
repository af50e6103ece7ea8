#if canImport(Glibc)
import Glibc
#endif
import Testing
import InteropSupport
import TestSupport

extension GuestSuites {
  /// `guest_ready_console`: `xl create` returns once the real Linux guest's console prints
  /// the line, and fails — exit 3, or 9 for the timeout, with the console's last lines and
  /// nothing left behind — for a guest that panics or never prints it.
  @Suite(.serialized) struct GuestReadinessTests {
    static let peers: [Peer] = [.qemu, .linuxGuest]
    static let booted = "guest_ready_console = \"^xenlight-guest: booted, uptime [0-9.]+ s$\""

    @Test(.enabled(if: TestEnvironment.shouldRun(peers)))
    func createReturnsOnceTheConsoleSaysTheGuestBooted() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      let created = try await bed.xl(["create", "-v", bed.linuxGuest(Self.booted)])
      #expect(created.status == 0, "\(created)")
      // The guest waited for before the run state is recorded (the monitor's cue), then said.
      let lines = created.stderr.split(separator: "\n")
      let ready = try #require(lines.firstIndex { $0.contains("] guest ready: console line ") }, "\(created.stderr)")
      let waited = try #require(lines.firstIndex { $0.contains("] wait for the guest's console: a line matching ") })
      let recorded = try #require(lines.firstIndex { $0.contains("] record the device model as running: ") })
      #expect(waited < recorded && recorded < ready)
      #expect(lines[ready].contains(#""xenlight-guest: booted, uptime "#) && lines[ready].contains(" after the device model confirmed"), "\(lines[ready])")
      // What the guest printed is there for the user, and the domain runs.
      let log = try readFile(bed.logDirectory + "/console/guest-linux.log")
      #expect(log.contains("xenlight-guest: booted"))
      #expect(try await bed.read("/libxl/1/run-state") == "running")
      #expect(try await bed.xl(["destroy", "linux"]).status == 0)
      try await bed.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun(peers)))
    func aKernelThatPanicsFailsTheCreateWithItsLastLines() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      // No init in the initramfs (rdinit) and none on a root that does not exist (init=).
      let result = try await bed.xl([
        "create", "-q", bed.linuxGuest(Self.booted), "extra=\"console=ttyS0 panic=0 rdinit=/missing init=/missing\"",
      ])
      #expect(result.status == 3, "\(result)")
      let log = bed.logDirectory + "/console/guest-linux.log"
      #expect(
        result.stderr.hasPrefix(
          #"xl: domain "linux" not created: the guest panicked (Kernel panic - not syncing: VFS: Unable to mount root fs"#),
        "\(result.stderr)")
      #expect(
        result.stderr.contains(
          #") before printing a console line matching "^xenlight-guest: booted, uptime [0-9.]+ s$"; its device model was stopped and its records removed; the console's last lines (\#(log)):\#n    "#))
      #expect(result.stderr.contains("Kernel panic - not syncing"))
      #expect(result.stderr.split(separator: "\n").count <= 1 + 12)
      try await bed.expectNoLeftovers()
      #expect(processes(mentioning: bed.directory.path + "/").isEmpty, "a device model or monitor outlived the create")
    }

    /// A guest whose init is poweroff or reboot: QEMU (-no-shutdown, reboot=shutdown) says
    /// so with SHUTDOWN on QMP, which the create hears before any console line.
    @Test(.enabled(if: TestEnvironment.shouldRun(peers)), arguments: [("poweroff", "powered off (guest-shutdown)"), ("reboot", "reset itself")])
    func aGuestThatPowersOffOrResetsFirstFailsTheCreate(_ initProgram: String, _ how: String) async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      let result = try await bed.xl([
        "create", "-q", bed.linuxGuest(Self.booted), "extra=\"console=ttyS0 panic=0 rdinit=/bin/\(initProgram) -- -f\"",
      ])
      #expect(result.status == 3, "\(result)")
      #expect(
        result.stderr.hasPrefix(
          #"xl: domain "linux" not created: the guest \#(how) before printing a console line matching "^xenlight-guest: booted, uptime [0-9.]+ s$"; its device model was stopped and its records removed; the console's last lines ("#),
        "\(result.stderr)")
      #expect(result.stderr.contains("Run /bin/\(initProgram) as init process"))
      try await bed.expectNoLeftovers()
      #expect(processes(mentioning: bed.directory.path + "/").isEmpty, "a device model or monitor outlived the create")
    }

    @Test(.enabled(if: TestEnvironment.shouldRun(peers)))
    func aGuestThatNeverPrintsTheLineTimesOut() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      let result = try await bed.xl([
        "create", "-q", bed.linuxGuest("guest_ready_console = \"no such line\"\nguest_ready_timeout = 2"),
      ])
      #expect(result.status == 9, "\(result)")
      #expect(
        result.stderr.hasPrefix(
          #"xl: domain "linux" not created: the guest printed no console line matching "no such line" within 2 s (guest_ready_timeout); its device model was stopped and its records removed"#),
        "\(result.stderr)")
      try await bed.expectNoLeftovers()
      #expect(processes(mentioning: bed.directory.path + "/").isEmpty, "a device model or monitor outlived the create")
    }

    @Test func badSettingsAreRefusedWithTheirPlace() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      let cases: [(String, String)] = [
        ("guest_ready_console = \"(unclosed\"\nserial = \"pty\"", "guest_ready_console: \"(unclosed\" is not a regular expression: "),
        ("guest_ready_console = \"up\"", "guest_ready_console: the console is read from its log, which needs serial = \"pty\""),
        ("guest_ready_timeout = 5", "guest_ready_timeout: needs guest_ready_console (the line that says the guest is up)"),
        ("guest_ready_console = \"up\"\nserial = \"pty\"\nguest_ready_timeout = 0", "guest_ready_timeout: 0 s is out of range (1…86400 s)"),
      ]
      for (lines, message) in cases {
        let result = try await bed.xl(["create", "-q", bed.tinyGuest("g", lines)])
        #expect(result.status == 1, "\(lines): \(result)")
        #expect(result.stderr.hasPrefix("xl: ") && result.stderr.contains(message), "\(lines): \(result.stderr)")
      }
      try await bed.expectNoLeftovers()
    }
  }
}
