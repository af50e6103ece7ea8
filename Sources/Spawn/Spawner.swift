#if canImport(Glibc)
import Glibc
#endif
import CSpawn
import Reactor
import Synchronization

/// Starts daemons that must confirm their startup, and knows for certain whether they did.
///
/// Two phases, as libxl has them: `start` returns as soon as the daemon's pid is known (after
/// the recording hook ran), with a handle; `SpawnedDaemon.confirm` later waits for the
/// outcome. The caller is never the daemon's parent: a startup monitor (the intermediate of
/// a double fork, in C) forks it, reports its pid and, should it die during startup, its
/// wait status. On confirmation the monitor exits and the daemon lives on, reparented.
public final class Spawner: Sendable {
  /// Who reaps the spawner's children (the startup monitors; the daemons are theirs).
  public enum Reaping: Sendable, Hashable {
    /// The spawner reaps only its own monitors, by `waitid(P_PIDFD)` (else `P_PID`), never
    /// `waitpid(-1)`. The default.
    case selective
    /// The caller owns SIGCHLD and reaps every child itself; it hands each reaped child to
    /// `reaped(pid:status:)`, which says whether it was one of the spawner's.
    case byCaller
  }

  public let loop: EventLoop
  public let reaping: Reaping
  package let system: SystemCalls
  /// byCaller: the monitors not yet reaped, by pid.
  private let monitors = Mutex<[Int32: Startup]>([:])

  public convenience init(loop: EventLoop = .shared, reaping: Reaping = .selective) {
    self.init(loop: loop, reaping: reaping, system: .live)
  }

  /// With replaced system calls: this package's tests inject failures through them.
  package init(loop: EventLoop = .shared, reaping: Reaping = .selective, system: SystemCalls) {
    self.loop = loop
    self.reaping = reaping
    self.system = system
  }

