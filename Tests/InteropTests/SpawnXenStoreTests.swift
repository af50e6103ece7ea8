#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import InteropSupport
import TestSupport
import XenLight
import XenStore
import Synchronization

/// Confirmation by a xenstore watch: the daemon confirms with Debian's `xenstore-write`
/// against our xenstored, as QEMU writes `device-model/<domid>/state` under Xen.
@Suite(.serialized) struct SpawnXenStoreTests {
  let spawner = Spawner()
  let statePath = "/local/domain/0/device-model/5/state"

  /// A shell daemon that writes `steps` (value per line) to the state node, then stays.
  func daemon(_ values: [String], xenstored: XenstoredUnderTest, timeout: Duration = .seconds(30)) -> SpawnCommand {
    let writes = values.map { "/usr/bin/xenstore-write \(statePath) \($0)" }.joined(separator: "; ")
    return SpawnCommand(
      what: "device model", executable: "/bin/sh", arguments: ["-c", "sleep 0.1; \(writes); exec sleep 600"],
      environment: ["PATH": "/usr/bin:/bin", "XENSTORED_PATH": xenstored.socketPath], timeout: timeout)
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.xenstoreRead])))
  func confirmsWhenTheNodeReachesTheValue() async throws {
    let xenstored = try XenstoredUnderTest.start()
    defer { xenstored.stop() }
    let client = try await XenStoreClient.connect(to: xenstored.socketPath)
    defer { client.close() }
    let readiness = XenStoreReadiness(path: statePath, xenstore: client)
    let confirmed = try await spawner.spawn(daemon(["starting", "running"], xenstored: xenstored), readiness: readiness)
    #expect(confirmed.value == "\(statePath) = running")
    #expect(try await client.read(statePath) == "running")
    #expect(try await spawner.stop(confirmed.identity, grace: .seconds(5)) == .terminated)
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.xenstoreRead])))
  func otherValuesAreProgressAndNeverConfirm() async throws {
    let xenstored = try XenstoredUnderTest.start()
    defer { xenstored.stop() }
    let client = try await XenStoreClient.connect(to: xenstored.socketPath)
    defer { client.close() }
    let readiness = XenStoreReadiness(path: statePath, xenstore: client)
    let seen = StatusLog()
    let started = try await spawner.start(daemon(["starting"], xenstored: xenstored), readiness: readiness)
    // Aborted once "starting" is seen as progress: had it confirmed, confirm would return.
    // (No short timeout here: under the sanitizer pass the write can come late.)
    do {
      _ = try await started.confirm { progress in
        guard let status = progress.status else { return false }
        seen.add(status)
        return status == "\(statePath) = starting"
      }
      Issue.record("confirmed without the value")
    } catch {
      #expect(error.code == .aborted)
      #expect(error.detail == "aborted by the caller")
    }
    #expect(seen.values == ["\(statePath) = starting"])
    #expect((try? ProcessIdentity.of(pid: started.pid)) != started.identity)  // stopped and reaped
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.xenstoreRead])))
  func aDaemonDyingBeforeTheValueIsReportedAsItsExit() async throws {
    let xenstored = try XenstoredUnderTest.start()
    defer { xenstored.stop() }
    let client = try await XenStoreClient.connect(to: xenstored.socketPath)
    defer { client.close() }
    let command = SpawnCommand(
      what: "device model", executable: "/bin/sh", arguments: ["-c", "/usr/bin/xenstore-write \(statePath) starting; exit 3"],
      environment: ["PATH": "/usr/bin:/bin", "XENSTORED_PATH": xenstored.socketPath], timeout: .seconds(30))
    do {
      _ = try await spawner.spawn(command, readiness: XenStoreReadiness(path: statePath, xenstore: client))
      Issue.record("confirmed a daemon that exited")
    } catch {
      #expect(error.code == .exited)
      #expect(error.status?.exitCode == 3)
    }
  }
}

/// Progress statuses seen by an abort callback (called on the spawner's loop thread).
final class StatusLog: Sendable {
  private let storage = Mutex<[String]>([])
  func add(_ value: String) { storage.withLock { $0.append(value) } }
  var values: [String] { storage.withLock { $0 } }
}
