#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import InteropSupport
import TestSupport
import XenStore

/// The suites that boot guests, one test at a time across them: a TCG guest takes a core while
/// it boots, and two at once on this machine's two cores starve every other test's tasks.
@Suite(.serialized) enum GuestSuites {}

extension GuestSuites {
  /// A guest's life through `xl` only: a real Linux guest (boot, console, pause, shutdown,
  /// reboot, panic) and the firmware-only tiny guest where the guest's own code does not matter
  /// (its device model killed, its monitor killed, xenstored killed, a guest that ignores the
  /// power button).
  @Suite(.serialized) struct GuestLifecycleTests {
    static let linuxPeers: [Peer] = [.qemu, .linuxGuest, .xenstoreRead]

    func linux(_ bed: XlTestbed, name: String = "linux", _ extra: String = "") -> String {
      bed.linuxGuest(name: name, extra)
    }

    @Test(.enabled(if: TestEnvironment.shouldRun(linuxPeers)))
    func bootConsolePauseAndShutdownLeaveNothing() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      let created = try await bed.xl(["create", "-q", linux(bed)])
      try #require(created.status == 0, "\(created)")
      let qemu = try #require(try await bed.read("/libxl/1/device-model-identity").flatMap(ProcessIdentity.init))
      let monitor = try #require(try await bed.read("/libxl/1/monitor-identity").flatMap(ProcessIdentity.init))
      #expect(try await bed.read("/local/domain/1/serial/0/tty")?.hasPrefix("/dev/pts/") == true)
      // The monitor starts 10 nicer beside QEMU; once it watches, it has xl's priority again.
      #expect(niceValue(monitor.pid) == niceValue(getpid()))

      // The console answers a command (through a pseudo-terminal, as a user's terminal).
      let answer = try await ConsoleSession.exchangeAwaiting(bed, domain: "linux", send: "echo hello-$((6*7))\r", until: "hello-42")
      #expect(answer.contains("hello-42"), "\(answer)")
      let log = try readFile(bed.logDirectory + "/console/guest-linux.log")
      #expect(log.contains("xenlight-guest: booted"), "\(log)")

      #expect(try await bed.xl(["pause", "linux"]).status == 0)
      #expect(try await listedState(bed, "linux") == "--p---")
      let paused = try await bed.xl(["shutdown", "linux"])
      #expect(paused.status == 1)
      #expect(paused.stderr == "Shutting down domain 1\nxl: cannot shut down domain 1 (linux): it is paused; a paused guest cannot act on it: unpause it first (xl unpause linux)\n", "\(paused)")
      #expect(try await bed.xl(["unpause", "linux"]).status == 0)
      #expect(["r-----", "-b----"].contains(try await listedState(bed, "linux")))

      let shutdown = try await bed.xl(["shutdown", "-w", "linux"])
      #expect(shutdown.status == 0, "\(shutdown)")
      #expect(shutdown.stderr == "Shutting down domain 1\nWaiting for 1 domains\nDomain 1 has been destroyed\n")
      #expect(!isAlive(qemu.pid))
      #expect(await awaitExit(monitor.pid, seconds: 10))
      try await bed.expectNoLeftovers()
      #expect(try await listed(bed).isEmpty)
      let monitorLog = try readFile(bed.logDirectory + "/xl-linux.log")
      #expect(monitorLog.contains("Waiting for domain linux (domid 1) to die [pid \(monitor.pid)]"), "\(monitorLog)")
      #expect(monitorLog.contains("Domain 1 has shut down, reason code 0 0x0\nAction for shutdown reason code 0 is destroy\n"))
      #expect(files(in: bed.libDirectory).filter { $0.hasPrefix("userdata-") } == [])
    }

