import Spawn
import Testing
import TestSupport

// The code of Sources/Spawn/Spawn.docc, compiled here so that it cannot rot: each region
// between `// doc-snippet:` and `// end-doc-snippet` is a code block of the article, word for
// word (scripts/check-doc-snippets.sh compares them).

// doc-snippet: spawn-and-confirm
/// Starts `/bin/sh` as a daemon that says it is ready with a line on descriptor 3, waits for
/// that line, and stops the daemon again by its recorded identity.
func spawnAndConfirm() async throws(SpawnError) -> String {
  let spawner = Spawner()
  let command = SpawnCommand(
    what: "example daemon",
    executable: "/bin/sh",
    arguments: ["-c", "echo listening on 7 >&3; exec sleep 60"],
    timeout: .seconds(60))

  // `start` returns once the pid is known and recorded; the daemon is not confirmed yet.
  let daemon = try await spawner.start(command, readiness: .notificationPipe(descriptor: 3))
  // `confirm` waits for the first of the line, the daemon's death, the timeout or a cancel.
  let confirmed = try await daemon.confirm()
  print("\(confirmed.what) [\(confirmed.pid)] confirmed in \(confirmed.elapsed): \(confirmed.value)")

  // Later, from this process or any other that kept the identity: a pidfd, checked against
  // the pid's start time and boot id, so that a reused pid is never signalled.
  _ = try await spawner.stop(confirmed.identity, what: command.what, grace: .seconds(2))
  return confirmed.value
}
// end-doc-snippet

// doc-snippet: spawn-qmp
/// Starts QEMU with a QMP socket and returns once QMP answers and `query-status` says the
/// machine is running (or paused, or in prelaunch); else throws the one error that says what
/// went wrong, with QEMU's last lines from its log, and QEMU is gone.
func startQEMU(qmpSocket: String, log: String) async throws(SpawnError) -> SpawnConfirmation {
  let command = SpawnCommand(
    what: "device model",
    executable: "qemu-system-x86_64",
    arguments: ["-machine", "none", "-nodefaults", "-display", "none",
                "-qmp", "unix:\(qmpSocket),server=on,wait=off"],
    logPath: log,
    timeout: .seconds(30))
  return try await Spawner().spawn(command, readiness: .qmp(socketPath: qmpSocket))
}
// end-doc-snippet

// doc-snippet: spawn-failure
/// A daemon that exits before it is ready: one error, saying what, how, and its last words.
func startThatFails(log: String) async -> SpawnError? {
  let command = SpawnCommand(
    what: "example daemon", executable: "/bin/sh",
    arguments: ["-c", "echo 'no config file' >&2; exit 2"],
    logPath: log)
  do {
    _ = try await Spawner().spawn(command, readiness: .notificationPipe())
    return nil
  } catch {
    // `example daemon [4242] exited with status 2 during startup after 3 ms: no config file`
    print(error)
    return error  // error.code == .exited, error.status?.exitCode == 2
  }
}
// end-doc-snippet

@Suite struct DocumentationExampleTests {
  @Test func spawnAndConfirmRuns() async throws {
    #expect(try await spawnAndConfirm() == "listening on 7")
  }

  @Test func aFailedStartIsReported() async throws {
    let directory = TemporaryDirectory("docs")
    defer { directory.remove() }
    let error = try #require(await startThatFails(log: directory.appending("log")))
    #expect(error.code == .exited)
    #expect(error.status?.exitCode == 2)
    #expect(error.description.contains("no config file"))
  }
}
