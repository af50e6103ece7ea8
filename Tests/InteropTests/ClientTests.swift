#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import XenStore
import Synchronization
import InteropSupport
import TestSupport

/// The async client against a real daemon (the project's xenstored; see `ClientTestDaemon` for
/// running them against Xen's C xenstored).
@Suite(.serialized) struct ClientTests {
  /// Runs `body` with a fresh daemon and a client connected to it; a hang fails after a minute.
  /// `asProcess`: the daemon runs as a child process the test may signal.
  func withDaemon(asProcess: Bool = false,
                  _ body: @escaping @Sendable (ClientTestDaemon, XenStoreClient) async throws -> Void) async throws {
    let daemon = try await ClientTestDaemon.start(asProcess: asProcess)
    defer { daemon.stop() }
    try await withTimeout(.seconds(60), "test body") {
      let client = try await XenStoreClient.connect(to: daemon.socketPath)
      defer { client.close() }
      try await body(daemon, client)
    }
  }

  @Test func nodeOperationsRoundTrip() async throws {
    try await withDaemon { _, xs in
      try await xs.write("/client/a/b", "hello")
      #expect(try await xs.read("/client/a/b") == "hello")
      #expect(try await xs.read("/client/a") == "")  // WRITE created the parent
      try await xs.write("/client/bin", bytes: [0, 1, 255, 10])
      #expect(try await xs.readBytes("/client/bin") == [0, 1, 255, 10])
      try await xs.mkdir("/client/dir")
      #expect(try await xs.read("/client/dir") == "")
      #expect(Set(try await xs.directory("/client")) == ["a", "bin", "dir"])
      #expect(try await xs.directory("/client/dir") == [])
      #expect(try await xs.exists("/client/a/b"))
      #expect(try await xs.exists("/client/missing") == false)
      try await xs.rm("/client/a")
      #expect(try await xs.exists("/client/a/b") == false)
      try await xs.rm("/client/a")  // a missing node under an existing parent is fine
    }
  }

  @Test func relativePathsResolveToDom0Home() async throws {
    try await withDaemon { _, xs in
      try await xs.write("relative/x", "1")
      #expect(try await xs.read("/local/domain/0/relative/x") == "1")
    }
  }

  @Test func errorsCarryTheWireErrnoAndThePath() async throws {
    try await withDaemon { _, xs in
      let missing = await #expect(throws: XenStoreError.self) { try await xs.read("/no/such/node") }
      #expect(missing?.code == .ENOENT)
      #expect(missing?.errno == ENOENT)
      #expect(missing?.message == "read /no/such/node: No such file or directory")

      let invalid = await #expect(throws: XenStoreError.self) { try await xs.write("/bad//path", "x") }
      #expect(invalid?.code == .EINVAL)

      let removeMissingParent = await #expect(throws: XenStoreError.self) { try await xs.rm("/no/such/node") }
      #expect(removeMissingParent?.code == .ENOENT)
      // The connection carries on.
      try await xs.write("/after", "ok")
      #expect(try await xs.read("/after") == "ok")
    }
  }

  @Test func oversizedRequestIsRefusedBeforeSending() async throws {
    try await withDaemon { _, xs in
      let huge = [UInt8](repeating: UInt8(ascii: "v"), count: Message.payloadMax)
      let error = await #expect(throws: XenStoreError.self) { try await xs.write("/big", bytes: huge) }
      #expect(error?.code == .E2BIG)
      #expect(error?.errno == E2BIG)
      // Nothing was sent: the daemon did not drop us.
      try await xs.write("/big", bytes: Array(huge.prefix(4000)))
      #expect(try await xs.readBytes("/big").count == 4000)
    }
  }

  @Test func permissionsRoundTrip() async throws {
    try await withDaemon { _, xs in
      try await xs.write("/perm/node", "v")
      #expect(try await xs.getPermissions("/perm/node").description == "n0")
      try await xs.introduce(domain: 5, gfn: 0x1005, eventChannel: 1)  // an owner must exist
      let wanted = Permissions(owner: 5, defaultAccess: .read, grants: [Permission(domain: 7, access: .both)])
      try await xs.setPermissions("/perm/node", wanted)
      #expect(try await xs.getPermissions("/perm/node") == wanted)
      let error = await #expect(throws: XenStoreError.self) { try await xs.getPermissions("/perm/missing") }
      #expect(error?.code == .ENOENT)
    }
  }

