#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import TestSupport

/// A caller killed with SIGKILL in the middle of a startup leaves no unrecorded daemon.
@Suite(.serialized) struct CallerDeathTests {
  let spawner = Spawner()

  @Test func callerKilledMidStartupTakesTheDaemonWithIt() async throws {
    // The caller is a fixture that starts a never-confirming daemon with the Spawn library
    // and reports "<daemon pid> <monitor pid>".
    let caller = try await spawner.spawn(Fixture.command("caller", "pause", log: nil), readiness: .notificationPipe())
    let pids = caller.value.split(separator: " ").compactMap { Int32($0) }
    try #require(pids.count == 2)
    let daemon = try ProcessIdentity.of(pid: pids[0])
    let monitor = try ProcessIdentity.of(pid: pids[1])
    #expect(parentPID(daemon.pid) == pids[1])
    #expect(isRunning(daemon))

    #expect(kill(caller.pid, SIGKILL) == 0)
    #expect(await eventually { !isRunning(daemon) })
    #expect(await eventually { !isRunning(monitor) })
    #expect(await eventually { !isRunning(caller.identity) })
  }
}
