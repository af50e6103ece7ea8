import Logging
import Testing
import TestSupport
import XenStore
import XenStoreDaemon

// The code of Sources/XenStore/XenStore.docc, compiled here so that it cannot rot: each region
// between `// doc-snippet:` and `// end-doc-snippet` is a code block of the article, word for
// word (scripts/check-doc-snippets.sh compares them).

// doc-snippet: xenstore-read-write
/// Writes a node and reads it back, as `xenstore-write` and `xenstore-read` do.
func writeAndRead(socketPath: String) async throws -> String {
  // nil: where libxenstore looks (XENSTORED_PATH, XENSTORED_RUNDIR, /var/run/xenstored).
  let client = try await XenStoreClient.connect(to: socketPath)
  defer { client.close() }

  try await client.write("/example/greeting", "hello")
  let greeting = try await client.read("/example/greeting")  // "hello"
  let children = try await client.directory("/example")      // ["greeting"]
  let missing = try await client.exists("/example/missing")  // false
  print(greeting, children, missing)
  return greeting
}
// end-doc-snippet

// doc-snippet: xenstore-watch
/// Waits until `/example/state` says "running": a watch's first event comes at once (the daemon
/// sends it unasked), so the current value is read before any change.
func waitUntilRunning(_ client: XenStoreClient) async throws {
  let watch = try await client.watch("/example/state")
  defer { Task { try? await watch.unwatch() } }
  for try await event in watch {
    // event.path is the node that changed (here or below), event.watchedPath the watch.
    if try await client.exists(event.watchedPath), try await client.read(event.watchedPath) == "running" {
      return
    }
  }
}
// end-doc-snippet

// doc-snippet: xenstore-transaction
/// Adds one to a counter, atomically: run again in a fresh transaction on a conflict (EAGAIN).
func increment(_ client: XenStoreClient, _ path: String) async throws -> Int {
  try await client.transaction { transaction in
    var current = 0
    if try await transaction.exists(path) { current = Int(try await transaction.read(path)) ?? 0 }
    try await transaction.write(path, String(current + 1))
    return current + 1
  }
}
// end-doc-snippet

// doc-snippet: xenstore-pipeline
/// Many requests in about one round trip: each is sent without waiting for the reply before.
func writeADomain(_ client: XenStoreClient, domid: UInt32) async throws {
  let home = "/local/domain/\(domid)"
  try await client.pipeline([
    .write(home + "/name", "guest"),
    .write(home + "/memory/target", "65536"),
    .mkdir(home + "/device"),
  ])
  // Or several pairs at once, or the same batch inside a transaction.
  try await client.write([(path: home + "/vm", value: "/vm/\(domid)"), (path: home + "/domid", value: "\(domid)")])
  _ = try await client.transaction(pipelining: [.read(home + "/name"), .rm(home + "/device")])
}
// end-doc-snippet

/// Runs the article's code against the project's daemon, in process.
@Suite(.serialized) struct DocumentationExampleTests {
  func withDaemon(_ body: (String) async throws -> Void) async throws {
    let directory = TemporaryDirectory("docs")
    defer { directory.remove() }
    var logger = Logger(label: "documentation-examples")
    logger.logLevel = .warning
    let server = XenstoredServer(XenstoredConfiguration(socketPath: directory.appending("socket"), logger: logger))
    try server.start()
    defer { server.stop() }
    try await body(directory.appending("socket"))
  }

  @Test func readWriteWatchTransactionAndPipelineRun() async throws {
    try await withDaemon { socketPath in
      #expect(try await writeAndRead(socketPath: socketPath) == "hello")
      let client = try await XenStoreClient.connect(to: socketPath)
      defer { client.close() }

      let waiting = Task { try await waitUntilRunning(client) }
      try await client.write("/example/state", "starting")
      try await client.write("/example/state", "running")
      try await waiting.value

      #expect(try await increment(client, "/example/counter") == 1)
      #expect(try await increment(client, "/example/counter") == 2)

      try await writeADomain(client, domid: 3)
      #expect(try await client.read("/local/domain/3/memory/target") == "65536")
      #expect(try await client.read("/local/domain/3/vm") == "/vm/3")
      #expect(try await !client.exists("/local/domain/3/device"))
    }
  }
}