  /// Starts `command`, to be confirmed by `readiness`.
  ///
  /// Returns once the daemon's pid is known and `record` (if any) has run with its identity
  /// (e.g. to write it to xenstore). If `record` throws, the daemon is stopped and
  /// `SpawnError.Code.recordFailed` thrown. The timeout runs from now. Cancelling the task
  /// aborts the spawn (the daemon is stopped).
  public func start(
    _ command: SpawnCommand, readiness: some ReadinessSource,
    record: (@Sendable (ProcessIdentity) async throws -> Void)? = nil
  ) async throws(SpawnError) -> SpawnedDaemon {
    let startup = try launch(command, readiness: readiness)
    let loop = self.loop
    let started = await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        loop.execute { startup.awaitStart(continuation) }
      }
    } onCancel: {
      loop.execute { startup.abort(detail: "the task was cancelled") }
    }
    let identity = try started.get()
    let daemon = SpawnedDaemon(startup: startup, identity: identity)
    if let record {
      do {
        try await record(identity)
      } catch {
        loop.execute { startup.recordFailed("\(error)") }
        _ = try await daemon.confirm()
      }
    }
    loop.execute { startup.allowDetach() }
    return daemon
  }

  /// `start` and `confirm` in one.
  public func spawn(
    _ command: SpawnCommand, readiness: some ReadinessSource,
    record: (@Sendable (ProcessIdentity) async throws -> Void)? = nil,
    abort: (@Sendable (SpawnProgress) -> Bool)? = nil
  ) async throws(SpawnError) -> SpawnConfirmation {
    try await start(command, readiness: readiness, record: record).confirm(abort: abort)
  }

  /// For `Reaping.byCaller`: the caller reaped `pid` with wait status `status`. Returns true
  /// if it was one of the spawner's monitors (the spawner then takes it from there).
  public func reaped(pid: Int32, status: Int32) -> Bool {
    guard let startup = monitors.withLock({ $0.removeValue(forKey: pid) }) else { return false }
    loop.execute { startup.monitorReapedByCaller(WaitStatus(rawValue: status)) }
    return true
  }

  // MARK: Launching

  /// Everything up to and including the fork, synchronously: open stdio and the log,
  /// prepare readiness, make the control socket, fork the monitor.
  private func launch(_ command: SpawnCommand, readiness: some ReadinessSource) throws(SpawnError) -> Startup {
    let began = EventLoop.now()
    func failed(_ call: String, _ error: SystemErrno) -> SpawnError {
      SpawnError(.spawnFailed, what: command.what, elapsed: .nanoseconds(Int64(EventLoop.now() - began)), errno: error, detail: call)
    }
    if let confinement = command.confinement {
      guard confinement.uid != 0 else {
        throw SpawnError(.invalidCommand, what: command.what, detail: "a confined daemon must not run as uid 0")
      }
      guard confinement.groups.count <= Int(CSPAWN_MAX_GROUPS) else {
        throw SpawnError(.invalidCommand, what: command.what, detail: "more than \(CSPAWN_MAX_GROUPS) groups")
      }
    }
    guard !command.executable.isEmpty else {
      throw SpawnError(.invalidCommand, what: command.what, detail: "no executable")
    }
    var plan = LaunchPlan(
      what: command.what, system: system, environment: command.environment ?? LaunchPlan.inheritedEnvironment())
    for (target, source) in command.passedDescriptors.sorted(by: { $0.key < $1.key }) {
      plan.pass(source, as: target, closeAfterStart: false)
    }

    // stdin from /dev/null; stdout and stderr appended to the log, whose end marks this spawn.
    let input: Int32
    do { input = try system.open("/dev/null", O_RDONLY, 0) } catch { throw failed("open /dev/null", error) }
    let output: Int32
    var log: LogFile?
    do {
      if let path = command.logPath {
        output = try system.open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        log = LogFile(path: path, offset: (try? system.seekEnd(output)) ?? 0)
      } else {
        output = try system.open("/dev/null", O_WRONLY, 0)
      }
    } catch {
      system.close(input)
      throw failed("open \(command.logPath ?? "/dev/null")", error)
    }
    defer {
      system.close(input)
      system.close(output)
    }

    let wait: any ReadinessWait
    do { wait = try readiness.prepare(&plan) } catch {
      plan.closeOwned()
      throw error
    }
    let ends: (Int32, Int32)
    do {
      try validate(plan)
    } catch {
      plan.closeOwned()
      wait.close()
      throw error
    }
    do { ends = try system.socketPair() } catch {
      plan.closeOwned()
      wait.close()
      throw failed("socketpair", error)
    }
    let (control, monitorEnd) = ends
    defer { system.close(monitorEnd) }

    var fds = [
      cspawn_fd_mapping(source: input, target: 0), cspawn_fd_mapping(source: output, target: 1),
      cspawn_fd_mapping(source: output, target: 2),
    ]
    fds += plan.passed.map { cspawn_fd_mapping(source: $0.source, target: $0.target) }
    let executable = Spawner.resolve(command.executable)
    let forked: Result<Startup, SystemErrno> = withMonitorRequest(
      path: executable, argv: [command.executable] + command.arguments,
      environment: plan.environment.map { "\($0.key)=\($0.value)" }, workingDirectory: command.workingDirectory,
      fds: fds, confinement: command.confinement, niceness: command.niceness, control: monitorEnd
    ) { request in
      // Held across the fork, so a caller that reaps by itself cannot report the monitor
      // before it is known to be ours.
      monitors.withLock { monitors in
        do throws(SystemErrno) {
          let monitor = try forkMonitor(request)
          let startup = Startup(
            loop: loop, spawner: self, command: command, executable: executable, began: began, log: log,
            awaiting: readiness.awaiting, readiness: wait, control: control, monitorPID: monitor.pid,
            monitorPIDFD: monitor.pidfd)
          if reaping == .byCaller { monitors[monitor.pid] = startup }
          return .success(startup)
        } catch {
          return .failure(error)
        }
      }
    }
    plan.closeOwned()
    let startup: Startup
    switch forked {
    case .success(let value): startup = value
    case .failure(let error):
      wait.close()
      system.close(control)
      throw failed("fork", error)
    }
    loop.execute { startup.begin() }
    return startup
  }

  /// clone3 with a pidfd; where the kernel has no clone3, fork then pidfd_open (race-free:
  /// the monitor is our unreaped child); where it has no pidfds either, no pidfd.
  private func forkMonitor(_ request: SystemCalls.MonitorRequest) throws(SystemErrno) -> (pid: Int32, pidfd: Int32?) {
    do {
      return try system.startMonitor(request, .clone3)
    } catch where error == .ENOSYS {
      let pid = try system.startMonitor(request, .fork).pid
      // A caller that reaps by itself could reap the monitor before pidfd_open: no pidfd then.
      guard reaping == .selective else { return (pid, nil) }
      return (pid, try? system.pidfdOpen(pid))
    }
  }

  private func validate(_ plan: LaunchPlan) throws(SpawnError) {
    var targets: Set<Int32> = []
    for passed in plan.passed {
      guard passed.target >= 3, passed.source >= 0 else {
        throw SpawnError(.invalidCommand, what: plan.what, detail: "descriptor \(passed.target) cannot be passed (0-2 are stdio)")
      }
      guard targets.insert(passed.target).inserted else {
        throw SpawnError(.invalidCommand, what: plan.what, detail: "descriptor \(passed.target) is passed twice")
      }
    }
    guard plan.passed.count + 3 <= Int(CSPAWN_MAX_FDS) else {
      throw SpawnError(.invalidCommand, what: plan.what, detail: "more than \(CSPAWN_MAX_FDS - 3) descriptors passed")
    }
  }

  /// A name without a slash is looked up in the caller's PATH, as execvp would; not found,
  /// it is left as is and exec reports ENOENT from the real attempt.
  static func resolve(_ executable: String) -> String {
    if executable.contains("/") { return executable }
    let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
    for directory in path.split(separator: ":") where !directory.isEmpty {
      let candidate = "\(directory)/\(executable)"
      if access(candidate, X_OK) == 0 { return candidate }
    }
    return executable
  }
}

