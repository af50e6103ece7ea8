import Testing
import Spawn
import XenStore
@testable import XenLight

/// A `XenLightError` keeps the library error it came from; the codes are closed sets.
struct XenLightErrorTests {
  @Test func deviceModelFailureKeepsItsSpawnError() throws {
    let spawn = SpawnError(
      .exited, what: "domain 3 device model", pid: 4242, elapsed: .milliseconds(23),
      status: WaitStatus(rawValue: 1 << 8), logTail: "qemu: -bogus: invalid option\n")
    let error = DomainCreator.describe(spawn, domain: "guest", log: "/var/log/qemu-guest.log", xenstoreLost: false)
    #expect(error.code == .deviceModelFailed)
    #expect(error.message == """
      domain "guest" not created: domain 3 device model [4242] exited with status 1 during startup after 23 ms: \
      qemu: -bogus: invalid option (log: /var/log/qemu-guest.log)
      """)
    let cause = try #require(error.cause?.spawnError)
    #expect(cause == spawn)
    #expect(cause.pid == 4242)
    #expect(cause.status?.exitCode == 1)
    #expect(cause.logTail == "qemu: -bogus: invalid option\n")
    guard case .spawn(let kept)? = error.cause else {
      Issue.record("no spawn cause: \(String(describing: error.cause))")
      return
    }
    #expect(kept.code == .exited)
  }

  @Test func timeoutAndExecFailureKeepTheirCause() throws {
    let timeout = SpawnError(.timedOut, what: "device model", pid: 7, elapsed: .seconds(10), detail: "QMP")
    let timedOut = DomainCreator.describe(timeout, domain: "g", log: "/l", xenstoreLost: false)
    #expect(timedOut.code == .timedOut)
    #expect(timedOut.cause?.spawnError?.code == .timedOut)
    #expect(timedOut.cause?.spawnError?.pid == 7)

    let exec = SpawnError(.execFailed, what: "device model", errno: .ENOENT, detail: "/no/qemu")
    let failed = DomainCreator.describe(exec, domain: "g", log: "/l", xenstoreLost: false)
    #expect(failed.errno == SystemErrno.ENOENT.rawValue)
    #expect(failed.cause?.spawnError?.errno == .ENOENT)
  }

  @Test func xenstoreFailureKeepsItsXenStoreError() throws {
    let missing = XenStoreError(.ENOENT, "read /local/domain/3/name: No such file or directory", errno: 2)
    let error = XenStoreConnector.failure("cannot read domain 3's records", missing)
    #expect(error.code == .xenstore)
    #expect(error.message == "cannot read domain 3's records: read /local/domain/3/name: No such file or directory (ENOENT)")
    let cause = try #require(error.cause?.xenStoreError)
    #expect(cause.code == .ENOENT)
    #expect(cause == missing)

    let lost = XenStoreError(.connectionLost, "connection to xenstored closed")
    let lostError = XenStoreConnector.failure("cannot write to xenstore", lost)
    #expect(lostError.code == .xenstoreLost)
    #expect(lostError.message == "cannot write to xenstore: connection to xenstored closed")
    #expect(lostError.cause == .xenstore(lost))
  }

  @Test func otherErrorsHaveNoCause() {
    struct Other: Error {}
    #expect(XenStoreConnector.failure("x", Other()).cause == nil)
    #expect(XenLightError(.io, "cannot read").cause == nil)
  }

  @Test func codesAreClosedSetsWithTheirNames() {
    // Exhaustive switches: these compile only while the sets are closed.
    func exhaustive(_ code: XenLightError.Code) -> Bool {
      switch code {
      case .syntax, .invalidConfig, .io, .xenstore, .xenstoreLost, .duplicateName, .notFound, .deviceModelFailed,
        .timedOut, .interrupted, .invalidState, .noParavirt, .monitorFailed, .guestFailed:
        true
      }
    }
    #expect(XenLightError.Code.allCases.allSatisfy(exhaustive))
    #expect(XenLightError.Code.deviceModelFailed.name == "device-model-failed")
    #expect(XenLightError.Code.xenstoreLost.description == "xenstore-lost")
    #expect(SpawnError.Code.killedBySignal.name == "killed-by-signal")
    #expect(SpawnError.Code.allCases.count == 12)
    #expect(XenStoreError.Code(name: "ENOENT") == .ENOENT)
    #expect(XenStoreError.Code(name: "EWHATEVER") == nil)
    #expect(XenStoreError.Code.wireNames.allSatisfy { XenStoreError.Code(name: $0) != nil })
    #expect(XenStoreError.Code.connectionLost.name == "connection-lost")
  }
}
