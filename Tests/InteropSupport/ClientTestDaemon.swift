#if canImport(Glibc)
import Glibc
#endif
import TestSupport

/// The daemon a client test talks to: our xenstored through `XenstoredUnderTest` (in this
/// process), or, for tests that freeze or kill it, the built `xenstored` as a child process.
///
/// `XENSTORE_TEST_DAEMON=<script>` runs the client tests against another daemon instead:
/// `<script> <socket>` must start it and print its pid once it listens (Xen's C xenstored under
/// a shim, for example), so the same tests check the client against the reference daemon.
package final class ClientTestDaemon: @unchecked Sendable {
  package let socketPath: String
  /// The daemon's pid, when it is a process of its own.
  package let pid: pid_t?
  private let underTest: XenstoredUnderTest?
  private let directory: TemporaryDirectory?

  private init(socketPath: String, pid: pid_t?, underTest: XenstoredUnderTest?, directory: TemporaryDirectory?) {
    self.socketPath = socketPath
    self.pid = pid
    self.underTest = underTest
    self.directory = directory
  }

  /// Starts a daemon; `asProcess` when the test needs to signal it.
  package static func start(asProcess: Bool = false) async throws -> ClientTestDaemon {
    if let script = getenv("XENSTORE_TEST_DAEMON").map({ String(cString: $0) }) {
      let directory = TemporaryDirectory("xsc")
      let socketPath = directory.appending("socket")
      let result = try await run([script, socketPath])
      guard result.status == 0, let pid = pid_t(result.stdout.split(separator: "\n").last ?? "") else {
        throw StartupError(description: "\(script) failed: \(result)")
      }
      return ClientTestDaemon(socketPath: socketPath, pid: pid, underTest: nil, directory: directory)
    }
    if asProcess {
      let directory = TemporaryDirectory("xsc")
      let socketPath = directory.appending("socket")
      let pid = try spawnConfirmed(BuiltProducts.path("xenstored"), ["-N", "--socket", socketPath, "--ready-fd", "3"],
                                   log: directory.appending("stderr"))
      return ClientTestDaemon(socketPath: socketPath, pid: pid, underTest: nil, directory: directory)
    }
    let underTest = try XenstoredUnderTest.start()
    return ClientTestDaemon(socketPath: underTest.socketPath, pid: nil, underTest: underTest, directory: nil)
  }

  /// Stops the daemon process (SIGSTOP) and waits until every thread of it has stopped, so
  /// requests sent from now on stay unanswered until `thaw()`.
  package func freeze() async throws {
    guard let pid else { throw StartupError(description: "freeze needs a daemon process") }
    Glibc.kill(pid, SIGSTOP)
    try await withTimeout(.seconds(30), "stopping xenstored") {
      while !Self.threadStates(pid).allSatisfy({ $0 == "T" }) { try await Task.sleep(for: .milliseconds(1)) }
    }
  }

  /// Lets a frozen daemon run again.
  package func thaw() {
    if let pid { Glibc.kill(pid, SIGCONT) }
  }

  /// Kills the daemon process outright: its clients lose their connections.
  package func kill() {
    if let pid { Glibc.kill(pid, SIGKILL) }
  }

  /// The state letter of each thread of `pid` (`/proc/<pid>/task/<tid>/stat`).
  private static func threadStates(_ pid: pid_t) -> [Character] {
    guard let directory = opendir("/proc/\(pid)/task") else { return [] }
    defer { closedir(directory) }
    var states: [Character] = []
    while let entry = readdir(directory) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
      guard Int32(name) != nil, let stat = try? readFile("/proc/\(pid)/task/\(name)/stat"),
            let paren = stat.lastIndex(of: ")") else { continue }
      let after = stat[stat.index(after: paren)...].drop { $0 == " " }
      if let state = after.first { states.append(state) }
    }
    return states
  }

  /// Stops the daemon and removes its files.
  package func stop() {
    underTest?.stop()
    if let pid {
      Glibc.kill(pid, SIGCONT)
      Glibc.kill(pid, SIGKILL)
      // A script's daemon is not our child; ours is reaped here.
      if getenv("XENSTORE_TEST_DAEMON") == nil { reap(pid, seconds: 10) }
    }
    directory?.remove()
  }
}

/// Runs `body`, failing with a clear error if it takes longer than `limit`: a hang guard so a
/// broken client fails the test instead of blocking CI, not a speed assertion.
package func withTimeout<T: Sendable>(_ limit: Duration, _ what: String,
                              _ body: @escaping @Sendable () async throws -> T) async throws -> T {
  try await withThrowingTaskGroup(of: T?.self) { group in
    group.addTask { try await body() }
    group.addTask {
      try await Task.sleep(for: limit)
      return nil
    }
    defer { group.cancelAll() }
    guard let first = try await group.next(), let value = first else {
      throw StartupError(description: "\(what) did not finish within \(limit)")
    }
    return value
  }
}
