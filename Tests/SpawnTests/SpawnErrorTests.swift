@testable import Spawn
import Testing

/// The exact messages users see.
struct SpawnErrorTests {
  let tail = "qemu-system-x86_64: -bogus: invalid option"

  @Test func messages() {
    let cases: [(SpawnError, String)] = [
      (SpawnError(.spawnFailed, what: "device model", elapsed: .microseconds(300), errno: .EAGAIN, detail: "fork"),
       "device model could not be spawned: fork failed: Resource temporarily unavailable (EAGAIN)"),
      (SpawnError(.execFailed, what: "device model", pid: 1234, elapsed: .milliseconds(2), errno: .ENOENT, detail: "/usr/bin/qemu"),
       "device model [1234] could not execute /usr/bin/qemu: No such file or directory (ENOENT)"),
      (SpawnError(.exited, what: "device model", pid: 1234, elapsed: .milliseconds(23), status: WaitStatus(rawValue: 1 << 8), logTail: tail),
       "device model [1234] exited with status 1 during startup after 23 ms: \(tail)"),
      (SpawnError(.exitedZero, what: "device model", pid: 1234, elapsed: .milliseconds(23), status: WaitStatus(rawValue: 0)),
       "device model [1234] exited with status 0 before confirming startup after 23 ms"),
      (SpawnError(.killedBySignal, what: "device model", pid: 1234, elapsed: .milliseconds(1500), status: WaitStatus(rawValue: 11 | 0x80)),
       "device model [1234] was killed by signal SIGSEGV (core dumped) during startup after 1.5 s"),
      (SpawnError(.timedOut, what: "device model", pid: 1234, elapsed: .seconds(60), detail: "QMP on /run/xen/qmp-libxl-3"),
       "device model [1234] did not confirm startup within 60 s (awaiting QMP on /run/xen/qmp-libxl-3); it was stopped"),
      (SpawnError(.aborted, what: "device model", pid: 1234, elapsed: .milliseconds(120), detail: "the task was cancelled"),
       "device model [1234] startup was aborted after 120 ms (the task was cancelled); it was stopped"),
      (SpawnError(.protocolFailed, what: "device model", pid: 1234, elapsed: .milliseconds(40), detail: "QMP: expected the QMP greeting, received {}"),
       "device model [1234] startup confirmation failed after 40 ms: QMP: expected the QMP greeting, received {}; it was stopped"),
      (SpawnError(.recordFailed, what: "device model", pid: 1234, detail: "xenstore write failed"),
       "device model [1234] could not be recorded: xenstore write failed; it was stopped"),
      (SpawnError(.monitorFailed, what: "device model", pid: 1234, elapsed: .milliseconds(5), status: WaitStatus(rawValue: 9)),
       "device model [1234] startup monitor was killed by signal SIGKILL unexpectedly after 5 ms; the daemon was killed"),
      (SpawnError(.stopFailed, what: "device model", pid: 1234, errno: .EPERM, detail: "pidfd_send_signal(SIGTERM)"),
       "device model [1234] could not be stopped: pidfd_send_signal(SIGTERM): Operation not permitted (EPERM)"),
      (SpawnError(.invalidCommand, what: "device model", detail: "descriptor 1 cannot be passed (0-2 are stdio)"),
       "device model: invalid spawn command: descriptor 1 cannot be passed (0-2 are stdio)"),
    ]
    for (error, message) in cases { #expect(error.description == message) }
  }

  @Test func elapsedFormatting() {
    func message(_ elapsed: Duration) -> String {
      SpawnError(.aborted, what: "d", pid: 1, elapsed: elapsed, detail: "x").description
    }
    #expect(message(.microseconds(40)).contains("after 40 µs"))
    #expect(message(.microseconds(450)).contains("after 450 µs"))
    #expect(message(.microseconds(999)).contains("after 999 µs"))
    #expect(message(.nanoseconds(999_600)).contains("after 1 ms"))
    #expect(message(.milliseconds(999)).contains("after 999 ms"))
    #expect(message(.seconds(10)).contains("after 10 s"))
    #expect(message(.milliseconds(10_250)).contains("after 10.3 s"))
  }

  @Test func waitStatusDescriptions() {
    #expect(WaitStatus(rawValue: 3 << 8).description == "exited with status 3")
    #expect(WaitStatus(rawValue: 15).description == "was killed by signal SIGTERM")
    #expect(WaitStatus(rawValue: 6 | 0x80).description == "was killed by signal SIGABRT (core dumped)")
    #expect(Signal(rawValue: 64).description == "signal 64" || Signal(rawValue: 64).description.hasPrefix("SIG"))
    #expect(SystemErrno.ENOSYS.description == "Function not implemented (ENOSYS)")
  }
}

/// What a daemon inherits.
struct EnvironmentTests {
  @Test func theCallersNotifySocketIsNotInherited() {
    let inherited = LaunchPlan.inheritedEnvironment(["NOTIFY_SOCKET": "/run/systemd/notify", "PATH": "/usr/bin", "HOME": "/root"])
    #expect(inherited == ["PATH": "/usr/bin", "HOME": "/root"])
  }
}
