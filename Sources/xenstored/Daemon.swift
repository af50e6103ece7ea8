#if canImport(Glibc)
import Glibc
#endif
import CSpawn

/// Detaching without forking a Swift process: the command re-executes itself in the
/// foreground (`-N`) in a new session via `posix_spawn`, waits for the child's readiness
/// newline on a pipe, and exits — 0 once the daemon listens, 1 if it failed to start.
enum Daemon {
  static func detach(readyFD: Int32?) -> Int32 {
    // Both ends close-on-exec from the start (no other thread's spawn inherits them); the
    // child gets the write end as `childReadyFD` by dup2, which clears the flag there.
    var fds: [Int32] = [0, 0]
    guard cspawn_pipe_cloexec(&fds) == 0 else { return fail("pipe2") }
    let (readEnd, writeEnd) = (fds[0], fds[1])
    let childReadyFD: Int32 = writeEnd == 3 ? 4 : 3

    var arguments = childArguments()
    arguments += ["--no-fork", "--ready-fd", String(childReadyFD)]
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, writeEnd, childReadyFD)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    posix_spawnattr_setflags(&attributes, Int16(0x80))  // POSIX_SPAWN_SETSID (glibc)
    defer {
      posix_spawn_file_actions_destroy(&actions)
      posix_spawnattr_destroy(&attributes)
    }
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv, environ)
    close(writeEnd)
    guard rc == 0 else { errno = rc; return fail("posix_spawn") }

    var byte: UInt8 = 0
    var n: Int
    repeat { n = read(readEnd, &byte, 1) } while n < 0 && errno == EINTR
    close(readEnd)
    if n == 1 {
      if let readyFD { Readiness.signal(fd: readyFD) }
      return 0
    }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    printError("xenstored: the daemon failed to start (status \(code))")
    return 1
  }

  /// This command's arguments without `--ready-fd` (the parent answers that one itself).
  private static func childArguments() -> [String] {
    var out: [String] = []
    var skipNext = false
    for arg in CommandLine.arguments {
      if skipNext { skipNext = false; continue }
      if arg == "--ready-fd" { skipNext = true; continue }
      if arg.hasPrefix("--ready-fd=") { continue }
      out.append(arg)
    }
    return out
  }

  private static func fail(_ what: String) -> Int32 {
    printError("xenstored: \(what) failed: \(String(cString: strerror(errno)))")
    return 1
  }
}

/// Writes a line to stderr (fd 2).
func printError(_ line: String) {
  var text = line + "\n"
  text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
