#if canImport(Glibc)
import Glibc
#endif
import Testing
import InteropSupport
import TestSupport

/// Xen's own clients against our daemon: test-xenstore and xenstore-utils. Expected outputs
/// were taken from C xenstored 4.17 running the same commands.
@Suite(.serialized) struct XenstoredPeerTests {
  static let testXenstore = Peer.testXenstore.path

  @Test(.enabled(if: TestEnvironment.shouldRun([.testXenstore])),
        arguments: [XenstoredUnderTest.Mode.inProcess, .executable])
  func testXenstorePassesAllTwelveTests(mode: XenstoredUnderTest.Mode) async throws {
    let d = try XenstoredUnderTest.start(mode)
    defer { d.stop() }
    let list = try await run([Self.testXenstore, "-l"], environment: d.environment)
    #expect(list.stdout.split(separator: "\n").count == 12)
    let result = try await run([Self.testXenstore], environment: d.environment)
    #expect(result.status == 0, "\(result)")
    let lines = result.stdout.split(separator: "\n")
    #expect(lines.count == 12, "\(result)")
    #expect(lines.allSatisfy { $0.hasSuffix(" ns") && !$0.contains("failed") }, "\(result)")
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.testXenstore])))
  func testXenstoreWithManyIterations() async throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let result = try await run([Self.testXenstore, "-i", "200"], environment: d.environment, timeout: 300)
    #expect(result.status == 0, "\(result)")
    #expect(!result.stdout.contains("failed"), "\(result)")
    // test-xenstore cleans up after itself: nothing of it is left behind.
    let left = try await run(["/usr/bin/xenstore-ls", "/local/domain/0"], environment: d.environment)
    #expect(!left.stdout.contains("xenstore-test"), "\(left)")
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.testXenstore])))
  func fourTestXenstoresAtOnce() async throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let outputs = (0..<4).map { d.directory.appending("out\($0)") }
    let pids = try outputs.map { try spawnBackground([Self.testXenstore, "-i", "100"], environment: d.environment, output: $0) }
    for (pid, output) in zip(pids, outputs) {
      #expect(await waitForExit(pid, seconds: 300) == 0, "\((try? readFile(output)) ?? "")")
      #expect(!(try readFile(output)).contains("failed"))
    }
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.xenstoreRead])))
  func xenstoreUtilsReadWriteListRemove() async throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let env = d.environment
    // Two pairs: libxenstore wraps them in one transaction.
    #expect(try await run(["xenstore-write", "/a/b", "hello", "/a/c", "two words"], environment: env).status == 0)
    let read = try await run(["xenstore-read", "/a/b", "/a/c"], environment: env)
    #expect(read.stdout == "hello\ntwo words\n" && read.status == 0, "\(read)")
    let missing = try await run(["xenstore-read", "/nope"], environment: env)
    #expect(missing.status == 1 && missing.stderr == "xenstore-read: couldn't read path /nope\n", "\(missing)")
    #expect(try await run(["xenstore-ls", "/a"], environment: env).stdout == "b = \"hello\"\nc = \"two words\"\n")
    #expect(try await run(["xenstore-list", "/a"], environment: env).stdout == "b\nc\n")
    #expect(try await run(["xenstore-exists", "/a/b"], environment: env).status == 0)
    #expect(try await run(["xenstore-exists", "/zz"], environment: env).status == 1)
    #expect(try await run(["xenstore-chmod", "/a/b", "n0", "r5"], environment: env).status == 0)
    let perms = try await run(["xenstore-ls", "-p", "/a"], environment: env)
    #expect(perms.stdout == """
      b = "hello"  . . . . . . . . . . . . . . . . . . . . . . . .  (n0,r5)
      c = "two words"  . . . . . . . . . . . . . . . . . . . . . .  (n0)

      """, "\(perms)")
    #expect(try await run(["xenstore-rm", "/a/b"], environment: env).status == 0)
    let rmMissing = try await run(["xenstore-rm", "/x/y"], environment: env)
    #expect(rmMissing.status == 1 && rmMissing.stderr == "xenstore-rm: could not remove path /x/y\n", "\(rmMissing)")
    #expect(try await run(["xenstore-ls", "/"], environment: env).stdout == "tool = \"\"\n xenstored = \"\"\na = \"\"\n c = \"two words\"\n")
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.xenstoreRead])))
  func xenstoreWatchSeesTheFirstEventThenChanges() async throws {
    let d = try XenstoredUnderTest.start()
    defer { d.stop() }
    let output = d.directory.appending("watch.out")
    let watcher = try spawnBackground(["xenstore-watch", "-n", "3", "/a"], environment: d.environment, output: output)
    // The first event arrives once the watch is registered; only then write.
    for _ in 0..<1000 where (try? readFile(output))?.isEmpty != false { try? await Task.sleep(for: .microseconds(5000)) }
    #expect(try await run(["xenstore-write", "/a/d", "1"], environment: d.environment).status == 0)
    #expect(try await run(["xenstore-rm", "/a"], environment: d.environment).status == 0)
    let status = await waitForExit(watcher, seconds: 30)
    #expect(status == 0)
    #expect(try readFile(output) == "/a\n/a/d\n/a\n")
  }
}