/// Builds the C request (strings copied to C memory, freed after) and runs `body` with it.
private func withMonitorRequest<T>(
  path: String, argv: [String], environment: [String], workingDirectory: String?, fds: [cspawn_fd_mapping],
  confinement: Confinement?, niceness: Int32?, control: Int32, _ body: (SystemCalls.MonitorRequest) -> T
) -> T {
  let path = strdup(path)
  let directory = workingDirectory.map { strdup($0) }
  let argv = argv.map { strdup($0) } + [nil]
  let environment = environment.map { strdup($0) } + [nil]
  defer {
    free(path)
    if let directory { free(directory) }
    for pointer in argv + environment { free(pointer) }
  }
  return argv.withUnsafeBufferPointer { argv in
    environment.withUnsafeBufferPointer { environment in
      fds.withUnsafeBufferPointer { fds in
        var request = cspawn_monitor_request()
        request.exec.path = UnsafePointer(path)
        request.exec.argv = argv.baseAddress
        request.exec.envp = environment.baseAddress
        request.exec.working_directory = directory.flatMap { UnsafePointer($0) }
        request.exec.fds = fds.baseAddress
        request.exec.fd_count = Int32(fds.count)
        request.exec.new_session = 1
        request.exec.set_niceness = niceness == nil ? 0 : 1
        request.exec.niceness = niceness ?? 0
        request.control_fd = control
        guard let confinement else {
          return withUnsafePointer(to: &request) { body(SystemCalls.MonitorRequest(pointer: $0)) }
        }
        let groups = confinement.groups.map { gid_t($0) }
        return groups.withUnsafeBufferPointer { groups in
          var confine = cspawn_confinement(
            uid: uid_t(confinement.uid), gid: gid_t(confinement.gid), groups: groups.baseAddress,
            group_count: Int32(groups.count))
          return withUnsafePointer(to: &confine) { confine in
            request.exec.confinement = confine
            return withUnsafePointer(to: &request) { body(SystemCalls.MonitorRequest(pointer: $0)) }
          }
        }
      }
    }
  }
}
