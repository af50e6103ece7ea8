#if canImport(Glibc)
import Glibc
#endif
import Spawn
import XenStore

/// Finds the xenstore daemon as libxenstore does (`XENSTORED_PATH`, `XENSTORED_RUNDIR/socket`,
/// `/var/run/xenstored/socket`) and, when nobody answers there, starts the project's own
/// `xenstored` on that very path, so later `xl` runs (and Xen's own clients) find it.
///
/// The start is serialised by a lock file in the run directory (`xenstored-start.lock`), so
/// concurrent `xl create`s start one daemon between them. The daemon is started through the
/// spawn library, confirmed by its readiness descriptor (`--ready-fd 3`), and detached: it
/// outlives `xl`. Its output goes to `xenstored.log` in the log directory, which the daemon
/// rotates itself (`--log-file`: past 1 MiB, keeping ten old logs).
///
/// The daemon keeps its state in `paths.xenstoredStateDirectory` (`--state-dir`): if it dies,
/// the next `xl` starts it again with every record it acknowledged, the device models'
/// identities among them, so they can still be stopped safely. A damaged state makes the
/// start fail with the daemon's own words (which name the file and the `--recover` command).
public struct XenStoreConnector: Sendable {
  public var socketPath: String
  /// The `xenstored` to start: by default the one next to the running `xl`.
  public var xenstoredExecutable: String
  public var paths: ToolstackPaths
  public var spawner: Spawner
  /// How long the daemon has to say it is listening.
  public var startTimeout: Duration = .seconds(10)

  public init(
    socketPath: String = XenStoreSocketPath.current, xenstoredExecutable: String = XenStoreConnector.siblingXenstored(),
    paths: ToolstackPaths, spawner: Spawner
  ) {
    self.socketPath = socketPath
    self.xenstoredExecutable = xenstoredExecutable
    self.paths = paths
    self.spawner = spawner
  }

  /// `xenstored` in the directory of the running executable (`/proc/self/exe`).
  public static func siblingXenstored() -> String {
    guard let exe = currentExecutable, let slash = exe.lastIndex(of: "/") else { return "xenstored" }
    return String(exe[..<slash]) + "/xenstored"
  }

  /// The running executable's absolute path (`/proc/self/exe`), if it can be read.
  public static var currentExecutable: String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { return nil }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// A connection to the running daemon, or nil when none answers (no socket, nobody
  /// listening on it, a file where a directory should be). Other failures (EACCES, a path
  /// too long) are errors.
  public func connectIfRunning() async throws(XenLightError) -> XenStoreClient? {
    do {
      return try await XenStoreClient.connect(to: socketPath, loop: spawner.loop)
    } catch let error as XenStoreError
      where error.code == .connectFailed && [ENOENT, ECONNREFUSED, ENOTDIR].contains(error.errno ?? 0)
    {
      return nil
    } catch {
      throw XenLightError(.xenstore, "cannot connect to xenstore: \(Self.describe(error))", cause: .init(error))
    }
  }

  /// Whether the embedded daemon has a saved store: its state directory exists (the daemon
  /// creates it on its first start), so domains whose device models may still run are recorded.
  public var hasSavedState: Bool { access(paths.xenstoredStateDirectory, F_OK) == 0 }

  /// A connection to the running daemon; when none answers but a saved state exists, the
  /// daemon is started on that state first (for `list` and `destroy`: its records are the
  /// only safe way to find and stop those device models). Nil when there is neither.
  public func connectRestoringSavedState(started: @Sendable (SpawnConfirmation) -> Void = { _ in }) async throws(XenLightError) -> XenStoreClient? {
    if let client = try await connectIfRunning() { return client }
    guard hasSavedState else { return nil }
    return try await connect(started: started)
  }

  /// A connection, starting `xenstored` first if none answers. `started` is called once if
  /// this call started the daemon (with what confirmed it), before connecting to it.
  public func connect(started: @Sendable (SpawnConfirmation) -> Void = { _ in }) async throws(XenLightError) -> XenStoreClient {
    if let client = try await connectIfRunning() { return client }
    do {
      let lock = try await FileLock.acquire(paths.runDirectory + "/xenstored-start.lock")
      defer { lock.release() }
      // Someone holding the lock before us may have started it.
      if let client = try await connectIfRunning() { return client }
      try ToolstackPaths.makeDirectories(paths.logDirectory)
      try ToolstackPaths.makeDirectories(paths.libDirectory)
      if let slash = socketPath.lastIndex(of: "/"), slash != socketPath.startIndex {
        try ToolstackPaths.makeDirectories(String(socketPath[..<slash]))
      }
      return try await start(started: started)
    } catch where error.code == .io {
      throw XenLightError(.xenstore, "no xenstored answers at \(socketPath), and xl cannot start one: \(error.message)", errno: error.errno)
    }
  }

  private func start(started: @Sendable (SpawnConfirmation) -> Void) async throws(XenLightError) -> XenStoreClient {
    let command = SpawnCommand(
      what: "xenstored", executable: xenstoredExecutable, arguments: [
        "-N", "--ready-fd", "3", "--socket", socketPath, "--state-dir", paths.xenstoredStateDirectory,
        "--log-file", paths.xenstoredLog,
      ],
      logPath: paths.xenstoredLog, timeout: startTimeout)
    let confirmation: SpawnConfirmation
    do throws(SpawnError) {
      confirmation = try await spawner.spawn(command, readiness: .notificationPipe(descriptor: 3))
    } catch {
      if error.code == .aborted { throw XenLightError(.interrupted, "interrupted while starting xenstored", cause: .spawn(error)) }
      throw XenLightError(.xenstore, "no xenstored answers at \(socketPath), and starting one failed: \(error)", cause: .spawn(error))
    }
    started(confirmation)
    guard let client = try await connectIfRunning() else {
      throw XenLightError(.xenstore, "xenstored [\(confirmation.pid)] said it was ready, but \(socketPath) does not answer")
    }
    return client
  }

  static func describe(_ error: any Error) -> String {
    (error as? XenStoreError)?.description ?? "\(error)"
  }

  /// `what` failed because of `error`: `.xenstoreLost` if the connection went, else `.xenstore`.
  static func failure(_ what: String, _ error: any Error) -> XenLightError {
    if let error = error as? XenStoreError, error.code == .connectionLost {
      return XenLightError(.xenstoreLost, "\(what): \(error.message)", cause: .xenstore(error))
    }
    return XenLightError(.xenstore, "\(what): \(describe(error))", cause: .init(error))
  }
}
