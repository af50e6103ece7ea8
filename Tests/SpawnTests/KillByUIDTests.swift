#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import TestSupport

/// `Spawner.killAll(uid:)`, libxl's device-model reaper, with real processes of a uid of the
/// test's own (root only: the reaper changes its uids).
@Suite(.serialized) struct KillByUIDTests {
  static let uid: UInt32 = 231_950, reaperUID: UInt32 = 231_951

  /// A process of the uid is killed; the reaper is waited for on its pidfd and reaped.
  @Test(.enabled(if: geteuid() == 0)) func everyProcessOfTheUIDIsKilled() async throws {
    let directory = TemporaryDirectory("killuid")
    defer { directory.remove() }
    let victim = try startAs(Self.uid)
    // setpriv takes the uid, then execs sleep: only then is it the uid's.
    for _ in 0..<1000 where !((try? String(contentsOfProcFile: "/proc/\(victim)/status")) ?? "").contains("Uid:\t\(Self.uid)\t") {
      try await Task.sleep(for: .milliseconds(10))
    }
    let identity = try ProcessIdentity.of(pid: victim)
    try await Spawner().killAll(
      uid: Self.uid, reaperUID: Self.reaperUID, lockPath: directory.appending("lock"), what: "test")
    try await Spawner().waitForExit(identity, what: "the uid's process")
    var status: Int32 = 0
    #expect(waitpid(victim, &status, WNOHANG) == victim)
    #expect((status & 0x7f) == SIGKILL, "killed by SIGKILL: \(status)")
  }

  /// A failed `waitid` of the reaper is a failure, never read as its success.
  @Test(.enabled(if: geteuid() == 0)) func aWaitidFailureIsReported() async throws {
    let directory = TemporaryDirectory("killuid")
    defer { directory.remove() }
    var calls = SystemCalls.live
    calls.waitid = { _, _ throws(SystemErrno) in throw .EINVAL }
    let error = await spawnError {
      try await Spawner(system: calls).killAll(
        uid: Self.uid, reaperUID: Self.reaperUID, lockPath: directory.appending("lock"), what: "test")
    }
    #expect(error?.code == .stopFailed)
    #expect(error?.errno == .EINVAL)
    #expect(error?.detail.hasPrefix("waiting for the reaper [") == true, "\(String(describing: error))")
  }

  /// `sleep 600` as `uid` (util-linux setpriv), our child.
  func startAs(_ uid: UInt32) throws -> pid_t {
    var pid: pid_t = 0
    let argv = ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "/bin/sleep", "600"]
    let args = argv.map { strdup($0) } + [nil]
    defer { args.forEach { free($0) } }
    let rc = posix_spawn(&pid, argv[0], nil, nil, args, environ)
    try #require(rc == 0)
    return pid
  }
}

extension String {
  /// A /proc file's text (its size is 0 to stat: read until the end).
  init(contentsOfProcFile path: String) throws {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SystemErrno(rawValue: errno) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
      let n = read(fd, &buffer, buffer.count)
      if n <= 0 { break }
      bytes += buffer[0..<n]
    }
    self = String(decoding: bytes, as: UTF8.self)
  }
}
