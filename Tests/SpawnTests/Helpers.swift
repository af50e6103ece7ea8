#if canImport(Glibc)
import Glibc
#endif
import Spawn
import TestSupport

/// The scripted daemon (Sources/spawn-fixture): its arguments are steps.
enum Fixture {
  static var path: String { BuiltProducts.path("spawn-fixture") }

  static func command(
    _ steps: String..., log: String?, what: String = "fixture", timeout: Duration = .seconds(30),
    stopGrace: Duration = .seconds(5)
  ) -> SpawnCommand {
    SpawnCommand(what: what, executable: path, arguments: steps, logPath: log, timeout: timeout, stopGrace: stopGrace)
  }
}

/// A process's state letter from /proc/<pid>/stat ("R", "S", "Z"), nil if there is none.
func processState(_ pid: Int32) -> Character? {
  guard let text = readFile("/proc/\(pid)/stat"), let paren = text.lastIndex(of: ")") else { return nil }
  return text[text.index(paren, offsetBy: 2)]
}

/// Field 4 of /proc/<pid>/stat.
func parentPID(_ pid: Int32) -> Int32? {
  guard let text = readFile("/proc/\(pid)/stat"), let paren = text.lastIndex(of: ")") else { return nil }
  let fields = text[text.index(after: paren)...].split(separator: " ")
  return fields.count > 1 ? Int32(fields[1]) : nil
}

/// Whether the recorded process still runs (not gone, not a zombie, not another process with its pid).
func isRunning(_ identity: ProcessIdentity) -> Bool {
  guard let now = try? ProcessIdentity.of(pid: identity.pid), now.startTime == identity.startTime else { return false }
  return processState(identity.pid) != "Z"
}

/// Our children that are zombies.
func zombieChildren() -> [Int32] {
  let me = getpid()
  return processIDs().filter { parentPID($0) == me && processState($0) == "Z" }
}

func processIDs() -> [Int32] {
  guard let directory = opendir("/proc") else { return [] }
  defer { closedir(directory) }
  var result: [Int32] = []
  while let entry = readdir(directory) {
    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    if let pid = Int32(name) { result.append(pid) }
  }
  return result
}

func openDescriptorCount() -> Int {
  guard let directory = opendir("/proc/self/fd") else { return -1 }
  defer { closedir(directory) }
  var count = -1  // the directory's own descriptor
  while readdir(directory) != nil { count += 1 }
  return count - 2  // "." and ".."
}

func readFile(_ path: String) -> String? {
  let fd = open(path, O_RDONLY | O_CLOEXEC)
  guard fd >= 0 else { return nil }
  defer { close(fd) }
  var result: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 4096)
  while true {
    let n = read(fd, &chunk, chunk.count)
    if n <= 0 { break }
    result += chunk[0..<n]
  }
  return String(decoding: result, as: UTF8.self)
}

/// Waits (generously, polling: this is a test) until `condition` holds; false if it never did.
func eventually(within seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
  let deadline = Double(EventLoopClock.now()) + seconds * 1e9
  while Double(EventLoopClock.now()) < deadline {
    if condition() { return true }
    try? await Task.sleep(for: .milliseconds(10))
  }
  return condition()
}

enum EventLoopClock {
  static func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
  }
}

/// Runs `body` and returns the SpawnError it throws; nil if it did not throw one.
func spawnError(_ body: () async throws -> Void) async -> SpawnError? {
  do {
    try await body()
    return nil
  } catch {
    return error as? SpawnError
  }
}

