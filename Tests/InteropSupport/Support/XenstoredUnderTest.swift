#if canImport(Glibc)
import Glibc
#endif
import Logging
import TestSupport
import XenStore
import XenStoreDaemon

/// Our xenstored, started for one test in a fresh temporary directory: in this process through
/// the library (fast, the default), or as the built `xenstored` executable confirmed by its
/// `--ready-fd` newline.
///
/// ```swift
/// let d = try XenstoredUnderTest.start()
/// defer { d.stop() }
/// run(["/usr/bin/xenstore-read", "/a"], environment: d.environment)
/// ```
package final class XenstoredUnderTest: @unchecked Sendable {
  package enum Mode: Sendable, CustomStringConvertible {
    case inProcess, executable
    package var description: String { self == .inProcess ? "in-process" : "executable" }
  }

  package let directory: TemporaryDirectory
  package let socketPath: String
  /// The trace file, if one was asked for.
  package let tracePath: String?
  private let server: XenstoredServer?
  private let pid: pid_t?

  /// Environment for Xen's clients (libxenstore, xenstore-utils, pyxs): `XENSTORED_PATH`.
  package var environment: [String: String] { ["XENSTORED_PATH": socketPath] }

  /// The socket through which a process acts as introduced domain `domid`.
  package func domainSocketPath(_ domid: UInt32) -> String { socketPath + ".d/domain-\(domid)" }

  private init(directory: TemporaryDirectory, socketPath: String, tracePath: String?,
               server: XenstoredServer?, pid: pid_t?) {
    self.directory = directory
    self.socketPath = socketPath
    self.tracePath = tracePath
    self.server = server
    self.pid = pid
  }

  package static func start(_ mode: Mode = .inProcess, trace: Bool = false,
                    maxQueuedOutputBytes: Int = 1 << 20) throws -> XenstoredUnderTest {
    let directory = TemporaryDirectory("xsd")
    let socketPath = directory.appending("socket")
    let tracePath = trace ? directory.appending("trace") : nil
    switch mode {
    case .inProcess:
      var logger = Logger(label: "xenstored-under-test")
      logger.logLevel = .warning
      let server = XenstoredServer(XenstoredConfiguration(
        socketPath: socketPath, traceFile: tracePath, maxQueuedOutputBytes: maxQueuedOutputBytes, logger: logger))
      try server.start()
      return XenstoredUnderTest(directory: directory, socketPath: socketPath, tracePath: tracePath, server: server, pid: nil)
    case .executable:
      var arguments = ["-N", "--socket", socketPath, "--ready-fd", "3"]
      if let tracePath { arguments += ["-T", tracePath] }
      let pid = try spawnConfirmed(BuiltProducts.path("xenstored"), arguments, log: directory.appending("stderr"))
      return XenstoredUnderTest(directory: directory, socketPath: socketPath, tracePath: tracePath, server: nil, pid: pid)
    }
  }

  /// Stops the daemon (SIGTERM for the executable, waiting for it) and removes the directory.
  package func stop() {
    server?.stop()
    if let pid {
      kill(pid, SIGTERM)
      reap(pid, seconds: 10)
    }
    directory.remove()
  }

  /// What the executable wrote to stderr.
  package var log: String { (try? readFile(directory.appending("stderr"))) ?? "" }
}

package struct StartupError: Error, CustomStringConvertible {
  package let description: String

  package init(description: String) { self.description = description }
}

/// Spawns `path arguments` with fd 3 the write end of a pipe and waits for the readiness
/// newline on it, or its end of file (the daemon died: only it holds the write end); stderr
/// goes to `log`. The wait is for the event, not a deadline: 120 s only ends a hang (a
/// sanitized daemon replaying its log while guests boot beside it took over 10 s here).
package func spawnConfirmed(_ path: String, _ arguments: [String], log: String,
                    environment: [String: String] = [:]) throws -> pid_t {
  var fds: [Int32] = [0, 0]
  guard pipe(&fds) == 0 else { throw StartupError(description: "pipe failed") }
  // Move both ends above 3 and make them close-on-exec, so that neither is fd 3 (the child's
  // dup2 target) and children spawned meanwhile by other tests do not inherit them.
  for i in 0..<2 {
    let moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 10)
    close(fds[i])
    fds[i] = moved
  }
  defer { close(fds[0]) }
  var actions = posix_spawn_file_actions_t()
  posix_spawn_file_actions_init(&actions)
  defer { posix_spawn_file_actions_destroy(&actions) }
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
  posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
  posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
  let argv = ([path] + arguments).map { strdup($0) } + [nil]
  defer { argv.forEach { free($0) } }
  let env = environmentBlock(adding: environment)
  defer { env.forEach { free($0) } }
  var pid: pid_t = 0
  let rc = posix_spawn(&pid, path, &actions, nil, argv, env)
  close(fds[1])
  guard rc == 0 else { throw StartupError(description: "posix_spawn \(path): \(String(cString: strerror(rc)))") }
  var poller = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
  var byte: UInt8 = 0
  if poll(&poller, 1, 120_000) == 1, read(fds[0], &byte, 1) == 1, byte == 10 { return pid }
  kill(pid, SIGKILL)
  reap(pid, seconds: 5)
  throw StartupError(description: "\(path) did not report readiness: \((try? readFile(log)) ?? "")")
}

/// The current environment with `adding` applied, as a NULL-terminated `envp`.
package func environmentBlock(adding: [String: String]) -> [UnsafeMutablePointer<CChar>?] {
  var merged: [String: String] = [:]
  var p = environ
  while let entry = p.pointee {
    let text = String(cString: entry)
    if let eq = text.firstIndex(of: "=") { merged[String(text[..<eq])] = String(text[text.index(after: eq)...]) }
    p += 1
  }
  for (k, v) in adding { merged[k] = v }
  return merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
}

package func readFile(_ path: String) throws -> String {
  let fd = open(path, O_RDONLY)
  guard fd >= 0 else { throw StartupError(description: "cannot open \(path)") }
  defer { close(fd) }
  var out: [UInt8] = []
  var buffer = [UInt8](repeating: 0, count: 65536)
  while true {
    let n = read(fd, &buffer, buffer.count)
    if n <= 0 { break }
    out += buffer[0..<n]
  }
  return String(decoding: out, as: UTF8.self)
}
