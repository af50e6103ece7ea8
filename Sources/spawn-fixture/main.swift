// A tiny daemon with scripted startup behaviours, for the spawn tests. Its arguments are
// steps, run in order:
//
//   say TEXT        print TEXT on stdout          err TEXT     print TEXT on stderr
//   sleep MS        sleep MS milliseconds         exit N       exit with status N
//   notify FD TEXT  write "TEXT\n" to FD, close   close FD     close FD
//   sd MESSAGE      send MESSAGE as one datagram to $NOTIFY_SOCKET (sd_notify)
//   signal NAME     die of signal NAME (SEGV, ABRT, KILL...), the default action
//   ignore-term     ignore SIGTERM from now on    pause        sleep until killed
//   fds FD          write the open descriptors ("0 1 2 3") as a line to FD, close it
//   caller STEPS... start `spawn-fixture STEPS...` with the Spawn library, never confirmed;
//                   write "<daemon pid> <monitor pid>" to fd 3 and pause (a caller to kill)
//   reuse-pid       as pid 1 of a new pid namespace: force a pid reuse, try a safe stop of
//                   the old identity, write "<outcome> reused=<yes|no> alive=<yes|no>" to fd 3
//   workload N C    N spawns one after another, then C at once, of every outcome, with the
//                   Spawn library; write "<outcome counts>; fds <before> -> <after>; zombies <n>"
//                   to fd 3, and pause (a process of its own, so no other test's descriptors count)
#if canImport(Glibc)
import Glibc
#endif
import CSpawn
import Spawn

func line(_ text: String, to fd: Int32) {
  let bytes = Array((text + "\n").utf8)
  _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}

func die(_ message: String) -> Never {
  line("spawn-fixture: \(message)", to: 2)
  exit(100)
}

let signals: [String: Int32] = ["SEGV": SIGSEGV, "ABRT": SIGABRT, "KILL": SIGKILL, "TERM": SIGTERM, "BUS": SIGBUS]

func run(_ arguments: ArraySlice<String>) async -> Never {
  var steps = arguments
  func next(_ what: String) -> String {
    guard let value = steps.popFirst() else { die("\(what) expected") }
    return value
  }
  func number(_ what: String) -> Int32 {
    guard let value = Int32(next(what)) else { die("\(what) must be a number") }
    return value
  }
  while let step = steps.popFirst() {
    switch step {
    case "say": line(next("text"), to: 1)
    case "err": line(next("text"), to: 2)
    case "sleep": usleep(UInt32(number("milliseconds")) * 1000)
    case "exit": exit(number("status"))
    case "notify":
      let fd = number("descriptor")
      line(next("text"), to: fd)
      close(fd)
    case "close": close(number("descriptor"))
    case "sd": sendNotification(next("message"))
    case "signal":
      guard let signal = signals[next("signal name")] else { die("unknown signal") }
      Glibc.signal(signal, SIG_DFL)  // the Swift runtime's crash handler must not intervene
      kill(getpid(), signal)
      pause()
    case "ignore-term": Glibc.signal(SIGTERM, SIG_IGN)
    case "pause": while true { pause() }
    case "fds":
      let fd = number("descriptor")
      line(openDescriptors().map(String.init).joined(separator: " "), to: fd)
      close(fd)
    case "caller": await runCaller(Array(steps))
    case "reuse-pid": await reusePID()
    case "workload": await workload(sequential: Int(number("spawns")), concurrent: Int(number("concurrent spawns")))
    default: die("unknown step \(step)")
    }
  }
  exit(0)
}

