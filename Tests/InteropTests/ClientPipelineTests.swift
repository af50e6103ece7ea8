import Testing
@testable import XenStore
import InteropSupport

/// Pipelined batches (`pipeline`, `pipelineResults`, `transaction(pipelining:)`) and the loop
/// executor, against a real daemon as the other client tests.
extension ClientTests {
  @Test func pipelineRepliesComeBackInOrder() async throws {
    try await withDaemon { _, xs in
      let replies = try await xs.pipeline([
        .write("/p/a", "1"), .read("/p/a"), .write("/p/a", "2"), .read("/p/a"),
        .mkdir("/p/b"), .read("/p/b"), .rm("/p/b"),
      ])
      #expect(replies.map { String(decoding: $0, as: UTF8.self) } == ["OK\0", "1", "OK\0", "2", "OK\0", "", "OK\0"])
      #expect(try await xs.exists("/p/b") == false)

      // Many in flight at once: every value lands, every reply is matched to its request.
      let count = 600
      try await xs.write((0..<count).map { (path: "/p/many/\($0)", value: "v\($0)") })
      let reads = try await xs.pipeline((0..<count).map { XenStoreRequest.read("/p/many/\($0)") })
      #expect(reads.map { String(decoding: $0, as: UTF8.self) } == (0..<count).map { "v\($0)" })
      #expect(try await xs.directory("/p/many").count == count)
    }
  }

  @Test func pipelineErrorNamesTheRequestThatFailed() async throws {
    try await withDaemon { _, xs in
      try await xs.write("/e/present", "x")
      let error = await #expect(throws: XenStoreBatchError.self) {
        try await xs.pipeline([.write("/e/a", "1"), .read("/e/missing"), .write("/e/c", "3"), .read("/e/present")])
      }
      #expect(error?.index == 1)
      #expect(error?.request == .read("/e/missing"))
      #expect(error?.error.code == .ENOENT)
      #expect(error?.description.contains("request 2 of 4 (read /e/missing)") == true)
      #expect(error?.results.count == 4)
      #expect((try? error?.results[0].get()) == Array("OK\0".utf8))
      #expect((try? error?.results[3].get()) == Array("x".utf8))
      // The daemon carried out the requests after the failed one.
      #expect(try await xs.read("/e/c") == "3")

      // A request refused before sending (over the size limit) fails alone with E2BIG.
      let results = try await xs.pipelineResults([
        .write("/e/big", String(repeating: "x", count: Message.payloadMax + 1)), .write("/e/small", "s"),
      ])
      #expect(throws: XenStoreError.self) { try results[0].get() }
      #expect((try? results[1].get()) != nil)
      if case .failure(let big) = results[0] { #expect(big.code == .E2BIG) }
    }
  }

  @Test func connectionLostMidBatchFailsEveryPendingRequest() async throws {
    try await withDaemon { _, xs in
      var oversized = XenStoreRequest.write("/l/big", String(repeating: "x", count: Message.payloadMax + 1))
      oversized.sendOversized = true  // the daemon drops a connection that sends this
      let batch: [XenStoreRequest] = [.write("/l/a", "1"), .write("/l/b", "2"), oversized, .write("/l/d", "4"), .read("/l/a")]
      let results = try await xs.pipelineResults(batch)
      #expect(results.count == batch.count)
      for (index, result) in results.enumerated() {
        switch result {
        case .success:
          #expect(index < 2, "request \(index) cannot have been answered")
        case .failure(let error):
          #expect(error.code == .connectionLost, "request \(index): \(error)")
        }
      }
      for index in 2..<batch.count {
        #expect(throws: XenStoreError.self) { try results[index].get() }
      }
      let thrown = await #expect(throws: XenStoreBatchError.self) { try await xs.pipeline([.read("/l/a")]) }
      #expect(thrown?.error.code == .connectionLost)
    }
  }

  @Test func frozenDaemonKilledFailsTheWholeBatch() async throws {
    try await withDaemon(asProcess: true) { daemon, xs in
      try await daemon.freeze()
      let batch = Task { try await xs.pipelineResults((0..<50).map { XenStoreRequest.write("/k/\($0)", "v") }) }
      try await waitUntilPending(50, on: xs)
      daemon.kill()
      let results = try await batch.value
      #expect(results.count == 50)
      #expect(results.allSatisfy { if case .failure(let e) = $0 { e.code == .connectionLost } else { false } })
    }
  }

  @Test func pipelinedTransactionCommitsAllOrNothing() async throws {
    try await withDaemon { _, xs in
      let replies = try await xs.transaction(pipelining: [.write("/t/a", "1"), .write("/t/b", "2"), .read("/t/a")])
      #expect(replies.last == Array("1".utf8))
      #expect(try await xs.read("/t/b") == "2")

      let error = await #expect(throws: XenStoreBatchError.self) {
        try await xs.transaction(pipelining: [.write("/t/c", "3"), .read("/t/none"), .write("/t/d", "4")])
      }
      #expect(error?.index == 1)
      #expect(try await xs.exists("/t/c") == false)
      #expect(try await xs.exists("/t/d") == false)

      // Inside a transaction body too: each request carries the transaction's id.
      try await xs.transaction { tx in try await tx.pipeline([.write("/t/e", "5"), .write("/t/f", "6")]) }
      #expect(try await xs.read("/t/f") == "6")
    }
  }

  @Test func loopExecutorRunsRequestsOnTheLoopThread() async throws {
    try await withDaemon { _, xs in
      let onLoop = try await xs.withLoopExecutor {
        var all = true
        for i in 0..<20 {
          try await xs.write("/x/\(i)", "\(i)")
          all = all && xs.loop.inLoop
          #expect(try await xs.read("/x/\(i)") == "\(i)")
          all = all && xs.loop.inLoop
        }
        return all
      }
      #expect(onLoop)
    }
  }
}
