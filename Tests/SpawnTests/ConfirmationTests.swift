#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import TestSupport

/// Confirmation by each source, and what a confirmed daemon looks like afterwards.
@Suite(.serialized) struct ConfirmationTests {
  let spawner = Spawner()

  @Test func notificationPipeConfirmsWithTheLine() async throws {
    let command = Fixture.command("sleep", "20", "notify", "3", "listening on 7", "pause", log: nil)
    let confirmed = try await spawner.spawn(command, readiness: .notificationPipe())
    #expect(confirmed.value == "listening on 7")
    #expect(isRunning(confirmed.identity))
    #expect(try await spawner.stop(confirmed.identity, grace: .seconds(5)) == .terminated)
  }

  @Test func notificationPipeOnAnotherDescriptor() async throws {
    let command = Fixture.command("notify", "5", "", "pause", log: nil)
    let confirmed = try await spawner.spawn(command, readiness: .notificationPipe(descriptor: 5))
    #expect(confirmed.value == "")
    _ = try await spawner.stop(confirmed.identity)
  }

  @Test func notificationPipeClosedWithoutNewlineIsAProtocolFailure() async throws {
    let command = Fixture.command("close", "3", "pause", log: nil)
    let error = await spawnError { _ = try await spawner.spawn(command, readiness: .notificationPipe()) }
    #expect(error?.code == .protocolFailed)
    #expect(error?.detail == "descriptor 3 was closed without a newline")
    #expect(error.map { $0.description.hasSuffix("; it was stopped") } == true)
  }

  @Test func notificationPipeClosedByDeathIsReportedAsTheDeath() async throws {
    let command = Fixture.command("err", "no config", "exit", "2", log: nil)
    let error = await spawnError { _ = try await spawner.spawn(command, readiness: .notificationPipe()) }
    #expect(error?.code == .exited)
    #expect(error?.status?.exitCode == 2)
  }

  @Test func systemdNotifyReadyConfirmsAndStatusIsProgress() async throws {
    let command = Fixture.command(
      "sd", "STATUS=loading the disk", "sleep", "300", "sd", "STATUS=almost\nREADY=1", "pause", log: nil)
    let statuses = Recorder<String>()
    let confirmed = try await spawner.spawn(command, readiness: .systemdNotify(), record: nil) { progress in
      if let status = progress.status { statuses.append(status) }
      return false
    }
    #expect(confirmed.value == "READY=1")
    #expect(statuses.values.contains("loading the disk"))
    _ = try await spawner.stop(confirmed.identity)
  }

