import Benchmark
import XenStore

let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(3))

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
}
