#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Reactor
import Spawn
import TestSupport

/// What a finished peer program did.
package struct ProcessResult: CustomStringConvertible {
  /// Exit code, or 128 + signal.
  package let status: Int32
  package let stdout: String
  package let stderr: String
  package var description: String { "status \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }

  package init(status: Int32, stdout: String, stderr: String) {
    self.status = status
    self.stdout = stdout
    self.stderr = stderr
  }
}

/// Runs a peer program to completion with `environment` added and `stdin` fed, killing it after
/// `timeout` seconds (a hang fails the test instead of blocking CI). Its end is awaited on a
/// pidfd through the event loop: no thread is held while it runs (tests blocking both of the
/// cooperative pool's threads here stalled every other test for up to 45 s).
package func run(_ argv: [String], environment: [String: String] = [:], stdin: String = "",
         timeout: Int = 60) async throws -> ProcessResult {
  let directory = TemporaryDirectory("run")
  defer { directory.remove() }
  let input = directory.appending("stdin"), output = directory.appending("stdout"), errors = directory.appending("stderr")
  let fd = open(input, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
  var text = stdin
  text.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
  close(fd)

  let pid = try spawnProcess(argv, environment: environment) { actions in
    posix_spawn_file_actions_addopen(&actions, 0, input, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
  }
  let status = await waitForExit(pid, seconds: timeout)
  let code: Int32 = if let status {
    (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
  } else {
    -1   // timed out and killed
  }
  return ProcessResult(status: code, stdout: try readFile(output), stderr: try readFile(errors))
}

/// Waits for child `pid` to exit, `seconds` at most (then SIGKILL), and reaps it: its wait
/// status, or nil if it had to be killed. The calling task is suspended on its pidfd, no
/// thread is blocked.
@discardableResult
package func waitForExit(_ pid: pid_t, seconds: Int) async -> Int32? {
  guard let pidfd = try? SystemCalls.live.pidfdOpen(pid) else { return reap(pid, seconds: seconds) }
  defer { close(pidfd) }
  let exited = await isReadable(pidfd, within: seconds)
  if !exited {
    kill(pid, SIGKILL)  // not reaped yet: the pid is still this child's
    _ = await isReadable(pidfd, within: 30)
  }
  var status: Int32 = 0
  waitpid(pid, &status, 0)  // it has exited: this returns at once
  return exited ? status : nil
}

/// Suspends until `fd` is readable (a pidfd: its process has exited) or `seconds` pass;
/// whether it became readable. The fd and the timer are the event loop's.
private func isReadable(_ fd: Int32, within seconds: Int) async -> Bool {
  let loop = EventLoop.shared
  return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
    loop.execute {
      let timer = loop.schedule(afterNanoseconds: UInt64(seconds) * 1_000_000_000) {
        loop.deregister(fd)
        continuation.resume(returning: false)
      }
      loop.register(fd, for: .readable) { _ in
        loop.deregister(fd)
        loop.cancel(timer)
        continuation.resume(returning: true)
      }
    }
  }
}

/// Waits for child `pid` to exit, `seconds` at most (then SIGKILL), blocking the calling
/// thread: for clean-up where no `await` can be (a `defer`, a `stop()`), after a signal that
/// ends it at once. Anywhere else, `await waitForExit`.
@discardableResult
package func reap(_ pid: pid_t, seconds: Int) -> Int32? {
  var status: Int32 = 0
  if let pidfd = try? SystemCalls.live.pidfdOpen(pid) {
    defer { close(pidfd) }
    var fds = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
    if poll(&fds, 1, Int32(seconds * 1000)) == 1, waitpid(pid, &status, 0) == pid { return status }
  }
  kill(pid, SIGKILL)
  waitpid(pid, &status, 0)
  return nil
}

/// Runs a short clean-up command (say `userdel`) to its end, blocking the calling thread: for
/// a `defer`, where no `await` can be. Anywhere else, `await run`.
package func runInCleanup(_ argv: [String]) {
  guard let pid = try? spawnProcess(argv, environment: [:], { actions in
    for descriptor: Int32 in 0...2 {
      posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", descriptor == 0 ? O_RDONLY : O_WRONLY, 0)
    }
  }) else { return }
  reap(pid, seconds: 30)
}

/// Starts a peer program in the background (stdout to `output`); stop it with `waitForExit`.
package func spawnBackground(_ argv: [String], environment: [String: String], output: String) throws -> pid_t {
  try spawnProcess(argv, environment: environment) { actions in
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, output + ".err", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
  }
}

/// Starts `argv` with the given descriptors as its stdin, stdout and stderr (e.g. a
/// pseudo-terminal's slave); reap it with `waitpid`.
package func spawnWithStdio(_ argv: [String], environment: [String: String], stdin: Int32, stdout: Int32, stderr: Int32) throws -> pid_t {
  try spawnProcess(argv, environment: environment) { actions in
    posix_spawn_file_actions_adddup2(&actions, stdin, 0)
    posix_spawn_file_actions_adddup2(&actions, stdout, 1)
    posix_spawn_file_actions_adddup2(&actions, stderr, 2)
  }
}

/// posix_spawnp with the file actions `setUp` adds and `environment` over the test's own.
private func spawnProcess(
  _ argv: [String], environment: [String: String], _ setUp: (inout posix_spawn_file_actions_t) -> Void
) throws -> pid_t {
  var actions = posix_spawn_file_actions_t()
  posix_spawn_file_actions_init(&actions)
  defer { posix_spawn_file_actions_destroy(&actions) }
  setUp(&actions)
  let args = argv.map { strdup($0) } + [nil]
  defer { args.forEach { free($0) } }
  let env = environmentBlock(adding: environment)
  defer { env.forEach { free($0) } }
  var pid: pid_t = 0
  let rc = posix_spawnp(&pid, argv[0], &actions, nil, args, env)
  guard rc == 0 else { throw StartupError(description: "cannot run \(argv[0]): \(String(cString: strerror(rc)))") }
  return pid
}

/// Waits on a pidfd until `pid` — child or not — has exited, at most `seconds`. Returns
/// whether it did. Not `isAlive`: a killed multi-threaded process shows a zombie leader while
/// its other threads still exit and its descriptors (a listening socket) stay open; the pidfd
/// becomes readable only once every thread is gone.
package func awaitExit(_ pid: pid_t, seconds: Int32) async -> Bool {
  guard let pidfd = try? SystemCalls.live.pidfdOpen(pid) else { return !isAlive(pid) }
  defer { close(pidfd) }
  return await isReadable(pidfd, within: Int(seconds))
}

/// `awaitExit` blocking the calling thread: for clean-up where no `await` can be (a `stop()`
/// called from a `defer`), after a signal that ends the process at once.
package func awaitExitInCleanup(_ pid: pid_t, seconds: Int32) -> Bool {
  guard let pidfd = try? SystemCalls.live.pidfdOpen(pid) else { return !isAlive(pid) }
  defer { close(pidfd) }
  var fds = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
  return poll(&fds, 1, seconds * 1000) == 1
}

/// Runs `body` — a blocking wait (a program run to its end, a console read) — on a thread of
/// its own, not on Swift's cooperative pool: on 2 cores, two tests blocking the pool for
/// seconds would stall every other test's tasks (a spawn's readiness wait among them).
package func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { continuation in
    let thread = Thread { continuation.resume(with: Result { try body() }) }
    thread.start()
  }
}
