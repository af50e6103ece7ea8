#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import TestSupport

/// Each outcome of a spawn, from a real process.
@Suite(.serialized) struct SpawnOutcomeTests {
  let spawner = Spawner()

  @Test func missingBinaryIsExecFailedENOENT() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    var command = Fixture.command(log: directory.appending("log"))
    command.executable = directory.appending("no-such-daemon")
    let error = await spawnError { _ = try await spawner.spawn(command, readiness: .notificationPipe()) }
    let failure = try #require(error)
    #expect(failure.code == .execFailed)
    #expect(failure.errno == .ENOENT)
    #expect(failure.pid != nil)
    #expect(failure.description.hasPrefix("fixture [\(failure.pid!)] could not execute \(command.executable): No such file or directory (ENOENT)"))
  }

  /// `niceness` is the daemon's nice value from exec on; without it, the caller's.
  @Test func nicenessIsSetBeforeExec() async throws {
    var command = Fixture.command("notify", "3", "", "pause", log: nil)
    command.niceness = 7
    let niced = try await spawner.spawn(command, readiness: .notificationPipe())
    #expect(niceValue(niced.identity.pid) == 7)
    _ = try await spawner.stop(niced.identity)
    let plain = try await spawner.spawn(Fixture.command("notify", "3", "", "pause", log: nil), readiness: .notificationPipe())
    #expect(niceValue(plain.identity.pid) == niceValue(getpid()))
    _ = try await spawner.stop(plain.identity)
  }

  @Test func notExecutableIsExecFailedEACCES() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let script = directory.appending("plain-file")
    writeFile(script, "not a program\n")
    var command = Fixture.command(log: nil)
    command.executable = script
    let error = await spawnError { _ = try await spawner.spawn(command, readiness: .notificationPipe()) }
    #expect(error?.code == .execFailed)
    #expect(error?.errno == .EACCES)
  }

  @Test func printedErrorAndExitOneIsExitedWithTheLineInTheTail() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let log = directory.appending("log")
    writeFile(log, "an earlier spawn's line\n")
    let command = Fixture.command("say", "starting", "err", "fixture: bad configuration", "exit", "1", log: log)
    let error = await spawnError { _ = try await spawner.spawn(command, readiness: .notificationPipe()) }
    let failure = try #require(error)
    #expect(failure.code == .exited)
    #expect(failure.status?.exitCode == 1)
    #expect(failure.logTail == "starting\nfixture: bad configuration")
    let pid = try #require(failure.pid)
    #expect(failure.description.hasPrefix("fixture [\(pid)] exited with status 1 during startup after "))
    #expect(failure.description.hasSuffix(" ms: starting\nfixture: bad configuration"))
  }

  @Test func segfaultIsKilledBySignal() async throws {
    let command = Fixture.command("signal", "SEGV", log: nil)
    let error = await spawnError { _ = try await spawner.spawn(command, readiness: .notificationPipe()) }
    let failure = try #require(error)
    #expect(failure.code == .killedBySignal)
    #expect(failure.status?.signal == Signal(rawValue: SIGSEGV))
    #expect(failure.description.contains("] was killed by signal SIGSEGV"))
    #expect(failure.description.contains(" during startup after "))
  }

  @Test func exitZeroBeforeConfirmingIsExitedZero() async throws {
    let command = Fixture.command("exit", "0", log: nil)
    let error = await spawnError { _ = try await spawner.spawn(command, readiness: .notificationPipe()) }
    #expect(error?.code == .exitedZero)
    #expect(error?.description.contains("exited with status 0 before confirming startup after") == true)
  }

  @Test func neverConfirmingTimesOutAndIsGoneAfterwards() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let command = Fixture.command("say", "waiting for nothing", "pause", log: directory.appending("log"), timeout: .seconds(2))
    let daemon = try await spawner.start(command, readiness: .notificationPipe())
    let error = await spawnError { _ = try await daemon.confirm() }
    let failure = try #require(error)
    #expect(failure.code == .timedOut)
    #expect(failure.elapsed == .seconds(2))
    #expect(failure.description == "fixture [\(daemon.pid)] did not confirm startup within 2 s (awaiting a line on descriptor 3); it was stopped: waiting for nothing")
    #expect(!isRunning(daemon.identity))
    // Other suites run in parallel and may have a child between its exit and its reap: only ours count.
    #expect(!zombieChildren().contains(daemon.monitorPID))
  }

  @Test func stopEscalatesToSIGKILLForADaemonIgnoringSIGTERM() async throws {
    // 3 s: the fixture has set SIGTERM aside long before (200 ms fell short in the ASan pass).
    let command = Fixture.command("ignore-term", "pause", log: nil, timeout: .seconds(3), stopGrace: .milliseconds(100))
    let daemon = try await spawner.start(command, readiness: .notificationPipe())
    let error = await spawnError { _ = try await daemon.confirm() }
    #expect(error?.code == .timedOut)
    #expect(!isRunning(daemon.identity))
  }

  @Test func abortByCallbackStopsTheDaemon() async throws {
    let command = Fixture.command("pause", log: nil)
    let daemon = try await spawner.start(command, readiness: .notificationPipe())
    let calls = Counter()
    let error = await spawnError {
      _ = try await daemon.confirm { progress in
        #expect(progress.pid == daemon.pid)
        #expect(progress.awaiting == "a line on descriptor 3")
        return calls.increment() >= 3
      }
    }
    #expect(error?.code == .aborted)
    #expect(error?.detail == "aborted by the caller")
    #expect(calls.value == 3)
    #expect(!isRunning(daemon.identity))
  }

  @Test func abortByTaskCancellationStopsTheDaemon() async throws {
    let command = Fixture.command("pause", log: nil)
    let daemon = try await spawner.start(command, readiness: .notificationPipe())
    let task = Task { () async throws(SpawnError) -> SpawnConfirmation in try await daemon.confirm() }
    try await Task.sleep(for: .milliseconds(50))
    task.cancel()
    let error = await spawnError { _ = try await task.value }
    #expect(error?.code == .aborted)
    #expect(error?.detail == "the task was cancelled")
    #expect(!isRunning(daemon.identity))
  }

  @Test func droppingTheHandleUnconfirmedStopsTheDaemon() async throws {
    var daemon: SpawnedDaemon? = try await spawner.start(Fixture.command("pause", log: nil), readiness: .notificationPipe())
    let identity = try #require(daemon?.identity)
    #expect(isRunning(identity))
    daemon = nil
    #expect(await eventually { !isRunning(identity) })
  }

  @Test func deathBetweenStartAndConfirmIsReportedByConfirm() async throws {
    let daemon = try await spawner.start(Fixture.command("exit", "7", log: nil), readiness: .notificationPipe())
    #expect(await eventually { !isRunning(daemon.identity) })
    try await Task.sleep(for: .milliseconds(50))
    let error = await spawnError { _ = try await daemon.confirm() }
    #expect(error?.code == .exited)
    #expect(error?.status?.exitCode == 7)
  }
}

final class Counter: @unchecked Sendable {
  private var count = 0
  private let lock = NSLockLite()
  func increment() -> Int { lock.locked { count += 1; return count } }
  var value: Int { lock.locked { count } }
}

final class NSLockLite: @unchecked Sendable {
  private var mutex = pthread_mutex_t()
  init() { pthread_mutex_init(&mutex, nil) }
  deinit { pthread_mutex_destroy(&mutex) }
  func locked<T>(_ body: () -> T) -> T {
    pthread_mutex_lock(&mutex)
    defer { pthread_mutex_unlock(&mutex) }
    return body()
  }
}
