#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import XenLight
import InteropSupport
import TestSupport

/// Confirmation by QMP against the real QEMU, and QEMU's early failures as spawn errors.
@Suite(.serialized) struct SpawnQMPTests {
  let spawner = Spawner()

  func qemu(_ arguments: [String], socket: String, log: String, timeout: Duration = .seconds(30)) -> SpawnCommand {
    SpawnCommand(
      what: "device model", executable: Peer.qemu.path,
      arguments: ["-machine", "none", "-nographic", "-nodefaults", "-qmp", "unix:\(socket),server=on,wait=off"] + arguments,
      logPath: log, timeout: timeout)
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func qemuConfirmsByQMPRunning() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let socket = directory.appending("qmp")
    let confirmed = try await spawner.spawn(
      qemu([], socket: socket, log: directory.appending("log")), readiness: .qmp(socketPath: socket))
    #expect(confirmed.value == "running")
    #expect(try ProcessIdentity.of(pid: confirmed.pid) == confirmed.identity)
    #expect(try await spawner.stop(confirmed.identity, what: "device model", grace: .seconds(10)) == .terminated)
    #expect(try await spawner.stop(confirmed.identity) == .alreadyExited)
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func qemuWithDashSConfirmsAsPrelaunch() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let socket = directory.appending("qmp")
    let confirmed = try await spawner.spawn(
      qemu(["-S"], socket: socket, log: directory.appending("log")), readiness: .qmp(socketPath: socket))
    #expect(confirmed.value == "prelaunch")
    _ = try await spawner.stop(confirmed.identity)
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func aStatusNotAcceptedIsAProtocolFailureAndQEMUIsStopped() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let socket = directory.appending("qmp")
    let daemon = try await spawner.start(
      qemu(["-S"], socket: socket, log: directory.appending("log")),
      readiness: .qmp(socketPath: socket, acceptedStates: ["running"]))
    let error = try await #require(throws: SpawnError.self) { _ = try await daemon.confirm() }
    #expect(error.code == .protocolFailed)
    #expect(error.detail == "QMP: query-status returned status \"prelaunch\", not one of running")
    #expect(!isRunning(daemon.identity))
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func bogusOptionIsExitedOneWithQEMUsMessage() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let socket = directory.appending("qmp")
    let error = try await #require(throws: SpawnError.self) {
      _ = try await spawner.spawn(
        qemu(["-bogus"], socket: socket, log: directory.appending("log")), readiness: .qmp(socketPath: socket))
    }
    #expect(error.code == .exited)
    #expect(error.status?.exitCode == 1)
    #expect(error.logTail == "qemu-system-x86_64: -bogus: invalid option")
    #expect(error.description.hasPrefix("device model [\(error.pid!)] exited with status 1 during startup after "))
    #expect(error.description.hasSuffix(": qemu-system-x86_64: -bogus: invalid option"))
  }

  /// QEMU binds the QMP socket, then fails: a connect succeeds and then the connection
  /// resets. The error is the death with QEMU's message, not a protocol failure.
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func failureAfterBindingTheSocketIsReportedAsTheExit() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let socket = directory.appending("qmp")
    let error = try await #require(throws: SpawnError.self) {
      _ = try await spawner.spawn(
        qemu(["-drive", "file=\(directory.appending("missing.img")),format=raw"], socket: socket, log: directory.appending("log")),
        readiness: .qmp(socketPath: socket))
    }
    #expect(error.code == .exited)
    #expect(error.status?.exitCode == 1)
    #expect(error.logTail.contains("Could not open '\(directory.appending("missing.img"))': No such file or directory"))
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func xenDeviceModelWithoutXenFailsAtOnceWithQEMUsMessage() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let socket = directory.appending("qmp")
    var command = qemu([], socket: socket, log: directory.appending("log"))
    command.arguments = ["-xen-domid", "1", "-machine", "xenfv", "-nographic", "-nodefaults",
                         "-qmp", "unix:\(socket),server=on,wait=off"]
    let error = try await #require(throws: SpawnError.self) {
      _ = try await spawner.spawn(command, readiness: .qmp(socketPath: socket))
    }
    #expect(error.code == .exited)
    #expect(error.status?.exitCode == 1)
    #expect(!error.logTail.isEmpty)
  }

  /// A descriptor sent with a command (SCM_RIGHTS) reaches QEMU: `add-fd` files it in an fd
  /// set that `query-fdsets` then lists; `getfd` sent without one is refused in QEMU's words.
  @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
  func aDescriptorPassedWithACommandReachesQEMU() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let socket = directory.appending("qmp")
    let confirmed = try await spawner.spawn(
      qemu([], socket: socket, log: directory.appending("log")), readiness: .qmp(socketPath: socket))
    let qmp = try await QMPClient.connect(path: socket)
    var ends: [Int32] = [-1, -1]
    #expect(pipe(&ends) == 0)
    let added = try await qmp.execute("add-fd", [("opaque", .string("probe"))], passing: ends[0])
    _ = close(ends[0])
    _ = close(ends[1])
    let setID = try #require(added["fdset-id"]?.intValue)
    let sets = try await qmp.execute("query-fdsets").arrayValue ?? []
    let filed = sets.first { $0["fdset-id"]?.intValue == setID }?["fds"]?.arrayValue ?? []
    #expect(filed.map { $0["opaque"]?.stringValue } == ["probe"])
    let refused = await #expect(throws: XenLightError.self) { try await qmp.execute("getfd", [("fdname", .string("none"))]) }
    #expect(refused?.message == "QEMU refused: No file descriptor supplied via SCM_RIGHTS")
    await qmp.finish()
    #expect(try await spawner.stop(confirmed.identity, what: "device model", grace: .seconds(10)) == .terminated)
  }
}

/// Whether the recorded process still runs (gone, or another process with its pid, is not).
private func isRunning(_ identity: ProcessIdentity) -> Bool {
  guard let now = try? ProcessIdentity.of(pid: identity.pid) else { return false }
  return now.startTime == identity.startTime
}