  @Test func hundredConcurrentTasksGetTheirOwnReplies() async throws {
    try await withDaemon { _, xs in
      try await withThrowingTaskGroup(of: Void.self) { group in
        for i in 0..<100 {
          group.addTask {
            let path = "/concurrent/\(i)"
            try await xs.write(path, "value-\(i)")
            for _ in 0..<5 { #expect(try await xs.read(path) == "value-\(i)") }
            let missing = await #expect(throws: XenStoreError.self) { try await xs.read("\(path)/missing") }
            #expect(missing?.code == .ENOENT)
          }
        }
        try await group.waitForAll()
      }
      #expect(try await xs.directory("/concurrent").count == 100)
    }
  }

  @Test func largeDirectoryFallsBackToDirectoryPart() async throws {
    try await withDaemon { _, xs in
      // 300 names of 24 bytes: about 7,500 bytes, past one 4096-byte reply.
      let names = (0..<300).map { "child-with-long-name-\(String($0).leftPadded(to: 3))" }
      try await xs.transaction { tx in
        for name in names { try await tx.write("/wide/\(name)", "") }
      }
      let raw = await #expect(throws: XenStoreError.self) {
        _ = try await xs.request(.directory, strings: ["/wide"], operation: "directory /wide")
      }
      #expect(raw?.code == .E2BIG)  // so the fallback is what answered below
      #expect(Set(try await xs.directory("/wide")) == Set(names))
      let inTransaction = try await xs.transaction { tx in try await tx.directory("/wide") }
      #expect(Set(inTransaction) == Set(names))
    }
  }

  // MARK: Watches

  @Test func watchDeliversTheFirstEventThenChanges() async throws {
    try await withDaemon { _, xs in
      try await xs.write("/watched/node", "1")
      let watch = try await xs.watch("/watched")
      var events = watch.makeAsyncIterator()
      #expect(try await events.next() == .init(path: "/watched", watchedPath: "/watched"))
      try await xs.write("/watched/node", "2")
      #expect(try await events.next()?.path == "/watched/node")
      try await xs.write("/watched/new/deep", "3")
      // One event for the node written, none for the parent it created on the way.
      #expect(try await events.next()?.path == "/watched/new/deep")
      try await xs.rm("/watched")
      #expect(try await events.next()?.path == "/watched")
      try await watch.unwatch()
      #expect(try await events.next() == nil)
    }
  }

  @Test func watchOnSeveralPathsKeepsTheDaemonsOrder() async throws {
    try await withDaemon { _, xs in
      let watch = try await xs.watch(["/w1", "/w2"])
      var events = watch.makeAsyncIterator()
      #expect(try await events.next() == .init(path: "/w1", watchedPath: "/w1"))
      #expect(try await events.next() == .init(path: "/w2", watchedPath: "/w2"))
      for path in ["/w2", "/w1", "/w2"] { try await xs.write(path, "x") }
      var order: [String] = []
      for _ in 0..<3 { order.append(try await events.next()?.path ?? "") }
      #expect(order == ["/w2", "/w1", "/w2"])
    }
  }

