#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import InteropSupport
import TestSupport
import XenStore

/// Every way `xl create` can fail: one precise message, the documented exit code, and
/// nothing left behind — no process, no records, no stray socket.
@Suite(.serialized) struct XlBadInputTests {
  @Test func syntaxErrorNamesFileLineAndColumn() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let cfg = bed.config("name = \"g\"\nmemory = 12abc\n")
    let result = try await bed.xl(["create", "-q", cfg])
    #expect(result.status == 1)
    #expect(result.stderr == "xl: \(cfg):2:10: invalid number \"12abc\"\n")
    try await bed.expectNoLeftovers()
  }

  @Test func xmConfigIsRefusedAtItsFirstLine() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let cfg = bed.config("import os, re\narch = os.uname()[4]\n")
    let result = try await bed.xl(["create", cfg])
    #expect(result.status == 1)
    #expect(result.stderr == """
      Parsing config from \(cfg)
      xl: \(cfg):1:8: expected '=' or '+=' after "import", found identifier "os"; this looks like an xm-era Python config ("import …"), which xl does not read: xl configs contain only KEY = VALUE settings

      """)
  }

  @Test func unknownTypeAndDeviceModelVersionAreRefused() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let cfg = bed.tinyGuest()
    let type = try await bed.xl(["create", "-q", cfg, "type=\"xenpv\""])
    #expect(type.status == 1)
    #expect(type.stderr == "xl: command line:1:1: type: invalid domain type \"xenpv\" (expected hvm, pv or pvh)\n")
    let version = try await bed.xl(["create", "-q", cfg, "device_model_version=\"qemu-xen-traditional\""])
    #expect(version.status == 1)
    #expect(version.stderr == "xl: command line:1:1: Unknown device_model_version \"qemu-xen-traditional\" specified\n")
  }

  @Test func unknownKeysAreWarnedAbout() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let result = try await bed.xl(["create", "-n", bed.config("name = 'g'\nfrobnicate = 1\n")])
    #expect(result.status == 0)
    #expect(result.stderr.contains("guest.cfg:2:1: warning: unknown setting \"frobnicate\"; kept, not used\n"))
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func bogusDeviceModelArgumentFailsAtOnceWithQEMUsMessage() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let result = try await bed.xl(["create", "-q", bed.tinyGuest(), "device_model_args=[\"-bogus\"]"])
    #expect(result.status == 3)
    #expect(normalized(result.stderr) == """
      xl: domain "tiny" not created: domain 1 device model [PID] exited with status 1 during startup after T: \
      qemu-system-x86_64: -bogus: invalid option (log: \(bed.logDirectory)/qemu-dm-tiny.log)

      """)
    #expect(!isAlive(try #require(bracketedPID(result.stderr))))
    try await bed.expectNoLeftovers()
  }

  /// Without Xen, QEMU's Xen machine fails early: xl quotes QEMU, well before the timeout.
  /// (Debian's qemu-system-xen, which xen-utils-4.17 brings, provides it.)
  @Test(
    .enabled(if: TestEnvironment.shouldRun([.qemu])
      && (TestEnvironment.isCI || access("/usr/libexec/xen-qemu-system-i386", X_OK) == 0)),
    .enabled(if: access("/proc/xen/capabilities", F_OK) != 0))
  func xenCommandLineFailsWithQEMUsOwnError() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let result = try await bed.xl(["create", "-q", "--timeout", "60", bed.tinyGuest(), "device_model_target=\"xen\""])
    #expect(result.status == 3, "\(result)")
    let stderr = normalized(result.stderr)
    #expect(stderr.hasPrefix("""
      xl: domain "tiny" not created: domain 1 device model [PID] exited with status 1 during startup after T; \
      its last output (\(bed.logDirectory)/qemu-dm-tiny.log):

      """))
    #expect(stderr.hasSuffix("\n    xen-qemu-system-i386: failed to initialize xen: Operation not permitted\n"))
    #expect(!isAlive(try #require(bracketedPID(result.stderr))))
    try await bed.expectNoLeftovers()
  }

  @Test func missingDeviceModel() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let missing = bed.directory.appending("no-such-qemu")
    let result = try await bed.xl(["create", "-q", bed.tinyGuest(), "device_model_override=\"\(missing)\""])
    #expect(result.status == 3)
    #expect(normalized(result.stderr) == """
      xl: domain "tiny" not created: domain 1 device model [PID] could not execute \(missing): \
      No such file or directory (ENOENT) (log: \(bed.logDirectory)/qemu-dm-tiny.log)

      """)
    try await bed.expectNoLeftovers()
  }

  @Test func nonExecutableDeviceModel() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let script = bed.neverConfirmingDeviceModel()
    chmod(script, 0o644)
    let result = try await bed.xl(["create", "-q", bed.tinyGuest(), "device_model_override=\"\(script)\""])
    #expect(result.status == 3)
    #expect(normalized(result.stderr) == """
      xl: domain "tiny" not created: domain 1 device model [PID] could not execute \(script): \
      Permission denied (EACCES) (log: \(bed.logDirectory)/qemu-dm-tiny.log)

      """)
    try await bed.expectNoLeftovers()
  }

  /// A device model whose QMP socket answers with something that is not JSON: a protocol
  /// failure quoting what it sent, the device model stopped, nothing left.
  @Test func deviceModelSendingNonJSONOnQMPIsStopped() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let script = bed.config(
      """
      #!/usr/bin/python3
      # Takes xl's QMP connection on descriptor 3 and greets it with plain text.
      import socket, time
      listener = socket.socket(fileno=3)
      connection, _ = listener.accept()
      connection.sendall(b"this is not json\\r\\n")
      time.sleep(60)

      """, name: "garbage-qmp")
    chmod(script, 0o755)
    let result = try await bed.xl(["create", "-q", bed.tinyGuest(), "device_model_override=\"\(script)\""])
    #expect(result.status == 3)
    #expect(normalized(result.stderr) == """
      xl: domain "tiny" not created: domain 1 device model [PID] startup confirmation failed after T: \
      QMP: received something not a JSON object: this is not json; it was stopped (log: \(bed.logDirectory)/qemu-dm-tiny.log)

      """)
    #expect(!isAlive(try #require(bracketedPID(result.stderr))))
    try await bed.expectNoLeftovers()
  }

  @Test func neverConfirmingDeviceModelTimesOutAndIsStopped() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let result = try await bed.xl(["create", "-q", "--timeout", "0.5", bed.tinyGuest(), "device_model_override=\"\(bed.neverConfirmingDeviceModel())\""])
    #expect(result.status == 9)
    #expect(normalized(result.stderr) == """
      xl: domain "tiny" not created: domain 1 device model [PID] did not confirm startup within T \
      (awaiting QMP on \(bed.runDirectory)/qmp-libxl-1 or /local/domain/0/device-model/1/state = running); \
      it was stopped (log: \(bed.logDirectory)/qemu-dm-tiny.log)

      """)
    #expect(!isAlive(try #require(bracketedPID(result.stderr))))
    try await bed.expectNoLeftovers()
  }

  @Test func timeoutFromTheConfig() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let result = try await bed.xl([
      "create", "-q", bed.tinyGuest(), "device_model_override=\"\(bed.neverConfirmingDeviceModel())\"",
      "device_model_start_timeout=1",
    ])
    #expect(result.status == 9)
    #expect(result.stderr.contains("did not confirm startup within 1 s"))
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func duplicateNameIsRefusedAndTheFirstDomainKept() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let cfg = bed.tinyGuest()
    #expect(try await bed.xl(["create", "-q", cfg]).status == 0)
    let second = try await bed.xl(["create", "-q", cfg])
    #expect(second.status == 4)
    #expect(second.stderr == "xl: a domain named \"tiny\" already exists (domain 1)\n")
    #expect(try await bed.children("/local/domain").filter { $0 != "0" } == ["1"])
    #expect(try await bed.read("/local/domain/0/device-model/1/state") == "running")
    #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
    try await bed.expectNoLeftovers()
  }

  @Test func unreachableXenstoreThatCannotBeStarted() async throws {
    let bed = try XlTestbed(xenstored: false)
    defer { bed.stop() }
    let file = bed.config("", name: "not-a-directory")
    let socket = file + "/xs.sock"
    let result = try await bed.xl(["create", "-q", bed.tinyGuest()], environment: ["XENSTORED_PATH": socket])
    #expect(result.status == 2)
    #expect(result.stderr == "xl: no xenstored answers at \(socket), and xl cannot start one: cannot create \(file): it exists and is not a directory\n")
  }

  @Test func xenstoredThatFailsToStartIsReportedWithItsMessage() async throws {
    let bed = try XlTestbed(xenstored: false)
    defer { bed.stop() }
    // Longer than sun_path: xl cannot connect (ENAMETOOLONG is not "nobody there") — so use a
    // path xenstored refuses: an existing non-socket file is claimed by nobody.
    let socket = bed.config("not a socket", name: "xs.sock")
    let result = try await bed.xl(["create", "-q", bed.tinyGuest()], environment: ["XENSTORED_PATH": socket])
    #expect(result.status == 2, "\(result)")
    #expect(normalized(result.stderr).hasPrefix("xl: "))
    #expect(result.stderr.contains(socket))
  }

  /// libxenstore would wait forever on a daemon that accepts and never answers; xl gives up.
  @Test func xenstoredThatNeverAnswersIsGivenUpOn() async throws {
    let bed = try XlTestbed(xenstored: false)
    defer { bed.stop() }
    let listener = try listeningSocket(at: bed.socketPath)
    defer { close(listener) }
    let create = try await bed.xl(["create", "-q", "--xenstore-timeout", "0.3", bed.tinyGuest()])
    #expect(create.status == 2)
    #expect(create.stderr == "xl: xenstored at \(bed.socketPath) did not answer within 300 ms (allocating a domid)\n")
    let list = try await bed.xl(["list", "--xenstore-timeout", "0.3"])
    #expect(list.status == 2)
    #expect(list.stderr == "xl: xenstored at \(bed.socketPath) did not answer within 300 ms (listing domains)\n")
    let destroy = try await bed.xl(["destroy", "--xenstore-timeout", "0.3", "tiny"])
    #expect(destroy.status == 2)
    #expect(destroy.stderr == "xl: xenstored at \(bed.socketPath) did not answer within 300 ms (finding the domain)\n")
    #expect(bed.sockets(in: bed.runDirectory) == [])
  }

  /// A Unix socket bound at `path` and listening, that nobody ever accepts on.
  private func listeningSocket(at path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard bound == 0, listen(fd, 64) == 0 else { throw StartupError(description: "cannot listen on \(path)") }
    return fd
  }

  @Test func xenstoredDyingMidCreateEndsItAndStopsTheDeviceModel() async throws {
    let bed = try XlTestbed(xenstored: false)
    defer { bed.stop() }
    let output = bed.directory.appending("xl.out")
    let pid = try spawnBackground(
      [BuiltProducts.path("xl"), "create", bed.tinyGuest(), "device_model_override=\"\(bed.neverConfirmingDeviceModel())\""],
      environment: bed.environment, output: output)
    // Wait until the device model runs (its identity is recorded), then kill xenstored.
    let identity = try await waitForDeviceModel(bed)
    let errors = try readFile(output + ".err")
    let started = try #require(errors.split(separator: "\n").first { $0.contains("started") })
    let xenstored = try #require(bracketedPID(String(started)))
    kill(xenstored, SIGKILL)
    let status = await waitForExit(pid, seconds: 60)
    #expect(status.map { ($0 >> 8) & 0xff } == 2)
    let message = try #require(try readFile(output + ".err").split(separator: "\n").last)
    #expect(normalized(String(message)) == """
      xl: domain "tiny" not created: domain 1 device model [PID] startup confirmation failed after T: \
      xenstore failed while waiting for /local/domain/0/device-model/1/state: connection to xenstored at \
      \(bed.socketPath) lost: xenstored closed the connection (connection-lost); it was stopped \
      (log: \(bed.logDirectory)/qemu-dm-tiny.log)
      """)
    #expect(!isAlive(identity.pid))
    #expect(bed.sockets(in: bed.runDirectory) == [])

    // xl's xenstored is durable: the records written before it died are back with it. The
    // domain shows as crashed (its device model is gone), and `xl destroy` removes it.
    let listed = try await bed.xl(["list"])
    let restarted = try #require(bracketedPID(listed.stderr), "\(listed)")
    defer {
      kill(restarted, SIGTERM)
      #expect(awaitExitInCleanup(restarted, seconds: 30))
    }
    #expect(listed.stdout.split(separator: "\n").contains { $0.hasPrefix("tiny ") && $0.contains(" ---sc- ") }, "\(listed)")
    let destroyed = try await bed.xl(["destroy", "tiny"])
    #expect(destroyed.stdout == "Domain 1 (tiny) destroyed: device model already exited\n", "\(destroyed)")
    try await bed.expectNoLeftovers()
  }

  @Test func interruptMidCreateStopsTheDeviceModelAndRemovesEverything() async throws {
    for signal in [SIGINT, SIGTERM] {
      let bed = try XlTestbed()
      defer { bed.stop() }
      let output = bed.directory.appending("xl.out")
      let pid = try spawnBackground(
        [BuiltProducts.path("xl"), "create", "-q", bed.tinyGuest(), "device_model_override=\"\(bed.neverConfirmingDeviceModel())\""],
        environment: bed.environment, output: output)
      let identity = try await waitForDeviceModel(bed)
      kill(pid, signal)
      let status = await waitForExit(pid, seconds: 60)
      let stderr = try readFile(output + ".err")
      #expect(status.map { ($0 >> 8) & 0xff } == 130, "\(String(describing: status)): \(stderr)")
      #expect(normalized(stderr) == """
        xl: domain "tiny" not created: interrupted after T; its device model [PID] was stopped and its records \
        removed (log: \(bed.logDirectory)/qemu-dm-tiny.log)

        """)
      #expect(!isAlive(identity.pid))
      try await bed.expectNoLeftovers()
    }
  }

  /// The device model's identity, once xl has recorded it (watching xenstore for it, once
  /// xenstored answers: xl may be starting it).
  private func waitForDeviceModel(_ bed: XlTestbed) async throws -> ProcessIdentity {
    var connected: XenStoreClient?
    for _ in 0..<3000 where connected == nil {
      connected = try? await bed.client()
      if connected == nil { try? await Task.sleep(for: .microseconds(10_000)) }
    }
    let client = try #require(connected)
    defer { client.close() }
    let path = "/libxl/1/device-model-identity"
    let watch = try await client.watch(path)
    for try await _ in watch {
      if let text = try? await client.read(path), let identity = ProcessIdentity(text) { return identity }
    }
    throw StartupError(description: "the watch on \(path) ended")
  }
}

/// The command line itself.
@Suite struct XlCommandLineTests {
  @Test func configFileByDashFAndSettingsAfter() async throws {
    let bed = try XlTestbed(xenstored: false)
    defer { bed.stop() }
    let result = try await bed.xl(["create", "-n", "-f", bed.tinyGuest(), "memory=40"])
    #expect(result.status == 0, "\(result)")
    #expect(result.stdout.contains("/local/domain/1/memory/target = \"40960\""))
  }

  @Test func missingConfigFileIsAUsageError() async throws {
    let bed = try XlTestbed(xenstored: false)
    defer { bed.stop() }
    let result = try await bed.xl(["create"])
    #expect(result.status == 64)
    #expect(result.stderr.hasPrefix("Error: Missing the config file: xl create FILE [KEY=VALUE...]\n"))
  }

  @Test func unreadableConfigFile() async throws {
    let bed = try XlTestbed(xenstored: false)
    defer { bed.stop() }
    let missing = bed.directory.appending("missing.cfg")
    let result = try await bed.xl(["create", "-q", missing])
    #expect(result.status == 1)
    #expect(result.stderr == "xl: cannot read \(missing): No such file or directory\n")
  }
}
