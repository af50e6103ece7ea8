#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import TestSupport

/// Many spawns: no descriptor leaks, no zombies, every outcome the right one.
@Suite(.serialized) struct StressTests {
  let spawner = Spawner()

  func shell(_ script: String, timeout: Duration = .seconds(30)) -> SpawnCommand {
    SpawnCommand(what: "shell", executable: "/bin/sh", arguments: ["-c", script], timeout: timeout)
  }

  /// In a process of its own (the fixture's `workload`), so other tests' descriptors and
  /// children do not count: 1,000 spawns in a row and 100 at once, of five outcomes each.
  @Test func aThousandSpawnsLeaveTheDescriptorCountUnchangedAndNoZombies() async throws {
    let confirmed = try await spawner.spawn(
      Fixture.command("workload", "1000", "100", log: nil, timeout: .seconds(600)), readiness: .notificationPipe())
    #expect(confirmed.value.hasPrefix("aborted=220 confirmed=220 exec-failed=220 exited=220 timed-out=220; fds "))
    let fds = confirmed.value.split(separator: ";")[1].split(separator: " ")
    #expect(fds.count == 4 && fds[1] == fds[3], "\(confirmed.value)")
    #expect(confirmed.value.hasSuffix("; zombies 0"))
    _ = try await spawner.stop(confirmed.identity)
  }

  @Test func aHundredConcurrentSpawnsAllResolveCorrectly() async throws {
    let results = await withTaskGroup(of: (Int, String).self) { group in
      for i in 0..<100 {
        group.addTask {
          do throws(SpawnError) {
            switch i % 4 {
            case 0:
              let confirmed = try await spawner.spawn(shell("echo ready \(i) >&3; exec sleep 30"), readiness: .notificationPipe())
              _ = try await spawner.stop(confirmed.identity)
              return (i, confirmed.value)
            case 1:
              _ = try await spawner.spawn(shell("exit \(i)"), readiness: .notificationPipe())
              return (i, "confirmed?")
            case 2:
              let confirmed = try await spawner.spawn(
                shell("exec \(Fixture.path) sd READY=1 pause"), readiness: .systemdNotify())
              _ = try await spawner.stop(confirmed.identity)
              return (i, "sd \(confirmed.value)")
            default:
              _ = try await spawner.spawn(shell("kill -SEGV $$"), readiness: .notificationPipe())
              return (i, "confirmed?")
            }
          } catch {
            return (i, "\(error.code) \(error.status?.description ?? "")")
          }
        }
      }
      var results: [Int: String] = [:]
      for await (i, result) in group { results[i] = result }
      return results
    }
    #expect(results.count == 100)
    for i in 0..<100 {
      let expected = switch i % 4 {
      case 0: "ready \(i)"
      case 1: "exited exited with status \(i)"
      case 2: "sd READY=1"
      default: "killed-by-signal was killed by signal SIGSEGV"
      }
      #expect(results[i] == expected, "spawn \(i)")
    }
  }
}