  @Test func systemdNotifyOnAPathSocket() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let socket = directory.appending("notify")
    let confirmed = try await spawner.spawn(
      Fixture.command("sd", "READY=1", "pause", log: nil), readiness: .systemdNotify(socketPath: socket))
    #expect(confirmed.value == "READY=1")
    #expect(access(socket, F_OK) != 0)  // removed when the spawn ended
    _ = try await spawner.stop(confirmed.identity)
  }

  @Test func systemdNotifyErrnoIsAFailure() async throws {
    let command = Fixture.command("sd", "STATUS=opening\nERRNO=2", "pause", log: nil)
    let error = await spawnError { _ = try await spawner.spawn(command, readiness: .systemdNotify()) }
    let failure = try #require(error)
    #expect(failure.code == .protocolFailed)
    #expect(failure.errno == .ENOENT)
    #expect(failure.detail == "it reported ERRNO=2 (ENOENT: No such file or directory)")
  }

  // READY=1 comes 7 s after the start, past the 6 s timeout (6 s: the fixture's own startup
  // must fit in it under the ASan pass's load).
  @Test func systemdNotifyExtendTimeoutMovesTheDeadline() async throws {
    let command = Fixture.command(
      "sd", "EXTEND_TIMEOUT_USEC=20000000", "sleep", "7000", "sd", "READY=1", "pause", log: nil,
      timeout: .seconds(6))
    let confirmed = try await spawner.spawn(command, readiness: .systemdNotify())
    #expect(confirmed.value == "READY=1")
    _ = try await spawner.stop(confirmed.identity)
  }

  @Test func withoutExtensionTheSameDaemonTimesOut() async throws {
    let command = Fixture.command("sleep", "7000", "sd", "READY=1", "pause", log: nil, timeout: .seconds(6))
    let error = await spawnError { _ = try await spawner.spawn(command, readiness: .systemdNotify()) }
    #expect(error?.code == .timedOut)
    #expect(error?.detail == "READY=1 on NOTIFY_SOCKET")
  }

  @Test func checkClosureConfirmsWithItsValue() async throws {
    let confirmed = try await spawner.spawn(
      Fixture.command("pause", log: nil),
      readiness: .check(awaiting: "the pid") { @Sendable context in "checked \(context.pid)" })
    #expect(confirmed.value == "checked \(confirmed.pid)")
    _ = try await spawner.stop(confirmed.identity)
  }

  @Test func checkClosureErrorIsAProtocolFailureNamingIt() async throws {
    struct NotThere: Error, CustomStringConvertible { var description: String { "the node is missing" } }
    let error = await spawnError {
      _ = try await spawner.spawn(
        Fixture.command("pause", log: nil), readiness: .check(awaiting: "a node") { @Sendable _ in throw NotThere() })
    }
    #expect(error?.code == .protocolFailed)
    #expect(error?.detail == "the node is missing")
  }

  @Test func valuesUntilOneMatches() async throws {
    // The shape of the xenstore-watch source: an AsyncSequence of values until one matches.
    let (values, continuation) = AsyncStream.makeStream(of: String.self)
    let source = CheckReadiness(awaiting: "state = running") { context in
      for await value in values {
        if value == "running" { return value }
        context.report(status: value)
      }
      throw SpawnError(.protocolFailed, what: context.what, detail: "the watch ended")
    }
    let daemon = try await spawner.start(Fixture.command("pause", log: nil), readiness: source)
    continuation.yield("initialising")
    continuation.yield("running")
    let confirmed = try await daemon.confirm()
    #expect(confirmed.value == "running")
    _ = try await spawner.stop(confirmed.identity)
  }

  @Test func afterDetachTheDaemonIsNoLongerOurChildAndTheMonitorIsReaped() async throws {
    // It confirms 1.5 s in, so that it is still the monitor's child when first looked at.
    let daemon = try await spawner.start(
      Fixture.command("sleep", "1500", "notify", "3", "up", "pause", log: nil), readiness: .notificationPipe())
    #expect(parentPID(daemon.pid) == daemon.monitorPID)
    let confirmed = try await daemon.confirm()
    #expect(isRunning(confirmed.identity))
    #expect(parentPID(confirmed.pid) != getpid())
    #expect(parentPID(confirmed.pid) != daemon.monitorPID)
    // The monitor is gone and reaped: not our child any more, not a zombie.
    var info = siginfo_t()
    #expect(waitid(P_PID, id_t(daemon.monitorPID), &info, WEXITED | WNOHANG) == -1 && errno == ECHILD)
    // Other suites run in parallel and may have a child between its exit and its reap: only ours count.
    #expect(!zombieChildren().contains(daemon.monitorPID))
    // Its own session, apart from ours.
    #expect(getsid(confirmed.pid) == confirmed.pid)
    _ = try await spawner.stop(confirmed.identity)
  }

  @Test func theDaemonGetsStdioAndThePassedDescriptorOnly() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let log = directory.appending("log")
    // The shell lists its own descriptors (the fixture's runtime opens some of its own).
    let command = SpawnCommand(
      what: "shell", executable: "/bin/sh", arguments: ["-c", "ls /proc/$$/fd; echo >&3; exec sleep 100"], logPath: log)
    let confirmed = try await spawner.spawn(command, readiness: .notificationPipe())
    #expect(readFile(log) == "0\n1\n2\n3\n")
    _ = try await spawner.stop(confirmed.identity)
  }

  @Test func recordHookRunsWithTheIdentityBeforeStartReturns() async throws {
    let recorded = Recorder<ProcessIdentity>()
    let daemon = try await spawner.start(Fixture.command("pause", log: nil), readiness: .notificationPipe()) {
      recorded.append($0)
    }
    #expect(recorded.values == [daemon.identity])
    #expect(try ProcessIdentity.of(pid: daemon.pid) == daemon.identity)
    #expect(parentPID(daemon.pid) == daemon.monitorPID)
    _ = await spawnError { _ = try await daemon.confirm { _ in true } }
  }

  @Test func failingRecordHookStopsTheDaemon() async throws {
    struct Full: Error, CustomStringConvertible { var description: String { "xenstore quota exceeded" } }
    let recorded = Recorder<ProcessIdentity>()
    let error = await spawnError {
      _ = try await spawner.start(Fixture.command("pause", log: nil), readiness: .notificationPipe()) {
        recorded.append($0)
        throw Full()
      }
    }
    let failure = try #require(error)
    #expect(failure.code == .recordFailed)
    #expect(failure.description == "fixture [\(failure.pid!)] could not be recorded: xenstore quota exceeded; it was stopped")
    let identity = try #require(recorded.values.first)
    #expect(!isRunning(identity))
  }

  @Test func aDaemonConfirmedWhileRecordingStaysAttachedUntilRecorded() async throws {
    let parents = Recorder<Int32>()
    let daemon = try await spawner.start(Fixture.command("notify", "3", "at once", "pause", log: nil), readiness: .notificationPipe()) {
      try await Task.sleep(for: .milliseconds(200))  // long after the line was written
      parents.append(parentPID($0.pid) ?? 0)
    }
    #expect(parents.values == [daemon.monitorPID])
    let confirmed = try await daemon.confirm()
    #expect(confirmed.value == "at once")
    #expect(parentPID(confirmed.pid) != daemon.monitorPID)
    _ = try await spawner.stop(confirmed.identity)
  }

  @Test func aDaemonConfirmedButNotRecordedIsStopped() async throws {
    struct Lost: Error {}
    let recorded = Recorder<ProcessIdentity>()
    let error = await spawnError {
      _ = try await spawner.start(Fixture.command("notify", "3", "at once", "pause", log: nil), readiness: .notificationPipe()) {
        recorded.append($0)
        try await Task.sleep(for: .milliseconds(200))
        throw Lost()
      }
    }
    #expect(error?.code == .recordFailed)
    let identity = try #require(recorded.values.first)
    #expect(!isRunning(identity))
  }

  @Test func anUnlimitedTimeoutDoesNotFireAtOnce() async throws {
    let command = Fixture.command("sleep", "50", "notify", "3", "late", "pause", log: nil, timeout: .seconds(Int64.max))
    let confirmed = try await spawner.spawn(command, readiness: .notificationPipe())
    #expect(confirmed.value == "late")
    _ = try await spawner.stop(confirmed.identity)
  }

  @Test func logTailIsThisSpawnsLastKibibyteFromALineStart() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let log = directory.appending("log")
    writeFile(log, "old\n")
    var steps: [String] = []
    for i in 0..<100 { steps += ["say", "line \(i) " + String(repeating: "x", count: 20)] }
    var command = Fixture.command(log: log)
    command.arguments = steps + ["exit", "3"]
    let error = await spawnError { _ = try await spawner.spawn(command, readiness: .notificationPipe()) }
    let tail = try #require(error?.logTail)
    #expect(tail.utf8.count <= 1024)
    #expect(tail.hasPrefix("line "))
    #expect(tail.hasSuffix("line 99 " + String(repeating: "x", count: 20)))
    #expect(!tail.contains("old"))
  }
}

final class Recorder<T: Sendable>: @unchecked Sendable {
  private var items: [T] = []
  private let lock = NSLockLite()
  func append(_ item: T) { lock.locked { items.append(item) } }
  var values: [T] { lock.locked { items } }
}
