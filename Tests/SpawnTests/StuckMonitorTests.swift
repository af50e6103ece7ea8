#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import TestSupport

/// A startup monitor that stops answering (stopped here with SIGSTOP; a stuck one alike) must
/// not hold the outcome back for ever: once it is late (5 s after DETACH, 30 s after the stop
/// grace), it is killed.
@Suite struct StuckMonitorTests {
  let spawner = Spawner()

  @Test func aConfirmedDaemonIsLetGoWhenItsMonitorIsStopped() async throws {
    let daemon = try await spawner.start(
      Fixture.command("sleep", "300", "notify", "3", "ok", "pause", log: nil), readiness: .notificationPipe())
    #expect(kill(daemon.monitorPID, SIGSTOP) == 0)
    let confirmed = try await daemon.confirm()
    #expect(confirmed.value == "ok")
    #expect(processState(daemon.monitorPID) == nil, "the stopped monitor was killed and reaped")
    #expect(isRunning(confirmed.identity), "DETACH had been sent: the daemon lives on")
    #expect(try await spawner.stop(confirmed.identity) == .terminated)
  }

  @Test func aFailedSpawnStopsTheDaemonWhenItsMonitorIsStopped() async throws {
    let daemon = try await spawner.start(
      Fixture.command("pause", log: nil, stopGrace: .milliseconds(100)), readiness: .notificationPipe())
    #expect(kill(daemon.monitorPID, SIGSTOP) == 0)
    // Aborted at once: the stop goes to a monitor that cannot act on it.
    let error = await spawnError { _ = try await daemon.confirm { _ in true } }
    #expect(error?.code == .aborted)
    #expect(error?.status == nil, "the killed monitor's status is not the daemon's")
    #expect(processState(daemon.monitorPID) == nil, "the stopped monitor was killed and reaped")
    // Killed through its pidfd once its monitor was found stuck; init reaps it.
    #expect(await eventually { !isRunning(daemon.identity) })
  }
}
