import Dispatch
import Synchronization
import Testing
import XenStore
@testable import XenStoreDaemon

/// Replies and watch events wait for the sync of the records they reveal; a read of a node
/// no unsynced record touched does not. The sync thread is held back by a gate, so "before"
/// and "after" are causal, not timed.
@Suite(.serialized) struct PersistenceGroupCommitTests {
  /// Holds every sync back while closed.
  final class Gate: Sendable {
    private let isClosed = Mutex(false)
    private let semaphore = DispatchSemaphore(value: 0)
    private let opened = Atomic(false)
    var isOpened: Bool { opened.load(ordering: .sequentiallyConsistent) }

    func close() { isClosed.withLock { $0 = true } }

    func open() {
      opened.store(true, ordering: .sequentiallyConsistent)
      isClosed.withLock { $0 = false }
      semaphore.signal()
    }

    /// On the sync thread, before `fdatasync`.
    func pass() {
      if isClosed.withLock({ $0 }) { semaphore.wait() }
    }
  }

  /// `body`'s result, or a failure after `seconds` (a hang fails instead of blocking CI).
  func within<T: Sendable>(_ seconds: Int, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
      group.addTask { try await body() }
      group.addTask { try await Task.sleep(for: .seconds(seconds)); return nil }
      defer { group.cancelAll() }
      guard let value = try await group.next() ?? nil else {
        throw XenStoreError(.connectionLost, "no answer within \(seconds) s")
      }
      return value
    }
  }

  @Test func repliesAndEventsWaitForTheirRecordsAndUnrelatedReadsDoNot() async throws {
    let f = PersistenceRecoveryTests.Fixture()
    let gate = Gate()
    var configuration = f.configuration()
    configuration.durability?.beforeSync = { gate.pass() }
    let server = XenstoredServer(configuration)
    try server.start()
    defer {
      gate.open()
      server.stop()
    }
    let writer = try await XenStoreClient.connect(to: f.socket)
    let reader = try await XenStoreClient.connect(to: f.socket)
    let watcher = try await XenStoreClient.connect(to: f.socket)
    defer { [writer, reader, watcher].forEach { $0.close() } }
    try await writer.write("/held/a", "1")
    try await writer.write("/free/b", "b")
    let watch = try await watcher.watch("/held/a")
    let events = Task {
      var events = watch.makeAsyncIterator()
      let registration = try await events.next()?.path
      let change = try await events.next()?.path
      return (registration, change, gate.isOpened)
    }

    gate.close()
    let write = Task { try await writer.write("/held/a", "2"); return gate.isOpened }
    // Wait until the daemon has applied the write in memory (its record is written, not synced).
    while try await server.withEngine({ $0.store.node("/held/a")?.value }) != Array("2".utf8) {
      try await Task.sleep(for: .milliseconds(5))
    }
    // A node no unsynced record touched: answered at once, the gate still closed.
    #expect(try await within(10) { try await reader.read("/free/b") } == "b")
    #expect(!gate.isOpened)
    let heldRead = Task { (try await reader.read("/held/a"), gate.isOpened) }
    // Time for a daemon that answered too early to show it.
    try await Task.sleep(for: .milliseconds(300))
    gate.open()

    #expect(try await write.value, "the write was acknowledged before its record was durable")
    let (value, afterSync) = try await heldRead.value
    #expect(value == "2" && afterSync, "a read revealed an unsynced write")
    let (registration, change, eventAfterSync) = try await events.value
    #expect(registration == "/held/a" && change == "/held/a")
    #expect(eventAfterSync, "a watch event revealed an unsynced write")
  }
}
