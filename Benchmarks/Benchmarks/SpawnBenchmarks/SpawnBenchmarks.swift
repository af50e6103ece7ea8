import Benchmark
import Foundation
import Spawn

/// The fixture daemon, built by scripts/bench.sh (`swift build -c release --product spawn-fixture`).
let fixture = ProcessInfo.processInfo.environment["SPAWN_FIXTURE"] ?? "../.build/release/spawn-fixture"

let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput], maxDuration: .seconds(5))

  // The floor: the same binary started and waited for with posix_spawn + waitpid.
  Benchmark("bare fork+exec+wait of the fixture") { benchmark in
    for _ in benchmark.scaledIterations {
      var pid: pid_t = 0
      let argv: [UnsafeMutablePointer<CChar>?] = [strdup(fixture), strdup("exit"), strdup("0"), nil]
      defer { argv.forEach { free($0) } }
      guard posix_spawn(&pid, fixture, nil, nil, argv, environ) == 0 else { fatalError("posix_spawn \(fixture)") }
      var status: Int32 = 0
      waitpid(pid, &status, 0)
    }
  }

  // The whole confirmed spawn of a daemon that confirms at once (a newline on fd 3):
  // monitor, daemon, readiness, detach. Stopping it afterwards is not measured.
  Benchmark("spawn + confirm (notify fd) + detach") { benchmark in
    let spawner = Spawner()
    for _ in benchmark.scaledIterations {
      benchmark.startMeasurement()
      let confirmed = try await spawner.spawn(
        SpawnCommand(what: "fixture", executable: fixture, arguments: ["notify", "3", "ready", "pause"]),
        readiness: .notificationPipe(descriptor: 3))
      benchmark.stopMeasurement()
      _ = try await spawner.stop(confirmed.identity, what: "fixture", grace: .seconds(1))
    }
  }

  // An early failure: from the spawn to the error when the daemon exits at once.
  Benchmark("spawn of a daemon that exits 1 at once: time to the error") { benchmark in
    let spawner = Spawner()
    for _ in benchmark.scaledIterations {
      do {
        _ = try await spawner.spawn(
          SpawnCommand(what: "fixture", executable: fixture, arguments: ["exit", "1"]),
          readiness: .notificationPipe(descriptor: 3))
        fatalError("confirmed a daemon that exits")
      } catch {
        blackHole(error)
      }
    }
  }
}
