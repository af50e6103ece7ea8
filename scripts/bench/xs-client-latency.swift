// The Swift client's round trip against a running xenstored, as xs-load.c measures the
// daemon's own: WRITE then READ of one node, one request in flight, p50/p99 per request.
// Built by compare-xenstored.sh from the release build's XenStore/Reactor objects.
//   xs-client-latency SOCKET N
#if canImport(Glibc)
import Glibc
#endif
import XenStore

func nowNanoseconds() -> UInt64 {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func report(_ label: String, _ samples: [UInt64]) {
  let sorted = samples.sorted()
  let p50 = Double(sorted[sorted.count / 2]) / 1000
  let p99 = Double(sorted[min(sorted.count - 1, sorted.count * 99 / 100)]) / 1000
  func oneDecimal(_ x: Double) -> String { String((x * 10).rounded() / 10) }
  print("\(label) p50=\(oneDecimal(p50))us p99=\(oneDecimal(p99))us")
}

@main struct Main {
  static func main() async throws {
    let args = CommandLine.arguments
    guard args.count >= 3, let n = Int(args[2]) else {
      fputs("usage: xs-client-latency SOCKET N\n", stderr)
      exit(1)
    }
    let client = try await XenStoreClient.connect(to: args[1])
    // Warm-up.
    for _ in 0..<200 { try await client.write("/bench/swift", "value"); _ = try await client.read("/bench/swift") }

    // A task of the cooperative pool, as most callers are: each request hops to the loop.
    var writes: [UInt64] = [], reads: [UInt64] = []
    for _ in 0..<n {
      let t0 = nowNanoseconds()
      try await client.write("/bench/swift", "value")
      let t1 = nowNanoseconds()
      _ = try await client.read("/bench/swift")
      writes.append(t1 - t0)
      reads.append(nowNanoseconds() - t1)
    }
    report("pool task: WRITE", writes)
    report("pool task: READ", reads)

    // The same on the client's loop executor: no thread hop per request.
    let pinned = try await client.withLoopExecutor { () async throws -> [[UInt64]] in
      var writes: [UInt64] = [], reads: [UInt64] = []
      for _ in 0..<n {
        let t0 = nowNanoseconds()
        try await client.write("/bench/swift", "value")
        let t1 = nowNanoseconds()
        _ = try await client.read("/bench/swift")
        writes.append(t1 - t0)
        reads.append(nowNanoseconds() - t1)
      }
      return [writes, reads]
    }
    report("loop executor: WRITE", pinned[0])
    report("loop executor: READ", pinned[1])

    // Pipelined: batches of 100 writes, time per write.
    var perWrite: [UInt64] = []
    let batch = (0..<100).map { XenStoreRequest.write("/bench/swift/\($0)", "value") }
    for _ in 0..<max(1, n / 100) {
      let t0 = nowNanoseconds()
      try await client.pipeline(batch)
      perWrite.append((nowNanoseconds() - t0) / 100)
    }
    report("pipelined 100 WRITEs: per WRITE", perWrite)
    client.close()
  }
}
