#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import TestSupport

/// Safe stop: signal only the recorded process, through a pidfd checked against its identity.
@Suite(.serialized) struct SafeStopTests {
  let spawner = Spawner()

  func running(_ steps: String...) async throws -> ProcessIdentity {
    var command = Fixture.command(log: nil)
    command.arguments = steps
    return try await spawner.spawn(command, readiness: .notificationPipe()).identity
  }

  @Test func stopsWithSIGTERM() async throws {
    let identity = try await running("notify", "3", "", "pause")
    #expect(try await spawner.stop(identity, grace: .seconds(10)) == .terminated)
    #expect(!isRunning(identity))
  }

  @Test func escalatesToSIGKILLAfterTheGrace() async throws {
    let identity = try await running("ignore-term", "notify", "3", "", "pause")
    #expect(try await spawner.stop(identity, grace: .milliseconds(200)) == .killed)
    #expect(!isRunning(identity))
  }

  @Test func aWrongStartTimeIsAnotherProcessAndIsLeftAlone() async throws {
    let identity = try await running("notify", "3", "", "pause")
    var reused = identity
    reused.startTime -= 1
    #expect(try await spawner.stop(reused) == .alreadyExited)
    #expect(isRunning(identity))
    #expect(try await spawner.stop(identity) == .terminated)
  }

  @Test func anotherBootIsLeftAlone() async throws {
    let identity = try await running("notify", "3", "", "pause")
    var otherBoot = identity
    otherBoot.bootID = "00000000-0000-0000-0000-000000000000"
    #expect(try await spawner.stop(otherBoot) == .alreadyExited)
    #expect(isRunning(identity))
    _ = try await spawner.stop(identity)
  }

  @Test func aPidNobodyHasIsAlreadyExited() async throws {
    let identity = try await running("notify", "3", "", "pause")
    _ = try await spawner.stop(identity)
    #expect(await eventually { (try? ProcessIdentity.of(pid: identity.pid)) == nil })  // init reaped it
    #expect(try await spawner.stop(identity) == .alreadyExited)
  }

  @Test func anExitedUnreapedProcessIsAlreadyExited() async throws {
    // The daemon exits on its own; until init reaps it, it is a zombie with the same identity.
    // 8 s between confirming and exiting, so a loaded machine (the ASan pass, whose tests can
    // hold the cooperative pool for seconds) still confirms first; 3 s fell short once.
    let identity = try await running("notify", "3", "", "sleep", "8000", "exit", "0")
    // Gone, or a zombie with no thread left: an exiting process passes through other states
    // first (D; t while LeakSanitizer's exit-time check stops it under `--sanitize=address`),
    // and its leader shows Z while other threads still exit (its pidfd is not readable yet).
    #expect(await eventually(within: 25) { processState(identity.pid) == nil || isExitedThreadGroup(identity.pid) })
    #expect(try await spawner.stop(identity) == .alreadyExited)
  }

  /// Inside a fresh pid namespace the fixture forces the kernel to give a stopped process's pid
  /// to a new one, then stops the old identity: nothing is signalled, the new one lives.
  @Test func aReusedPidInANewPidNamespaceIsLeftAlive() async throws {
    let command = SpawnCommand(
      what: "pid reuse check", executable: "/usr/bin/unshare",
      arguments: ["--pid", "--fork", "--kill-child", "--mount-proc", Fixture.path, "reuse-pid", "pause"], timeout: .seconds(30))
    // It pauses after reporting, so its exit cannot race the confirmation.
    let confirmed = try await spawner.spawn(command, readiness: .notificationPipe())
    #expect(confirmed.value == "alreadyExited reused=yes alive=yes")
    _ = try await spawner.stop(confirmed.identity, grace: .seconds(5))
  }

  @Test func identityStringRoundTrips() throws {
    let identity = ProcessIdentity(pid: 1234, startTime: 567_890, bootID: "3f2a8c1e-0d4b-4c7a-9e21-5b6f7a8d9c0e")
    #expect(identity.description == "1234:567890:3f2a8c1e-0d4b-4c7a-9e21-5b6f7a8d9c0e")
    #expect(ProcessIdentity(identity.description) == identity)
    for bad in ["", "1234", "1234:5", "x:5:boot", "0:5:boot", "-1:5:boot", "12:-5:boot", "12:5:", "12:5:a b", "12:5:a:b"] {
      #expect(ProcessIdentity(bad) == nil, "\(bad)")
    }
  }

  @Test func identityOfALiveProcessMatchesProc() throws {
    let me = try ProcessIdentity.of(pid: getpid())
    #expect(me.pid == getpid())
    #expect(me.startTime > 0)
    #expect(me.bootID == readFile("/proc/sys/kernel/random/boot_id")?.split(separator: "\n").first.map(String.init))
    #expect(throws: SystemErrno.ENOENT) { try ProcessIdentity.of(pid: 0x3fff_fff0) }
  }
}

/// A zombie whose other threads are all released: `Threads: 1` in /proc/<pid>/status, so its
/// pidfd is readable (the kernel's `thread_group_exited`).
private func isExitedThreadGroup(_ pid: Int32) -> Bool {
  guard processState(pid) == "Z", let status = readFile("/proc/\(pid)/status") else { return false }
  return status.split(separator: "\n").contains("Threads:\t1")
}