/// sd_notify: one datagram to $NOTIFY_SOCKET ("@name" is abstract).
func sendNotification(_ message: String) {
  guard let address = getenv("NOTIFY_SOCKET").map({ String(cString: $0) }) else { die("no NOTIFY_SOCKET") }
  var storage = sockaddr_un()
  storage.sun_family = sa_family_t(AF_UNIX)
  var bytes = Array(address.utf8)
  if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
  withUnsafeMutableBytes(of: &storage.sun_path) { $0.copyBytes(from: bytes) }
  let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
  let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
  let sent = withUnsafePointer(to: storage) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
      Array(message.utf8).withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, address, length) }
    }
  }
  if sent < 0 { die("sendto NOTIFY_SOCKET failed: errno \(errno)") }
  close(fd)
}

func openDescriptors() -> [Int32] {
  guard let directory = opendir("/proc/self/fd") else { return [] }
  defer { closedir(directory) }
  let own = dirfd(directory)
  var result: [Int32] = []
  while let entry = readdir(directory) {
    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    if let fd = Int32(name), fd != own { result.append(fd) }
  }
  return result.sorted()
}

/// The descriptors a spawn could leave behind: all but the runtime's own timer and event
/// descriptors (`anon_inode:[timerfd]`, `[eventfd]`, `[eventpoll]`), which libdispatch may open
/// on a thread of its own at any moment (once seen between the two counts of `workload`).
func spawnDescriptors() -> [Int32] {
  openDescriptors().filter { fd in
    var buffer = [CChar](repeating: 0, count: 256)
    let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
    let target = String(decoding: buffer[0..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return !["anon_inode:[timerfd]", "anon_inode:[eventfd]", "anon_inode:[eventpoll]"].contains(target)
  }
}

func ownPath() -> String {
  var buffer = [CChar](repeating: 0, count: 4096)
  let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
  return String(decoding: buffer[0..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A caller in the middle of a spawn, to be SIGKILLed by a test.
func runCaller(_ daemonSteps: [String]) async -> Never {
  let spawner = Spawner()
  let command = SpawnCommand(what: "caller's daemon", executable: ownPath(), arguments: daemonSteps, timeout: .seconds(3600))
  do {
    let daemon = try await spawner.start(command, readiness: .check(awaiting: "nothing") { @Sendable _ in
      try await Task.sleep(for: .seconds(3600))
      return "never"
    })
    line("\(daemon.pid) \(daemon.monitorPID)", to: 3)
    close(3)
    while true { withExtendedLifetime(daemon) { _ = pause() } }
  } catch {
    die("\(error)")
  }
}

/// Pid 1 of a fresh pid namespace: start A, record it, end it, make the kernel give A's pid
/// to B (ns_last_pid), then safely stop A's identity: B must be left alone.
func reusePID() async {
  func start() -> Int32 {
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("1000"), nil]
    let environment: [UnsafeMutablePointer<CChar>?] = [nil]
    let null = open("/dev/null", O_RDWR)
    let fds = [cspawn_fd_mapping(source: null, target: 0), cspawn_fd_mapping(source: null, target: 1), cspawn_fd_mapping(source: null, target: 2)]
    var pidfd: Int32 = -1
    var execErrno: Int32 = 0
    let pid = argv.withUnsafeBufferPointer { argv in
      environment.withUnsafeBufferPointer { environment in
        fds.withUnsafeBufferPointer { fds in
          var request = cspawn_exec_request(
            path: argv[0].map { UnsafePointer($0) }, argv: argv.baseAddress, envp: environment.baseAddress, working_directory: nil,
            fds: fds.baseAddress, fd_count: 3, new_session: 0, confinement: nil, set_niceness: 0, niceness: 0)
          return cspawn_spawn(&request, Int32(CSPAWN_FORK_PLAIN), &pidfd, &execErrno)
        }
      }
    }
    close(null)
    if pid <= 0 { die("spawn failed: errno \(errno)") }
    return pid
  }
  let first = start()
  guard let identity = try? ProcessIdentity.of(pid: first) else { die("no identity for \(first)") }
  kill(first, SIGKILL)
  var status: Int32 = 0
  waitpid(first, &status, 0)
  usleep(50_000)  // start times count in clock ticks (10 ms): let the reuse be a later one
  let lastPID = open("/proc/sys/kernel/ns_last_pid", O_WRONLY)
  line("\(first - 1)", to: lastPID)
  close(lastPID)
  let second = start()
  let outcome = try? await Spawner().stop(identity, grace: .seconds(1))
  let alive = kill(second, 0) == 0 && waitpid(second, &status, WNOHANG) == 0
  line("\(outcome.map { "\($0)" } ?? "error") reused=\(second == first ? "yes" : "no") alive=\(alive ? "yes" : "no")", to: 3)
  close(3)
  kill(second, SIGKILL)
  waitpid(second, &status, 0)
}


/// Spawns of every outcome; counts them, and the descriptors and zombies left.
func workload(sequential: Int, concurrent: Int) async -> Never {
  let spawner = Spawner()
  @Sendable func shell(_ script: String, timeout: Duration = .seconds(30)) -> SpawnCommand {
    SpawnCommand(what: "shell", executable: "/bin/sh", arguments: ["-c", script], timeout: timeout)
  }
  /// Spawn number `i`: one of five outcomes; returns its name.
  @Sendable func one(_ i: Int) async -> String {
    do throws(SpawnError) {
      switch i % 5 {
      case 0:
        let confirmed = try await spawner.spawn(shell("echo >&3; exec sleep 30"), readiness: .notificationPipe())
        _ = try await spawner.stop(confirmed.identity)
        return "confirmed"
      case 1: _ = try await spawner.spawn(shell("exit 3"), readiness: .notificationPipe())
      case 2:
        var command = shell("")
        command.executable = "/nonexistent/daemon"
        _ = try await spawner.spawn(command, readiness: .systemdNotify())
      case 3: _ = try await spawner.spawn(shell("exec sleep 30"), readiness: .systemdNotify(), abort: { _ in true })
      default: _ = try await spawner.spawn(shell("exec sleep 30", timeout: .milliseconds(1)), readiness: .notificationPipe())
      }
      return "confirmed"
    } catch {
      return error.code.name
    }
  }
  _ = await one(0)  // the loop's own descriptors exist before counting
  let before = spawnDescriptors().count
  var counts: [String: Int] = [:]
  for i in 0..<sequential { counts[await one(i), default: 0] += 1 }
  await withTaskGroup(of: String.self) { group in
    for i in 0..<concurrent { group.addTask { await one(i) } }
    for await outcome in group { counts[outcome, default: 0] += 1 }
  }
  let after = spawnDescriptors().count
  let me = getpid()
  let zombies = processChildren(of: me).filter { $0.state == "Z" }.count
  let summary = counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
  line("\(summary); fds \(before) -> \(after); zombies \(zombies)", to: 3)
  close(3)
  while true { pause() }  // a daemon: confirmed, then running until stopped
}

/// The children of `parent`, with their state letters, from /proc.
func processChildren(of parent: Int32) -> [(pid: Int32, state: Character)] {
  guard let directory = opendir("/proc") else { return [] }
  defer { closedir(directory) }
  var result: [(pid: Int32, state: Character)] = []
  while let entry = readdir(directory) {
    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    guard let pid = Int32(name) else { continue }
    let fd = open("/proc/\(pid)/stat", O_RDONLY)
    guard fd >= 0 else { continue }
    var buffer = [UInt8](repeating: 0, count: 1024)
    let n = read(fd, &buffer, buffer.count)
    close(fd)
    guard n > 0 else { continue }
    let text = String(decoding: buffer[0..<n], as: UTF8.self)
    guard let paren = text.lastIndex(of: ")") else { continue }
    let fields = text[text.index(paren, offsetBy: 2)...].split(separator: " ")
    if fields.count > 1, Int32(fields[1]) == parent, let state = fields[0].first { result.append((pid, state)) }
  }
  return result
}

await run(CommandLine.arguments.dropFirst())
