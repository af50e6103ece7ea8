#if canImport(Glibc)
import Glibc
#endif
import Testing
import InteropSupport
import TestSupport
import XenStore
@testable import XenStoreDaemon

/// State files (`--state-dir`) whose records are intact (the checksums match) but whose
/// contents do not make a valid store, found by the state fuzzer (`scripts/fuzz.sh --state`).
/// The daemon must refuse them at startup, naming the file, as it refuses damaged ones; it
/// must neither crash nor serve a broken tree. Each case runs the real `xenstored` on a
/// snapshot written with the daemon's own encoder.
@Suite(.serialized) struct ReliabilityStateFileTests {
  /// Finding 6: a domain list naming a domain twice.
  @Test
  func aDomainListedTwiceIsRefusedNotACrash() async throws {
    var state = DurableState.initial
    state.domains = [DomainEntry(domid: 0), DomainEntry(domid: 5), DomainEntry(domid: 5)]
    let result = try await startOn(state)
    #expect(result.status == 1, "\(result)")
    #expect(result.stderr.contains("snapshot-0000000001") && !result.stderr.contains("missing"), "\(result)")
  }

  /// Finding 5: a node its parent does not list (here `/orphan`, absent from `/`'s children).
  @Test
  func aTreeThatFailsItsOwnCheckIsRefused() async throws {
    var state = DurableState.initial
    state.nodes["/orphan"] = Node(value: Array("x".utf8), permissions: Permissions(owner: 0))
    #expect(state.treeProblems == ["/orphan is not listed by its parent"])
    let result = try await startOn(state)
    #expect(result.status == 1, "\(result)")
    #expect(result.stderr.contains("snapshot-0000000001") && !result.stderr.contains("missing"), "\(result)")
  }

  /// Writes `state` as snapshot 1 (with an empty log 1) of a fresh state directory and runs `xenstored -N` on it for
  /// at most 10 s (a daemon that accepts the state keeps running and is killed: status -1).
  private func startOn(_ state: DurableState) async throws -> ProcessResult {
    let directory = TemporaryDirectory("xst")
    defer { directory.remove() }
    let stateDirectory = directory.appending("state")
    mkdir(stateDirectory, 0o700)
    // Snapshot 1, and log 1 holding only its header, as the daemon leaves them.
    var log: [UInt8] = []
    Frame.append(FileHeader(kind: .log, generation: 1, bootID: "reliability-test").encoded(), to: &log)
    for (name, bytes) in [(StateDirectory.snapshotName(1), SnapshotFile.encode(state, generation: 1, bootID: "reliability-test")),
                          (StateDirectory.logName(1), log)] {
      let fd = open(stateDirectory + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
      try #require(fd >= 0)
      _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
      close(fd)
    }
    return try await run([BuiltProducts.path("xenstored"), "-N", "--socket", directory.appending("socket"),
                    "--state-dir", stateDirectory], environment: ["SWIFT_BACKTRACE": "enable=no"], timeout: 10)
  }
}
