import Benchmark
import Foundation
import XenStore
import XenStoreDaemon

let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(
    metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(3))

  // The codec on the daemon's hot path: one WRITE request decoded from a stream split
  // as libxenstore sends it (header, path, value in separate writes), and its reply encoded.
  Benchmark("codec: decode split WRITE + encode reply") { benchmark in
    let request = Message(type: .write, requestID: 7, payload: Array("/local/domain/1/name\0guest".utf8)).encoded()
    var decoder = MessageDecoder()
    for _ in benchmark.scaledIterations {
      decoder.append(request[0..<16])
      decoder.append(request[16..<37])
      decoder.append(request[37...])
      let message = try decoder.next()!
      blackHole(Message.ok(to: message).encoded())
    }
  }

  // The store alone: WRITE then READ of one node, no sockets.
  Benchmark("engine: WRITE + READ") { benchmark in
    let engine = XenStoreEngine()
    let connection = engine.connect(domain: 0)
    nonisolated(unsafe) var replies = 0
    engine.output = { _ in replies += 1 }
    let write = Message(type: .write, payload: Array("/bench/a\0value".utf8))
    let read = Message(type: .read, payload: Array("/bench/a\0".utf8))
    for _ in benchmark.scaledIterations {
      engine.handle(write, from: connection)
      engine.handle(read, from: connection)
    }
    blackHole(replies)
  }

  // One client's round trip through the socket server: the daemon's per-request latency
  // as Xen's clients see it (WRITE then READ, each awaited). `mode`: from a task of the
  // cooperative pool (each request hops to the client's loop and back), on the client's loop
  // executor (no hop), or 100 WRITEs pipelined per iteration.
  for mode in ["pool task", "loop executor", "pipelined x100"] {
    Benchmark("socket round trip: client WRITE + READ, \(mode)", configuration: .init(metrics: [.wallClock, .throughput])) { benchmark in
      let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xsbench-\(getpid())").path
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
      let server = XenstoredServer(XenstoredConfiguration(socketPath: directory + "/socket"))
      try server.start()
      let client = try await XenStoreClient.connect(to: directory + "/socket")
      let batch = (0..<100).map { XenStoreRequest.write("/bench/rt/\($0)", "value") }
      benchmark.startMeasurement()
      switch mode {
      case "pool task":
        for _ in benchmark.scaledIterations {
          try await client.write("/bench/rt", "value")
          blackHole(try await client.read("/bench/rt"))
        }
      case "loop executor":
        try await client.withLoopExecutor {
          for _ in benchmark.scaledIterations {
            try await client.write("/bench/rt", "value")
            blackHole(try await client.read("/bench/rt"))
          }
        }
      default:
        for _ in benchmark.scaledIterations { blackHole(try await client.pipeline(batch)) }
      }
      benchmark.stopMeasurement()
      client.close()
      server.stop()
      try? FileManager.default.removeItem(atPath: directory)
    }
  }

  // 100,000 nodes in the store: the memory they cost.
  Benchmark("engine: 100k nodes", configuration: .init(metrics: [.peakMemoryResident, .wallClock], maxIterations: 1)) { benchmark in
    let engine = XenStoreEngine()
    let connection = engine.connect(domain: 0)
    engine.output = { _ in }
    for i in 0..<100_000 {
      engine.handle(Message(type: .write, strings: ["/bench/nodes/\(i / 1000)/\(i % 1000)"]).withValue("0123456789abcdef"), from: connection)
    }
    blackHole(engine.nodeCount)
  }
}

extension Message {
  /// WRITE's payload: the path's NUL, then the value without one.
  func withValue(_ value: String) -> Message {
    var copy = self
    copy.payload.append(contentsOf: value.utf8)
    return copy
  }
}
