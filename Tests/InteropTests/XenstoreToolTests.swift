#if canImport(Glibc)
import Glibc
#endif
import Testing
import InteropSupport
import TestSupport
import XenStore

/// Our `xenstore` against Debian's xenstore-utils: each case runs Debian's `xenstore <mode>`
/// and ours on two daemons holding the same tree, and compares stdout, stderr, exit status
/// and the tree left behind.
@Suite(.serialized) struct XenstoreToolTests {
  static let debian = "/usr/bin/xenstore"
  static var ours: String { BuiltProducts.path("xenstore") }

  /// One command line, with the nodes it needs beyond the common fixture.
  struct Case: Sendable, CustomStringConvertible {
    let arguments: [String]
    var description: String { arguments.joined(separator: " ") }
    init(_ arguments: String...) { self.arguments = arguments }
  }

  static let cases: [Case] = [
    // read
    Case("read", "/t/a"), Case("read", "/t/a", "/t/tab", "/t/bin"), Case("read", "-p", "/t/a", "/t/empty"),
    Case("read", "-R", "/t/bin"), Case("read", "-pR", "/t/a"), Case("read", "/t/missing"),
    Case("read", "/t/a", "/t/missing", "/t/tab"), Case("read", "relative"), Case("read", "bad//path"),
    Case("read", "-s", "/t/a"), Case("read", "--prefix", "--raw", "/t/tab"),
    // write
    Case("write", "/t/new", "v"), Case("write", "/t/p1", "1", "/t/p2", "2"),
    Case("write", "/t/esc", #"a\tb\x41\101\-\x-1\x0x\x 4\1234\"#), Case("write", "-R", "/t/raw", #"a\tb"#),
    Case("write", "bad//p", "x"), Case("write", "/t/a/child", ""), Case("write", "/t/ok", "1", "bad//p", "2"),
    // ls
    Case("ls", "/t"), Case("ls"), Case("ls", "-f", "/t"), Case("ls", "-p", "/t"), Case("ls", "-fp", "/t"),
    Case("ls", "--flat", "--prefix"), Case("ls", "/t/missing"), Case("ls", "/t/dir", "/t/missing"),
    Case("ls", "/t/a", "/t/dir"), Case("ls", "/wide"), Case("ls", "-p", "/t/deep"),
    // list
    Case("list", "/t"), Case("list", "-p", "/t", "/"), Case("list", "/t/missing"), Case("list", "/t", "/t/missing"),
    Case("list", "/wide"), Case("list", "/t/empty"),
    // rm
    Case("rm", "/t/a"), Case("rm", "/t/missing"), Case("rm", "/t/missing/deeper"), Case("rm", "-t", "/t/deep/er/est"),
    Case("rm", "-t", "/t/dir/sub/leaf"), Case("rm", "/t/a", "/t/missing/x"), Case("rm", "/"),
    // exists
    Case("exists", "/t/a"), Case("exists", "/t/missing"), Case("exists", "/t/a", "/t/missing"),
    // chmod
    Case("chmod", "/t/a", "n0", "r1"), Case("chmod", "-r", "/t/dir", "b0"), Case("chmod", "-u", "/t/dir/sub/leaf", "r0"),
    Case("chmod", "-ur", "/t/dir/sub", "w0", "r1"), Case("chmod", "/t/a", "q1"), Case("chmod", "/t/missing", "n0"),
    Case("chmod", "/t/a"), Case("chmod", "/t/a", "n0", "r-1", "w4294967296", "b"), Case("chmod", "-u", "relative", "n0"),
    // watch (events beyond the first are in `watchSeesChangesInOrder`)
    Case("watch", "-n", "1", "/t"), Case("watch", "-n", "0", "/t"), Case("watch", "-n", "-2", "/t"),
    Case("watch", "-n", "1", "bad//x"), Case("watch", "-n", "2", "/t/a", "/t/tab"), Case("watch", "-n", "1", "/t/a", "bad//x"),
    Case("watch", "-n1", "/t/missing/node"),
  ]

  @Test(.enabled(if: TestEnvironment.shouldRun([.xenstoreRead])), arguments: cases)
  func sameOutputStatusAndTreeAsXenstoreUtils(_ testCase: Case) async throws {
    let (debian, debianTree) = try await runOnFreshDaemon(Self.debian, testCase.arguments)
    let (ours, ourTree) = try await runOnFreshDaemon(Self.ours, testCase.arguments)
    #expect(ours.stdout == debian.stdout, "stdout of \(testCase)")
    #expect(ours.status == debian.status, "status of \(testCase): debian \(debian), ours \(ours)")
    #expect(ours.stderr == debian.stderr, "stderr of \(testCase)")
    #expect(ourTree == debianTree, "tree after \(testCase)")
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.xenstoreRead])))
  func watchSeesChangesInOrder() async throws {
    func watchOutput(_ tool: String) async throws -> ProcessResult {
      let daemon = try await fixtureDaemon()
      defer { daemon.stop() }
      let output = daemon.directory.appending("watch.out")
      let pid = try spawnBackground([tool, "watch", "-n", "5", "/t/dir", "/t/a"], environment: daemon.environment, output: output)
      // Both first events printed: the watches are set.
      try await withTimeout(.seconds(30), "first watch events") {
        while (try? readFile(output))?.split(separator: "\n").count ?? 0 < 2 { try await Task.sleep(for: .milliseconds(2)) }
      }
      let xs = try await XenStoreClient.connect(to: daemon.socketPath)
      defer { xs.close() }
      try await xs.write("/t/dir/sub/new", "1")
      try await xs.rm("/t/a")
      try await xs.write("/t/dir", "2")
      guard let status = await waitForExit(pid, seconds: 30) else { throw StartupError(description: "\(tool) watch hung") }
      return ProcessResult(status: (status >> 8) & 0xff, stdout: try readFile(output), stderr: try readFile(output + ".err"))
    }
    let debian = try await watchOutput(Self.debian)
    let ours = try await watchOutput(Self.ours)
    #expect(debian.stdout == "/t/dir\n/t/a\n/t/dir/sub/new\n/t/a\n/t/dir\n")
    #expect(ours.stdout == debian.stdout)
    #expect(ours.status == 0 && debian.status == 0)
  }

  /// On a terminal `ls` fits lines to its width (columns - 2), flat or not; run under a
  /// pseudo-terminal (`script`) of several widths, including 0 where the C arithmetic wraps.
  @Test(.enabled(if: TestEnvironment.shouldRun([.xenstoreRead]) && access("/usr/bin/script", X_OK) == 0),
        arguments: [0, 1, 12, 30, 50, 100, 300])
  func lsFitsTheTerminalWidth(_ columns: Int) async throws {
    for flags in [[], ["-p"], ["-f"], ["-fp"]] {
      func onTerminal(_ tool: String) async throws -> ProcessResult {
        let shell = "stty cols \(columns); \(tool) ls \(flags.joined(separator: " ")) /t"
        let daemon = try await fixtureDaemon()
        defer { daemon.stop() }
        return try await run(["/usr/bin/script", "-qec", shell, "/dev/null"], environment: daemon.environment)
      }
      let debian = try await onTerminal(Self.debian)
      let ours = try await onTerminal(Self.ours)
      #expect(debian.stdout.contains("a = \""))
      if columns == 30 { #expect(debian.stdout.contains(#"\...""#)) }  // values were cut
      #expect(ours.stdout == debian.stdout, "ls \(flags) at \(columns) columns")
      #expect(ours.status == debian.status)
    }
  }

  /// Invoked through a link named `xenstore-<mode>`, as Debian installs its tool.
  @Test(.enabled(if: TestEnvironment.shouldRun([.xenstoreRead])))
  func linkNamedAfterAModeRunsThatMode() async throws {
    let links = TemporaryDirectory("xsc")
    defer { links.remove() }
    for mode in ["read", "ls", "list"] { symlink(Self.ours, links.appending("xenstore-\(mode)")) }
    for arguments in [["read", "/t/a", "/t/missing"], ["ls", "/t/dir"], ["list", "-p", "/t"]] {
      let (debian, _) = try await runOnFreshDaemon("/usr/bin/xenstore-\(arguments[0])", Array(arguments.dropFirst()))
      let (ours, _) = try await runOnFreshDaemon(links.appending("xenstore-\(arguments[0])"), Array(arguments.dropFirst()))
      #expect(ours.stdout == debian.stdout)
      #expect(ours.stderr == debian.stderr)  // "xenstore-read: couldn't read path /t/missing"
      #expect(ours.status == debian.status)
    }
  }

  /// Usage errors exit 1 like xenstore-utils (ArgumentParser's own code would be 64); the
  /// messages are ArgumentParser's.
  @Test(.enabled(if: TestEnvironment.shouldRun([.xenstoreRead])),
        arguments: [[], ["bogus"], ["read"], ["write", "/t/a"], ["write", "/t/a", "1", "/t/b"], ["rm"], ["exists"],
                    ["list"], ["chmod"], ["watch"], ["read", "-f", "/t/a"], ["rm", "-p", "/t/a"]])
  func usageErrorsExitOne(_ arguments: [String]) async throws {
    let (debian, _) = try await runOnFreshDaemon(Self.debian, arguments)
    let (ours, _) = try await runOnFreshDaemon(Self.ours, arguments)
    #expect(debian.status == 1)
    #expect(ours.status == 1, "\(ours)")
    #expect(ours.stdout == "" && debian.stdout == "")
    #expect(!ours.stderr.isEmpty)
  }

  /// With no daemon both fail with status 1 and print nothing on stdout; ours names the socket.
  @Test(.enabled(if: TestEnvironment.shouldRun([.xenstoreRead])),
        arguments: [["read", "/t/a"], ["ls"], ["write", "/a", "b"], ["watch", "/a"], ["exists", "/a"]])
  func noDaemonFailsNamingTheSocket(_ arguments: [String]) async throws {
    let directory = TemporaryDirectory("xsc")
    defer { directory.remove() }
    let missing = directory.appending("none.sock")
    let environment = ["XENSTORED_PATH": missing]
    let debian = try await run([Self.debian] + arguments, environment: environment)
    let ours = try await run([Self.ours] + arguments, environment: environment)
    #expect(debian.status == 1 && ours.status == 1)
    #expect(debian.stdout == "" && ours.stdout == "")
    #expect(debian.stderr == "xenstore: xs_open: No such file or directory\n")
    #expect(ours.stderr == "xenstore: cannot connect to xenstored: no socket at \(missing) (No such file or directory); is xenstored running? XENSTORED_PATH selects another socket\n")
  }

  /// The socket comes from XENSTORED_RUNDIR when XENSTORED_PATH is unset, as libxenstore does.
  @Test(.enabled(if: TestEnvironment.shouldRun([.xenstoreRead])))
  func socketFromRunDirectory() async throws {
    let daemon = try await fixtureDaemon()
    defer { daemon.stop() }
    let rundir = TemporaryDirectory("xsc")
    defer { rundir.remove() }
    symlink(daemon.socketPath, rundir.appending("socket"))
    let result = try await run(["/usr/bin/env", "-u", "XENSTORED_PATH", "XENSTORED_RUNDIR=\(rundir.path)", Self.ours, "read", "/t/a"])
    #expect(result.stdout == "hello\n" && result.status == 0, "\(result)")
  }

  // MARK: Fixture

  /// A daemon holding the common tree: values with escapes, a deep path, a node with grants,
  /// a name and a value too long for one 80-column line, and a directory too wide for one reply.
  func fixtureDaemon() async throws -> XenstoredUnderTest {
    let daemon = try XenstoredUnderTest.start()
    do {
      let xs = try await XenStoreClient.connect(to: daemon.socketPath)
      defer { xs.close() }
      try await xs.transaction { tx in
        try await tx.write("/t/a", "hello")
        try await tx.write("/t/tab", "x\ty")
        try await tx.write("/t/bin", bytes: [0, 1, 7, 8, 0x7f, 0x80, 0xff, UInt8(ascii: "\\"), UInt8(ascii: "\n"), 13])
        try await tx.write("/t/empty", "")
        try await tx.write("/t/dir/sub/leaf", "1")
        try await tx.write("/t/deep/er/est", "")
        try await tx.write("/t/long", String(repeating: "0123456789", count: 10))
        try await tx.write("/t/" + String(repeating: "n", count: 80), "v")
        try await tx.write("/t/deep/" + String(repeating: "m", count: 70), String(repeating: "w", count: 10))
        try await tx.write("/local/domain/0/relative", "rel")
        try await tx.setPermissions("/t/dir", Permissions(owner: 0, defaultAccess: .read, grants: [Permission(domain: 3, access: .write)]))
        for i in 0..<300 { try await tx.write("/wide/child-with-a-long-name-\(i)", "") }
      }
    } catch {
      daemon.stop()
      throw error
    }
    return daemon
  }

  /// Runs `tool arguments` against a fresh fixture daemon; its result and the tree after it
  /// (`xenstore-ls -fp /` by Debian's tool).
  func runOnFreshDaemon(_ tool: String, _ arguments: [String]) async throws -> (ProcessResult, String) {
    let daemon = try await fixtureDaemon()
    defer { daemon.stop() }
    let result = try await run([tool] + arguments, environment: daemon.environment, timeout: 60)
    let tree = try await run(["/usr/bin/xenstore-ls", "-fp", "/"], environment: daemon.environment)
    return (result, tree.stdout)
  }
}