  @Test func refusedWatchThrowsAndLeavesNoneBehind() async throws {
    try await withDaemon { _, xs in
      let error = await #expect(throws: XenStoreError.self) { _ = try await xs.watch(["/fine", "/bad//path"]) }
      #expect(error?.code == .EINVAL)
      // The first watch of the pair was removed again: the daemon no longer knows its token.
      let unwatch = await #expect(throws: XenStoreError.self) {
        _ = try await xs.request(.unwatch, strings: ["/fine", "swift-xs-1"], operation: "unwatch")
      }
      #expect(unwatch?.code == .ENOENT)
    }
  }

  @Test func cancellingTheIteratingTaskRemovesTheWatch() async throws {
    try await withDaemon { _, xs in
      let watch = try await xs.watch("/cancelled")
      let token = watch.watches[0].token
      let reader = Task {
        var count = 0
        for try await _ in watch { count += 1 }
        return count
      }
      try await xs.write("/cancelled", "1")
      // Give the reader a moment to be inside `next()`; cancellation works either way.
      try await Task.sleep(for: .milliseconds(20))
      reader.cancel()
      _ = try? await reader.value
      // The UNWATCH went out ahead of this request: the daemon no longer knows the watch.
      let error = await #expect(throws: XenStoreError.self) {
        _ = try await xs.request(.unwatch, strings: ["/cancelled", token], operation: "unwatch")
      }
      #expect(error?.code == .ENOENT)
    }
  }

  @Test func droppingTheWatchRemovesIt() async throws {
    try await withDaemon { _, xs in
      var token = ""
      do {
        let watch = try await xs.watch("/dropped")
        token = watch.watches[0].token
      }
      // The sequence is gone; its termination sent UNWATCH before this.
      let error = await #expect(throws: XenStoreError.self) {
        _ = try await xs.request(.unwatch, strings: ["/dropped", token], operation: "unwatch")
      }
      #expect(error?.code == .ENOENT)
    }
  }

  @Test func resetWatchesEndsEverySequence() async throws {
    try await withDaemon { _, xs in
      let watch = try await xs.watch("/reset")
      var events = watch.makeAsyncIterator()
      #expect(try await events.next()?.path == "/reset")
      try await xs.resetWatches()
      #expect(try await events.next() == nil)
    }
  }

  // MARK: Transactions

  @Test func transactionCommitsAtomically() async throws {
    try await withDaemon { _, xs in
      let other = try await XenStoreClient.connect(to: xs.socketPath)
      defer { other.close() }
      let tx = try await xs.transactionStart()
      try await tx.write("/tx/a", "1")
      #expect(try await tx.read("/tx/a") == "1")
      #expect(try await other.exists("/tx/a") == false)  // not visible before commit
      try await xs.transactionEnd(tx, commit: true)
      #expect(try await other.read("/tx/a") == "1")

      let aborted = try await xs.transactionStart()
      try await aborted.write("/tx/b", "2")
      try await xs.transactionEnd(aborted, commit: false)
      #expect(try await xs.exists("/tx/b") == false)
    }
  }

  @Test func transactionHelperRetriesAfterARealConflict() async throws {
    try await withDaemon { _, xs in
      let other = try await XenStoreClient.connect(to: xs.socketPath)
      defer { other.close() }
      try await xs.write("/counter", "0")
      let attempts = AttemptCounter()
      let result = try await xs.transaction { tx in
        let value = Int(try await tx.read("/counter"))!
        if attempts.increment() == 1 {
          try await other.write("/counter", "10")  // changes what the transaction read
        }
        try await tx.write("/counter", String(value + 1))
        return value + 1
      }
      #expect(attempts.value == 2)
      #expect(result == 11)
      #expect(try await xs.read("/counter") == "11")
    }
  }

  @Test func transactionHelperGivesUpAfterMaxAttempts() async throws {
    try await withDaemon { _, xs in
      let other = try await XenStoreClient.connect(to: xs.socketPath)
      defer { other.close() }
      try await xs.write("/contended", "0")
      let attempts = AttemptCounter()
      let error = await #expect(throws: XenStoreError.self) {
        try await xs.transaction(maxAttempts: 3) { tx in
          let n = attempts.increment()
          _ = try await tx.read("/contended")
          try await other.write("/contended", String(n))
          try await tx.write("/contended", "mine")
        }
      }
      #expect(error?.code == .EAGAIN)
      #expect(attempts.value == 3)
      #expect(try await xs.read("/contended") == "3")
    }
  }

  @Test func transactionHelperAbortsWhenTheBodyThrows() async throws {
    try await withDaemon { _, xs in
      struct Stop: Error {}
      await #expect(throws: Stop.self) {
        try await xs.transaction { tx in
          try await tx.write("/aborted", "x")
          throw Stop()
        }
      }
      let exists = try await xs.exists("/aborted")
      #expect(!exists)
    }
  }

  @Test func concurrentIncrementsThroughTransactionsLoseNothing() async throws {
    try await withDaemon { daemon, xs in
      try await xs.write("/shared", "0")
      try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<8 {
          group.addTask {
            let mine = try await XenStoreClient.connect(to: daemon.socketPath)
            defer { mine.close() }
            for _ in 0..<10 {
              try await mine.transaction(maxAttempts: 1000) { tx in
                let value = Int(try await tx.read("/shared"))!
                try await tx.write("/shared", String(value + 1))
              }
            }
          }
        }
        try await group.waitForAll()
      }
      #expect(try await xs.read("/shared") == "80")
    }
  }

  // MARK: Cancellation and loss

  @Test func cancelledRequestLeavesTheStreamIntact() async throws {
    try await withDaemon(asProcess: true) { daemon, xs in
      try await xs.write("/before", "b")
      try await daemon.freeze()  // requests now wait for replies
      let cancelled = Task { try await xs.read("/before") }
      let survivor = Task { try await xs.read("/before") }
      try await waitUntilPending(2, on: xs)
      cancelled.cancel()
      // The client's errors are typed: a cancelled wait is `.cancelled`.
      await #expect { _ = try await cancelled.value } throws: { ($0 as? XenStoreError)?.code == .cancelled }
      daemon.thaw()
      // The cancelled request's reply arrives and is dropped; the others still match.
      #expect(try await survivor.value == "b")
      try await xs.write("/after", "a")
      #expect(try await xs.read("/after") == "a")
      #expect(try await xs.read("/before") == "b")
    }
  }

  @Test func cancelledBeforeSendingSendsNothing() async throws {
    try await withDaemon { _, xs in
      let task = Task {
        withUnsafeCurrentTask { $0?.cancel() }
        try await xs.write("/never", "x")
      }
      await #expect { try await task.value } throws: { ($0 as? XenStoreError)?.code == .cancelled }
      let exists = try await xs.exists("/never")
      #expect(!exists)
    }
  }

  @Test func cancelledTransactionStartIsAbortedWhenItsReplyComes() async throws {
    try await withDaemon(asProcess: true) { daemon, xs in
      try await daemon.freeze()
      let start = Task { try await xs.transactionStart() }
      try await waitUntilPending(1, on: xs)
      start.cancel()
      await #expect { _ = try await start.value } throws: { ($0 as? XenStoreError)?.code == .cancelled }
      daemon.thaw()
      // The orphaned transaction (id 1 on a fresh daemon) was ended: ending it again fails.
      let tx = XenStoreTransaction(client: xs, transactionID: 1)
      try await xs.write("/sync", "x")  // after the abort in the request stream
      let error = await #expect(throws: XenStoreError.self) { try await xs.transactionEnd(tx, commit: false) }
      #expect(error?.code == .ENOENT)
    }
  }

  @Test func connectionLossFailsPendingRequestsAndWatches() async throws {
    try await withDaemon(asProcess: true) { daemon, xs in
      let watch = try await xs.watch("/lost")
      var events = watch.makeAsyncIterator()
      #expect(try await events.next()?.path == "/lost")
      try await daemon.freeze()
      let pending = Task { try await xs.read("/lost") }
      try await waitUntilPending(1, on: xs)
      daemon.kill()
      let error = await #expect(throws: XenStoreError.self) { _ = try await pending.value }
      #expect(error?.code == .connectionLost)
      #expect(error?.message.contains(daemon.socketPath) == true)
      let ended = await #expect(throws: XenStoreError.self) { _ = try await events.next() }
      #expect(ended?.code == .connectionLost)
      let later = await #expect(throws: XenStoreError.self) { _ = try await xs.read("/x") }
      #expect(later?.code == .connectionLost)
    }
  }

  @Test func closingTheClientEndsWatchesAndFailsRequests() async throws {
    try await withDaemon { _, xs in
      let watch = try await xs.watch("/closing")
      var events = watch.makeAsyncIterator()
      #expect(try await events.next()?.path == "/closing")
      xs.close()
      #expect(try await events.next() == nil)
      let error = await #expect(throws: XenStoreError.self) { _ = try await xs.read("/x") }
      #expect(error?.code == .connectionLost)
    }
  }

  // MARK: Domains and control

  @Test func domainRequests() async throws {
    try await withDaemon { _, xs in
      #expect(try await xs.getDomainPath(7) == "/local/domain/7")
      #expect(try await xs.isDomainIntroduced(7) == false)
      let introductions = try await xs.watch("@introduceDomain")
      var events = introductions.makeAsyncIterator()
      #expect(try await events.next()?.path == "@introduceDomain")
      try await xs.introduce(domain: 7, gfn: 0x1234, eventChannel: 3)
      #expect(try await events.next()?.path == "@introduceDomain")
      #expect(try await xs.isDomainIntroduced(7))
      try await xs.introduce(domain: 8, gfn: 0x1008, eventChannel: 2)
      try await xs.setTarget(domain: 8, target: 7)
      try await xs.resume(domain: 7)
      try await xs.release(domain: 7)
      let error = await #expect(throws: XenStoreError.self) { try await xs.setTarget(domain: 99, target: 7) }
      #expect(error?.code == .ENOENT)
    }
  }

  @Test func controlCommandAnswers() async throws {
    try await withDaemon { _, xs in
      let help = try await xs.control("help")
      #expect(!help.isEmpty)
      let error = await #expect(throws: XenStoreError.self) { _ = try await xs.control("no-such-command") }
      #expect(error?.code == .EINVAL)
    }
  }
}

/// Waits until `count` requests of `client` are sent and unanswered.
func waitUntilPending(_ count: Int, on client: XenStoreClient) async throws {
  let connection = client.connection
  while try await client.loop.submit({ connection.pendingCount }) < count {
    try await Task.sleep(for: .milliseconds(1))
  }
}

/// A counter shared with a `@Sendable` closure.
final class AttemptCounter: Sendable {
  private let count = Mutex(0)
  var value: Int { count.withLock { $0 } }
  func increment() -> Int { count.withLock { $0 += 1; return $0 } }
}

extension String {
  func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
