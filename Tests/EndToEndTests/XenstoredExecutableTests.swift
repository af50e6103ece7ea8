#if canImport(Glibc)
import Glibc
#endif
import Testing
import InteropSupport
import TestSupport

/// The `xenstored` executable: socket choice, readiness, pid file, single instance, signals,
/// trace, detaching.
@Suite(.serialized, .ownThread) struct XenstoredExecutableTests {
  let xenstored = BuiltProducts.path("xenstored")

  private func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

  @Test func readyFDPidFileTraceAndCleanStopOnSIGTERM() async throws {
    let dir = TemporaryDirectory("xsdx")
    defer { dir.remove() }
    let socket = dir.appending("run/socket"), pidFile = dir.appending("pid"), trace = dir.appending("trace")
    let pid = try spawnConfirmed(xenstored, ["-N", "--ready-fd", "3", "-F", pidFile, "-T", trace], log: dir.appending("log"),
                                 environment: ["XENSTORED_RUNDIR": dir.appending("run"), "XENSTORED_PATH": ""])
    #expect(exists(socket), "XENSTORED_RUNDIR/socket, its directory created")
    #expect(try readFile(pidFile) == "\(pid)\n")
    let c = try RawClient(socket)
    #expect(c.write("/traced", "value") == "OK|")
    #expect(try readFile(trace).contains("IN  conn#1"))
    #expect(try readFile(trace).contains("WRITE (/traced value)"))
    kill(pid, SIGTERM)
    let status = try await #require(waitForExit(pid, seconds: 10))
    #expect(status == 0, "exits 0 on SIGTERM")
    #expect(!exists(socket) && !exists(pidFile), "socket and pid file removed")
  }

  @Test func sigintStopsItToo() async throws {
    let dir = TemporaryDirectory("xsdx")
    defer { dir.remove() }
    let socket = dir.appending("socket")
    let pid = try spawnConfirmed(xenstored, ["-N", "--ready-fd", "3"], log: dir.appending("log"),
                                 environment: ["XENSTORED_PATH": socket])
    kill(pid, SIGINT)
    #expect(await waitForExit(pid, seconds: 10) == 0)
    #expect(!exists(socket))
  }

