#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Logging
import XenStore
import XenStoreDaemon

/// `xenstored`: the xenstore daemon. Finds its socket as C xenstored does, serves until
/// SIGTERM or SIGINT, and reports readiness to systemd (`NOTIFY_SOCKET`) and s6-style
/// supervisors (`--ready-fd`).
@main
struct Xenstored: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "xenstored",
    abstract: "Serve the xenstore wire protocol on a Unix socket.",
    discussion: """
      The socket is $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, else \
      /var/run/xenstored/socket (mode 0600: dom0's). Each introduced domain gets \
      <socket>.d/domain-<domid>, through which a process acts as that unprivileged domain.
      Without -N the daemon detaches and the command returns once it is listening.
      """)

  @Flag(name: [.customShort("N"), .customLong("no-fork")], help: "Stay in the foreground.")
  var noFork = false

  @Option(name: [.customShort("F"), .customLong("pid-file")], help: "Write the daemon's pid to this file.")
  var pidFile: String?

  @Option(name: [.customShort("T"), .customLong("trace-file")], help: "Log every request, reply and event to this file.")
  var traceFile: String?

  @Option(name: .customLong("ready-fd"), help: "Write a newline to this fd once listening, then close it.")
  var readyFD: Int32?

  @Option(name: .customLong("socket"), help: "Socket path (overrides the environment).")
  var socket: String?

  @Flag(name: [.customShort("V"), .customLong("verbose")], help: "Log debug messages to stderr.")
  var verbose = false

  @Flag(name: [.customShort("D"), .customLong("no-domain-init")], help: "Accepted for compatibility; no effect.")
  var noDomainInit = false

  @Option(name: .customLong("state-dir"), help: ArgumentHelp(
    "Keep the tree, permissions and domains in this directory across crashes and restarts.",
    discussion: "Every change is on disk before its reply. Without it: memory only, as Xen's xenstored."))
  var stateDir: String?

  @Flag(name: .customLong("recover"), help: ArgumentHelp(
    "Recover a damaged --state-dir and exit: keep everything before the damage, move the damaged files aside."))
  var recover = false

  @Option(name: .customLong("log-file"), help: ArgumentHelp(
    "Write the log (stdout and stderr) to this file, rotated as libxl rotates logs.",
    discussion: "Past --log-size bytes it becomes FILE.1 (… FILE.10); SIGHUP reopens it."))
  var logFile: String?

  @Option(name: .customLong("log-size"), help: "Bytes after which --log-file is rotated.")
  var logSize: Int = 1 << 20

  @Option(name: .customLong("compact-after"), help: ArgumentHelp("Log bytes after which a snapshot is written.", visibility: .hidden))
  var compactAfter: Int = 16 << 20

  func validate() throws {
    if recover && stateDir == nil { throw ValidationError("--recover needs --state-dir") }
    if compactAfter < 1 { throw ValidationError("--compact-after must be positive") }
    if logSize < 1 { throw ValidationError("--log-size must be positive") }
  }

  func run() throws {
    let socketPath = socket ?? Self.defaultSocketPath()
    if recover, let stateDir {
      throw ExitCode(Self.recover(stateDir))
    }
    if !noFork {
      throw ExitCode(Daemon.detach(readyFD: readyFD))
    }
    let outputLog: OutputLog?
    do {
      outputLog = try logFile.map { path throws(OutputLogError) in try OutputLog(path: path, limit: logSize) }
    } catch {
      printError("xenstored: \(error)")
      throw ExitCode.failure
    }
    // Signals are taken synchronously by this thread: block them before any thread starts.
    var signals = sigset_t()
    sigemptyset(&signals)
    for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, s) }
    pthread_sigmask(SIG_BLOCK, &signals, nil)
    signal(SIGPIPE, SIG_IGN)

    let level: Logger.Level = verbose ? .debug : .info
    let rotation = outputLog.map(OutputLogRotation.init)
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label)
      handler.logLevel = level
      guard let rotation else { return handler }
      return RotatingLogHandler(inner: handler, rotation: rotation)
    }
    let logger = Logger(label: "xenstored")
    makeParentDirectory(of: socketPath)
    var configuration = XenstoredConfiguration(socketPath: socketPath, traceFile: traceFile, logger: logger)
    if let stateDir {
      configuration.durability = DurabilityConfiguration(stateDirectory: stateDir, compactionBytes: compactAfter)
    }
    let server = XenstoredServer(configuration)
    do {
      try server.start()
    } catch {
      logger.error("\(error.message)")
      throw ExitCode.failure
    }
    if let pidFile { writePIDFile(pidFile) }
    Readiness.notifySystemd()
    if let readyFD { Readiness.signal(fd: readyFD) }

    // The log is rotated as it is written (`RotatingLogHandler`): nothing to wake up for.
    while true {
      var received: Int32 = 0
      guard sigwait(&signals, &received) == 0 else { continue }
      if received == SIGHUP {
        server.reopenTrace()
        do throws(OutputLogError) { try rotation?.reopen() } catch { logger.error("\(error)") }
        continue
      }
      logger.info("stopping on signal \(received)")
      server.stop()
      if let pidFile { unlink(pidFile) }
      return
    }
  }

  /// `--recover`: the report on stdout; 0 once the directory is loadable, 1 if it cannot be.
  static func recover(_ stateDir: String) -> Int32 {
    do {
      print(try StateSalvage.recover(stateDirectory: stateDir))
      return 0
    } catch {
      printError("xenstored: cannot recover \(stateDir): \(error.message)")
      return 1
    }
  }

  /// C xenstored's (and libxenstore's) choice: XENSTORED_PATH, else XENSTORED_RUNDIR/socket.
  static func defaultSocketPath() -> String {
    if let path = getenv("XENSTORED_PATH"), path.pointee != 0 { return String(cString: path) }
    let rundir = getenv("XENSTORED_RUNDIR").map { String(cString: $0) } ?? "/var/run/xenstored"
    return rundir + "/socket"
  }

  private func makeParentDirectory(of path: String) {
    guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
    var partial = ""
    for component in path[..<slash].split(separator: "/") {
      partial += "/" + component
      mkdir(partial, 0o755)
    }
  }

  private func writePIDFile(_ path: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return }
    var text = "\(getpid())\n"
    text.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
    close(fd)
  }
}