    @Test(.enabled(if: TestEnvironment.shouldRun(linuxPeers)))
    func rebootBootsAgainUnderTheSameName() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", linux(bed)]).status == 0)
      let first = try await bed.read("/libxl/1/device-model-identity")
      _ = try await ConsoleSession.exchangeAwaiting(bed, domain: "linux", send: "echo first-$((1+1))\r", until: "first-2")
      let reboot = try await bed.xl(["reboot", "linux"])
      #expect(reboot.status == 0, "\(reboot)")
      // Re-created as xl does: a new domid (the old domain holds its own and the name until
      // the new one's claim takes them over), a new device model.
      try await bed.waitUntil("/libxl/2/run-state", is: "running")
      #expect(try await bed.read("/libxl/2/device-model-identity") != first)
      #expect(try await bed.read("/local/domain/1/name") == nil)
      let second = try await ConsoleSession.exchangeAwaiting(bed, domain: "linux", send: "echo second-$((2+1))\r", until: "second-3")
      #expect(second.contains("second-3"), "\(second)")
      let log = try readFile(bed.logDirectory + "/console/guest-linux.log")
      #expect(log.components(separatedBy: "xenlight-guest: booted").count == 3, "two boots in \(log)")
      #expect(try await listed(bed).map(\.name) == ["linux"])
      #expect(try await bed.xl(["destroy", "linux"]).status == 0)
      try await bed.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun(linuxPeers)), arguments: ["destroy", "preserve", "restart", "coredump-destroy"])
    func guestPanicAppliesOnCrash(action: String) async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", linux(bed, "on_crash = \"\(action)\"")]).status == 0)
      let first = try await bed.read("/libxl/1/device-model-identity")
      _ = try await ConsoleSession.exchangeAwaiting(bed, domain: "linux", send: "echo c > /proc/sysrq-trigger\r", until: "Kernel panic")
      switch action {
      case "destroy":
        try await bed.waitUntil("/local/domain/1/name", is: nil)
        try await bed.expectNoLeftovers()
      case "coredump-destroy":
        try await bed.waitUntil("/local/domain/1/name", is: nil)
        try await bed.expectNoLeftovers()
        // The guest's memory, as QMP dump-guest-memory writes it: an ELF core of its 128 MiB.
        let dump = bed.libDirectory + "/dump/linux"
        var info = stat()
        #expect(stat(dump, &info) == 0 && info.st_size > 128 << 20, "\(dump): \(info.st_size) bytes")
        let fd = open(dump, O_RDONLY)
        var magic = [UInt8](repeating: 0, count: 4)
        _ = read(fd, &magic, 4)
        close(fd)
        #expect(magic == [0x7f, 0x45, 0x4c, 0x46], "an ELF core")
        #expect(try readFile(bed.logDirectory + "/xl-linux.log").contains("dumping core to \(dump)\n"))
      case "preserve":
        try await bed.waitUntil("/libxl/1/run-state", is: "crashed")
        #expect(try await listedState(bed, "linux") == "----c-")
        #expect(try await bed.xl(["destroy", "linux"]).status == 0)
        try await bed.expectNoLeftovers()
      default:
        try await bed.waitUntil("/libxl/2/run-state", is: "running")
        #expect(try await bed.read("/libxl/2/device-model-identity") != first)
        #expect(try await bed.read("/local/domain/2/name") == "linux")
        #expect(try await bed.read("/local/domain/1/name") == nil)
        #expect(try await bed.xl(["destroy", "linux"]).status == 0)
        try await bed.expectNoLeftovers()
      }
      let monitorLog = try readFile(bed.logDirectory + "/xl-linux.log")
      #expect(monitorLog.contains("Domain 1 has shut down, reason code 3 0x3\nAction for shutdown reason code 3 is \(action)\n"), "\(monitorLog)")
    }

    /// libxl's PV protocol, with a guest agent played as domain 1 itself (xenstore-utils on the
    /// domain's own socket, so xenstored applies the domain's permissions): once the guest
    /// advertises `control/feature-poweroff`, `xl shutdown` writes `control/shutdown` and waits
    /// for the agent to clear it; without an answer it fails with exit 9.
    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu, .xenstoreRead])))
    func shutdownSpeaksThePVControlProtocolToAGuestThatAdvertisesIt() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest()]).status == 0)
      var asDomain = bed.environment
      asDomain["XENSTORED_PATH"] = bed.socketPath + ".d/domain-1"
      let advertised = try await run(
        ["/usr/bin/xenstore-write", "/local/domain/1/control/feature-poweroff", "1"], environment: asDomain)
      try #require(advertised.status == 0, "\(advertised)")

      // The agent: wait for the request, note it, acknowledge it by clearing the node. It says
      // "watching" once its watch has fired the first time (registered), on a FIFO read here:
      // an `xl shutdown` that wrote before the watch existed would never be seen.
      let noted = bed.directory.appending("request")
      let said = bed.directory.appending("agent.out")
      try #require(mkfifo(said, 0o600) == 0)
      // Open for reading first (without waiting for a writer), or the agent's start would
      // block opening its output.
      let saying = open(said, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
      try #require(saying >= 0)
      defer { close(saying) }
      let agent = try spawnBackground(
        ["/bin/sh", "-c", """
          xenstore-watch -n 2 /local/domain/1/control/shutdown | { read first; echo watching; read second; }
          xenstore-read /local/domain/1/control/shutdown > \(noted)
          xenstore-write /local/domain/1/control/shutdown ""
          """], environment: asDomain, output: said)
      _ = fcntl(saying, F_SETFL, 0)  // blocking reads from here: the agent holds the write end
      let firstLine = try await offPool { () -> String in
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while read(saying, &byte, 1) == 1, byte != UInt8(ascii: "\n") { line.append(byte) }
        return String(decoding: line, as: UTF8.self)
      }
      try #require(firstLine == "watching", "the agent: \(firstLine)")
      let shutdown = try await bed.xl(["shutdown", "tiny"])
      #expect(shutdown.status == 0, "\(shutdown)")
      #expect(await waitForExit(agent, seconds: 30) == 0)
      #expect(try readFile(noted) == "poweroff\n")
      #expect(!shutdown.stderr.contains("ACPI"), "no power button: \(shutdown)")

      // Nobody answers now: the request is not acknowledged.
      let unanswered = try await bed.xl(["shutdown", "--ack-timeout", "1", "tiny"])
      #expect(unanswered.status == 9, "\(unanswered)")
      #expect(unanswered.stderr.hasSuffix(
        "xl: domain 1 (tiny) did not acknowledge poweroff on /local/domain/1/control/shutdown within 1 s\n"), "\(unanswered)")
      #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
      try await bed.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
    func deviceModelKilledAppliesOnCrash() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest()]).status == 0)
      let qemu = try #require(try await bed.read("/libxl/1/device-model-identity").flatMap(ProcessIdentity.init))
      kill(qemu.pid, SIGKILL)
      try await bed.waitUntil("/local/domain/1/name", is: nil)
      try await bed.expectNoLeftovers()
      let log = try readFile(bed.logDirectory + "/xl-tiny.log")
      #expect(log.contains("domain 1: device model [\(qemu.pid)] died unexpectedly\nDomain 1 has shut down, reason code 3 0x3\nAction for shutdown reason code 3 is destroy\n"), "\(log)")
    }

    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
    func aKilledMonitorLeavesTheDomainManageable() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest()]).status == 0)
      let monitor = try #require(try await bed.read("/libxl/1/monitor-identity").flatMap(ProcessIdentity.init))
      kill(monitor.pid, SIGKILL)
      #expect(await awaitExit(monitor.pid, seconds: 10))
      let list = try await bed.xl(["list"])
      #expect(list.stdout.split(separator: "\n").last?.hasSuffix("(not monitored: its monitor is gone)") == true, "\(list)")
      let destroyed = try await bed.xl(["destroy", "tiny"])
      #expect(destroyed.stdout == "Domain 1 (tiny) destroyed: device model stopped\n", "\(destroyed)")
      try await bed.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
    func theMonitorSurvivesXenstoredKilledAndRestarted() async throws {
      let bed = try XlTestbed(xenstored: false)
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest()]).status == 0)
      let qemu = try #require(try await bed.read("/libxl/1/device-model-identity").flatMap(ProcessIdentity.init))
      let xenstored = try #require(pidListening(on: bed.socketPath))
      kill(xenstored, SIGKILL)
      #expect(await awaitExit(xenstored, seconds: 10))
      // The next xl brings xenstored back on its saved state; the monitor finds it again.
      #expect(try await bed.xl(["list"]).status == 0)
      kill(qemu.pid, SIGKILL)
      try await bed.waitUntil("/local/domain/1/name", is: nil)
      let log = try readFile(bed.logDirectory + "/xl-tiny.log")
      #expect(log.contains("xenstore connection restored"), "\(log)")
      #expect(log.contains("Action for shutdown reason code 3 is destroy"), "\(log)")
      try await bed.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
    func aGuestThatIgnoresThePowerButtonTimesOut() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      // The firmware-only guest has no OS to act on the ACPI power button.
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest()]).status == 0)
      let shutdown = try await bed.xl(["shutdown", "-w", "--timeout", "1", "tiny"])
      #expect(shutdown.status == 9)
      #expect(shutdown.stderr == """
        Shutting down domain 1
        Waiting for 1 domains
        xl: domain 1 (tiny) did not shut down within 1 s: the guest ignored the request (for the ACPI power button, the guest needs acpid or equivalent)

        """, "\(shutdown)")
      #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
      try await bed.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
    func badInputsGetTheirMessageAndExitCode() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      for verb in [["destroy"], ["shutdown"], ["reboot"], ["pause"], ["unpause"], ["console"], ["list"], ["shutdown", "-w"]] {
        let result = try await bed.xl(verb + ["nosuch"])
        #expect(result.status == 1, "\(verb): \(result)")
        #expect(result.stderr.hasSuffix("xl: no domain \"nosuch\"\n"), "\(verb): \(result)")
      }
      let bogus = try await bed.xl(["create", bed.tinyGuest("b", "on_crash = \"bogus\"")])
      #expect(bogus.status == 1)
      #expect(bogus.stderr.hasSuffix("b.cfg:7:1: on_crash: invalid action \"bogus\" (expected one of destroy, restart, preserve, rename-restart, coredump-destroy, coredump-restart, soft-reset)\n"), "\(bogus)")
      let slash = try await bed.xl(["create", bed.config("name = \"x y/z\"\nmemory = 32\n", name: "slash.cfg")])
      #expect(slash.status == 1)
      #expect(slash.stderr.hasSuffix(#"slash.cfg:1:1: name: the domain name "x y/z" must not contain "/": it names the domain's log, console and dump files"# + "\n"), "\(slash)")

      try #require(try await bed.xl(["create", "-q", bed.tinyGuest()]).status == 0)
      let console = try await bed.xl(["console", "tiny"])
      #expect(console.status == 1)
      #expect(console.stderr == "xl: domain 1 (tiny) has no serial console 0 (/local/domain/1/serial/0/tty is not set; the config needs serial = \"pty\")\n")
      #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
    }

    // MARK: helpers

    private func listed(_ bed: XlTestbed) async throws -> [(name: String, state: String)] {
      let list = try await bed.xl(["list"])
      return list.stdout.split(separator: "\n").dropFirst().map { line in
        let fields = line.split(separator: " ")
        return (String(fields[0]), String(fields[4]))
      }
    }

    private func listedState(_ bed: XlTestbed, _ name: String) async throws -> String? {
      try await listed(bed).first { $0.name == name }?.state
    }

    /// The xenstored that xl started for this testbed (its command line names the socket).
    private func pidListening(on path: String) -> Int32? {
      guard let proc = opendir("/proc") else { return nil }
      defer { closedir(proc) }
      while let entry = readdir(proc) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let pid = Int32(name), let cmdline = try? readFile("/proc/\(pid)/cmdline") else { continue }
        let argv = cmdline.split(separator: "\0").map(String.init)
        if argv.first?.hasSuffix("/xenstored") == true, argv.contains(path) { return pid }
      }
      return nil
    }
  }
}

enum ConsoleSession {
  /// `exchange`, off the cooperative pool.
  static func exchangeAwaiting(_ bed: XlTestbed, domain: String, send text: String, until marker: String) async throws -> String {
    try await offPool { try exchange(bed, domain: domain, send: text, until: marker) }
  }

  /// Attaches, sends `text` once the guest's shell prompt is there, reads until `marker`
  /// (or 90 s), then leaves with Ctrl-]. Returns what was read.
  static func exchange(_ bed: XlTestbed, domain: String, send text: String, until marker: String) throws -> String {
    let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
    var unlock: Int32 = 0
    var number: UInt32 = 0
    // TIOCSPTLCK (unlockpt) and TIOCGPTN (ptsname).
    guard master >= 0, ioctl(master, 0x4004_5431, &unlock) == 0, ioctl(master, 0x8004_5430, &number) == 0 else {
      throw StartupError(description: "no pseudo-terminal")
    }
    defer { close(master) }
    let slave = open("/dev/pts/\(number)", O_RDWR | O_NOCTTY)
    var environment = bed.environment
    environment["PATH"] = "/usr/bin:/bin"
    let pid = try spawnWithStdio(
      [BuiltProducts.path("xl"), "console", domain], environment: environment, stdin: slave, stdout: slave, stderr: slave)
    close(slave)
    var seen = ""
    var sent = false
    let deadline = time(nil) + 90
    while time(nil) < deadline, !(sent && seen.contains(marker)) {
      if !sent && (seen.contains("xlguest# ") || marker == "xlguest# ") {
        _ = text.withCString { write(master, $0, strlen($0)) }
        sent = true
      }
      var fds = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
      // Until the prompt shows, a carriage return asks the shell for it again.
      if poll(&fds, 1, sent ? 1000 : 2000) == 0 {
        if !sent { _ = write(master, "\r", 1) }
        continue
      }
      var buffer = [UInt8](repeating: 0, count: 4096)
      let n = read(master, &buffer, buffer.count)
      if n <= 0 { break }
      seen += String(decoding: buffer[0..<n], as: UTF8.self)
    }
    _ = write(master, [UInt8(0x1d)], 1)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return seen
  }
}

extension XlTestbed {
  /// examples/linux.cfg's guest (Debian's cloud kernel, the busybox initramfs of
  /// scripts/guest-image.sh, TCG, a pty console) named `name`, plus `extra` lines.
  func linuxGuest(name: String = "linux", _ extra: String = "") -> String {
    config(
      """
      name = "\(name)"
      type = "pvh"
      kernel = "/var/cache/xenlight-guest/vmlinuz"
      ramdisk = "/var/cache/xenlight-guest/initrd.cpio.gz"
      extra = "console=ttyS0 panic=0 quiet"
      memory = 128
      serial = "pty"
      device_model_accel = "tcg"
      \(extra)
      """, name: "\(name).cfg")
  }

  /// Waits, by watch, until `path` reads `value` (nil: until it does not exist).
  func waitUntil(_ path: String, is value: String?, seconds: Int = 60) async throws {
    try await waitUntil(path, seconds: seconds) { $0 == value }
  }

  /// Waits, by watch, until `path`'s value (nil: absent) satisfies `done`.
  func waitUntil(
    _ path: String, seconds: Int = 60, _ done: @escaping @Sendable (String?) -> Bool
  ) async throws {
    let client = try await client()
    defer { client.close() }
    let watch = try await client.watch(path)
    let reached = try await withThrowingTaskGroup(of: Bool.self) { group in
      group.addTask {
        for try await _ in watch {
          let now: String?
          do { now = try await client.read(path) } catch let error as XenStoreError where error.code == .ENOENT { now = nil }
          if done(now) { return true }
        }
        return false
      }
      group.addTask {
        try await Task.sleep(for: .seconds(seconds))
        return false
      }
      defer { group.cancelAll() }
      return try await group.next()!
    }
    #expect(reached, "\(path) never reached the awaited value")
  }
}