  @Test func refusesToStartWhenALiveDaemonAnswers() async throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let second = try await run([xenstored, "-N", "--socket", d.socketPath])
    #expect(second.status == 1)
    #expect(second.stderr.contains("a xenstored already serves \(d.socketPath)"), "\(second)")
    #expect(try RawClient(d.socketPath).call(.read, "/") == "", "the first one still serves")
  }

  @Test func replacesAStaleSocket() throws {
    let dir = TemporaryDirectory("xsdx")
    defer { dir.remove() }
    let socket = dir.appending("socket")
    // A socket file nobody listens on: what a crashed daemon leaves.
    let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(socket.utf8)) }
    _ = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    close(fd)
    #expect(exists(socket))
    let pid = try spawnConfirmed(xenstored, ["-N", "--ready-fd", "3", "--socket", socket], log: dir.appending("log"))
    defer { kill(pid, SIGTERM); reap(pid, seconds: 10) }
    #expect(try RawClient(socket).call(.read, "/") == "")
  }

  @Test func refusesToReplaceAFileThatIsNotASocket() async throws {
    let dir = TemporaryDirectory("xsdx")
    defer { dir.remove() }
    let path = dir.appending("socket")
    close(open(path, O_CREAT | O_WRONLY, 0o600))
    let result = try await run([xenstored, "-N", "--socket", path])
    #expect(result.status == 1 && result.stderr.contains("is not a socket"), "\(result)")
    #expect(exists(path))
  }

  @Test func notifiesSystemdWhenNotifySocketIsSet() throws {
    let dir = TemporaryDirectory("xsdx")
    defer { dir.remove() }
    let notify = dir.appending("notify")
    let listener = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
    defer { close(listener) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(notify.utf8)) }
    _ = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let pid = try spawnConfirmed(xenstored, ["-N", "--ready-fd", "3", "--socket", dir.appending("socket")],
                                 log: dir.appending("log"), environment: ["NOTIFY_SOCKET": notify])
    defer { kill(pid, SIGTERM); reap(pid, seconds: 10) }
    var buffer = [UInt8](repeating: 0, count: 256)
    let n = recv(listener, &buffer, buffer.count, 0)
    #expect(n > 0)
    #expect(String(decoding: buffer[0..<max(n, 0)], as: UTF8.self) == "READY=1\nMAINPID=\(pid)\n")
  }

  @Test func withoutNoForkItDetachesAndReturnsOnceListening() async throws {
    let dir = TemporaryDirectory("xsdx")
    defer { dir.remove() }
    let socket = dir.appending("socket"), pidFile = dir.appending("pid")
    let result = try await run([xenstored, "--socket", socket, "-F", pidFile], timeout: 20)
    #expect(result.status == 0, "\(result)")
    let daemon = try #require(pid_t(try readFile(pidFile).dropLast()))
    #expect(try RawClient(socket).call(.read, "/") == "", "listening as soon as the command returned")
    #expect(getsid(daemon) == daemon, "the daemon leads a session of its own")
    kill(daemon, SIGTERM)
    for _ in 0..<1000 where exists(socket) { try? await Task.sleep(for: .microseconds(10_000)) }
    #expect(!exists(socket))
  }

  @Test func detachedStartReportsFailure() async throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let result = try await run([xenstored, "--socket", d.socketPath], timeout: 20)
    #expect(result.status == 1, "\(result)")
    #expect(result.stderr.contains("already serves"), "\(result)")
  }

  /// `--log-file` keeps the daemon's log bounded: past `--log-size` it is rotated as libxl
  /// rotates logs (at most ten old ones), and SIGHUP reopens it after an outside rotation.
  @Test func logFileIsRotatedPastItsSizeAndReopenedOnSIGHUP() async throws {
    let dir = TemporaryDirectory("xsdx")
    defer { dir.remove() }
    let socket = dir.appending("socket"), log = dir.appending("xenstored.log")
    // Ten old logs already: a rotation must drop the oldest, never keep an eleventh.
    for i in 1...10 { writeFile(log + ".\(i)", "old \(i)\n") }
    let pid = try spawnConfirmed(xenstored, ["-N", "--ready-fd", "3", "--socket", socket, "--log-file", log, "--log-size", "300"],
                                 log: dir.appending("spawn.log"))
    defer {
      kill(pid, SIGTERM)
      reap(pid, seconds: 10)
    }
    #expect(try readFile(log).contains("xenstored listening"), "the log goes to --log-file")
    #expect(try readFile(dir.appending("spawn.log")) == "", "and not to the inherited stderr")
    let c = try RawClient(socket)
    // Each INTRODUCE and RELEASE logs a line of about 80 bytes: the log passes 300 bytes
    // several times, and is rotated each time, as it is written (no timer).
    for domid in 1...5 {
      #expect(c.call(.introduce, "\(domid)", "\(0x1000 + domid)", "1") == "OK|")
      #expect(c.call(.release, "\(domid)") == "OK|")
    }
    let files = { ([log] + (1...11).map { log + ".\($0)" }).map { try? readFile($0) } }
    let ours = { files().compactMap { $0 }.filter { !$0.hasPrefix("old ") } }
    // The last line may follow the reply a moment later.
    for _ in 0..<500 where !ours().joined().contains("domid=5") { try? await Task.sleep(for: .milliseconds(10)) }
    let rotations = ours().count - 1
    #expect(rotations >= 2, "\(ours())")
    let written = ours().reversed().joined()
    for domid in 1...5 { #expect(written.contains("domain released") && written.contains("domid=\(domid)"), "\(written)") }
    #expect(ours().allSatisfy { $0.utf8.count < 300 + 200 }, "each file stops near the limit")
    #expect(files()[rotations + 1] == "old 1\n", "the old logs moved down by one per rotation")
    #expect(files()[10] == "old \(10 - rotations)\n", "the oldest are gone")
    #expect(files()[11] == nil, "never more than ten old logs")

    // An outside logrotate moves the file away; SIGHUP makes the daemon write a new one.
    #expect(rename(log, dir.appending("moved.log")) == 0)
    kill(pid, SIGHUP)
    for _ in 0..<300 where !exists(log) { try? await Task.sleep(for: .microseconds(10_000)) }
    #expect(c.call(.introduce, "99", "4096", "1") == "OK|")
    #expect(try readFile(log).contains("domain introduced"), "the new file gets the log after SIGHUP")
    #expect(try readFile(log).contains("domid=99"))
  }

  @Test func runningOutOfDescriptorsDelaysNewClientsWithoutHurtingOthers() throws {
    let dir = TemporaryDirectory("xsdx")
    defer { dir.remove() }
    let socket = dir.appending("socket")
    let pid = try spawnConfirmed("/bin/sh", ["-c", "ulimit -n 48; exec \(xenstored) -N --ready-fd 3 --socket \(socket)"],
                                 log: dir.appending("log"))
    defer { kill(pid, SIGTERM); reap(pid, seconds: 10) }
    // About 20 descriptors are left for clients; the kernel's backlog takes all 80.
    var clients = try (0..<80).map { _ in try RawClient(socket) }
    #expect(clients[0].call(.read, "/") == "")
    clients.removeFirst(70)   // frees the daemon's descriptors
    #expect(clients.last?.call(.read, "/") == "", "served once descriptors are free again")
    #expect(try RawClient(socket).call(.read, "/") == "")
    #expect(!(try readFile(dir.appending("log"))).isEmpty, "the shortage was logged")
  }
}
