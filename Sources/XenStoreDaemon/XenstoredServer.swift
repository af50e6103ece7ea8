#if canImport(Glibc)
import Glibc
#endif
import CReactor
import Logging
import Reactor
import Synchronization
import XenStore

/// How to run a `XenstoredServer`.
public struct XenstoredConfiguration: Sendable {
  /// The dom0 (privileged) socket; created with mode 0600.
  public var socketPath: String
  /// Where per-domain sockets go: `<directory>/domain-<domid>`, one per introduced domain,
  /// mode 0600, removed on RELEASE. Defaults to `<socketPath>.d`.
  public var domainSocketDirectory: String
  /// If set, every request, reply and event is appended to this file.
  public var traceFile: String?
  public var quotas: Quotas
  /// A connection whose unread output exceeds this (watch events it never reads) is closed.
  public var maxQueuedOutputBytes: Int
  public var logger: Logger
  /// Keep the state in this directory across crashes and restarts (Persistence/,
  /// DURABILITY.md); nil: memory only, as Xen's xenstored.
  public var durability: DurabilityConfiguration?

  public init(socketPath: String, domainSocketDirectory: String? = nil, traceFile: String? = nil,
              quotas: Quotas = .xenDefaults, maxQueuedOutputBytes: Int = 1 << 20,
              logger: Logger = Logger(label: "xenstored")) {
    self.socketPath = socketPath
    self.domainSocketDirectory = domainSocketDirectory ?? socketPath + ".d"
    self.traceFile = traceFile
    self.quotas = quotas
    self.maxQueuedOutputBytes = maxQueuedOutputBytes
    self.logger = logger
  }
}

/// A xenstore daemon serving the wire protocol on Unix sockets, on a dedicated event-loop
/// thread: the main socket is dom0's, and each introduced domain gets a socket of its own
/// through which a process acts as that (unprivileged) domain.
///
/// ```swift
/// let server = XenstoredServer(XenstoredConfiguration(socketPath: "/run/xenstored/socket"))
/// try server.start()   // listening when it returns
/// server.stop()
/// ```
/// All mutable state is confined to the server's loop thread. A started server keeps itself
/// alive (its loop holds it) until `stop()`.
public final class XenstoredServer: @unchecked Sendable {
  public let configuration: XenstoredConfiguration
  private let loop: EventLoop
  private let lifecycle = Mutex<Lifecycle>(.created)
  private enum Lifecycle { case created, running, stopped }

  // Loop-confined.
  private let engine: XenStoreEngine
  private var logger: Logger
  private var listeners: [Int32: UInt32] = [:]           // fd → domid
  private var domainListeners: [UInt32: Int32] = [:]     // domid → fd
  private var clients: [ConnectionID: ClientConnection] = [:]
  private var touched: [ClientConnection] = []
  private var logRateLimit = LogRateLimit()
  private var tracer: Tracer?
  private var journal: Journal?
  /// What was loaded from the state directory at start, if there is one.
  public private(set) var recoveryReport: RecoveryReport?
  private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)

  /// Output above which a connection stops being read until its client catches up.
  private let readPauseBytes = 1 << 16

  public init(_ configuration: XenstoredConfiguration) {
    self.configuration = configuration
    logger = configuration.logger
    engine = XenStoreEngine(quotas: configuration.quotas, logger: configuration.logger)
    loop = EventLoop(name: "xenstored")
  }

  deinit {
    readBuffer.deallocate()
  }

  public var socketPath: String { configuration.socketPath }

  /// The socket through which a process connects as `domid` (present while it is introduced).
  public func domainSocketPath(for domid: UInt32) -> String {
    configuration.domainSocketDirectory + "/domain-\(domid)"
  }

  /// Claims the socket path (refusing if a live daemon answers there, replacing a stale
  /// socket file), listens, and returns: clients may connect as soon as this returns.
  public func start() throws(XenstoredError) {
    let state = lifecycle.withLock { s -> Lifecycle in
      let old = s
      if s == .created { s = .running }
      return old
    }
    guard state == .created else { throw XenstoredError(.listenFailed, "server already started") }
    do throws(XenstoredError) {
      try UnixSocket.claim(configuration.socketPath)
      if let traceFile = configuration.traceFile { tracer = try Tracer(path: traceFile) }
      if mkdir(configuration.domainSocketDirectory, 0o700) != 0 && errno != EEXIST {
        throw UnixSocket.failure(.listenFailed, "cannot create \(configuration.domainSocketDirectory)")
      }
      if let durability = configuration.durability {
        let journal = try Journal(durability, engine: engine, loop: loop, logger: logger)
        journal.deliver = { [unowned self] in handleOutput($0) }
        journal.released = { [unowned self] in flushTouched() }
        self.journal = journal
        recoveryReport = journal.report
        logger.info("state loaded: \(journal.report)", metadata: ["state-dir": "\(durability.stateDirectory)"])
      }
      let fd = try UnixSocket.listen(at: configuration.socketPath)
      listeners[fd] = 0
      engine.output = { [unowned self] in
        if let journal { journal.intercept($0) } else { handleOutput($0) }
      }
      loop.execute { [self] in
        watchListener(fd)
        engine.restoredDomains.forEach(openDomainSocket)
      }
      logger.info("xenstored listening", metadata: ["socket": "\(configuration.socketPath)"])
    } catch {
      journal?.close()
      lifecycle.withLock { $0 = .stopped }
      loop.shutdown()
      throw error
    }
  }

  /// Closes every connection and socket, removes the socket files, and stops the loop
  /// thread. Waits (briefly) for the loop to finish that work. Idempotent.
  public func stop() {
    let wasRunning = lifecycle.withLock { s -> Bool in
      defer { s = .stopped }
      return s == .running
    }
    guard wasRunning else { return }
    try? loop.runBlocking { [self] in teardown() }
    loop.shutdown()
    logger.info("xenstored stopped", metadata: ["socket": "\(configuration.socketPath)"])
  }

  /// Runs `body` with the engine on the loop thread (for inspection in tests and tools).
  public func withEngine<T: Sendable>(_ body: @escaping @Sendable (XenStoreEngine) -> T) async throws -> T {
    try await loop.submit { [self] in body(engine) }
  }

  /// Reopens the trace file (call on SIGHUP).
  public func reopenTrace() {
    loop.execute { [self] in tracer?.reopen() }
  }

  // MARK: Loop thread

  private func teardown() {
    journal?.close()
    for client in Array(clients.values) { closeClient(client) }
    for (fd, _) in listeners {
      loop.deregister(fd)
      close(fd)
    }
    listeners.removeAll()
    for domid in Array(domainListeners.keys) { unlink(domainSocketPath(for: domid)) }
    domainListeners.removeAll()
    unlink(configuration.socketPath)
    rmdir(configuration.domainSocketDirectory)
    engine.output = { _ in }
    tracer = nil
  }

  private func watchListener(_ fd: Int32) {
    loop.register(fd, for: .readable) { [self] _ in acceptAll(fd) }
  }

  private func acceptAll(_ listenFD: Int32) {
    guard let domid = listeners[listenFD] else { return }
    while true {
      // Non-blocking and close-on-exec from the start (accept4), not set by fcntl after.
      let fd = creactor_accept_nonblocking(listenFD)
      if fd < 0 {
        if errno == EINTR || errno == ECONNABORTED { continue }
        if errno == EMFILE || errno == ENFILE {
          // Out of descriptors: the pending connection stays readable and a level-triggered
          // loop would spin on it. Stop accepting for a moment instead.
          logger.warning("accept: out of file descriptors; pausing accepts for 100 ms")
          loop.deregister(listenFD)
          loop.schedule(afterNanoseconds: 100_000_000) { [self] in
            if listeners[listenFD] != nil { watchListener(listenFD) }
          }
        } else if errno != EAGAIN && errno != EWOULDBLOCK {
          logger.warning("accept failed", metadata: ["errno": "\(errno)"])
        }
        return
      }
      if domid != 0 && clients.values.lazy.filter({ $0.domid == domid }).count >= configuration.quotas.connections {
        logLimited(domid, .warning, "refusing a connection over the domain's quota", ["domid": "\(domid)"])
        close(fd)
        continue
      }
      let client = ClientConnection(fd: fd, id: engine.connect(domain: domid), domid: domid)
      clients[client.id] = client
      tracer?.note("CREATE \(client.id) domain \(domid)")
      logger.debug("connection opened", metadata: ["connection": "\(client.id)", "domid": "\(domid)"])
      loop.register(fd, for: .readable) { [self] events in ready(client, events) }
    }
  }

  private func ready(_ client: ClientConnection, _ events: EventLoop.Events) {
    if events.contains(.writable) || events.contains(.error) { touched.append(client) }
    if !client.isReadPaused && (events.contains(.readable) || events.contains(.hangup) || events.contains(.error)) {
      receive(client)
    }
    flushTouched()
  }

  /// Reads what the socket has and handles each whole message, until the client must wait
  /// for its replies to drain.
  private func receive(_ client: ClientConnection) {
    var reads = 0
    while reads < 8 {
      process(client)
      if client.isReadPaused || client.isDoomed { return }
      let n = read(client.fd, readBuffer.baseAddress, readBuffer.count)
      if n > 0 {
        client.decoder.append(UnsafeRawBufferPointer(rebasing: readBuffer[..<n]))
        reads += 1
        // A short read drained the socket: skip the read that would only say EAGAIN
        // (epoll is level-triggered and reports anything that arrives later).
        if n < readBuffer.count { break }
        continue
      }
      if n < 0 && errno == EINTR { continue }
      if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
      // EOF or a socket error: the client is gone.
      client.isDoomed = true
      touched.append(client)
      return
    }
    process(client)
  }

  /// Handles the decoded messages already buffered, pausing when the client is behind.
  private func process(_ client: ClientConnection) {
    while !client.isDoomed {
      if mustPause(client) {
        pauseReading(client)
        return
      }
      let message: Message?
      do {
        message = try client.decoder.next()
      } catch {
        logLimited(client.domid, .notice, "closing connection: \(error)", ["connection": "\(client.id)"])
        client.isDoomed = true
        touched.append(client)
        return
      }
      guard let message else { return }
      tracer?.message(message, outgoing: false, connection: client.id)
      engine.handle(message, from: client.id)
      journal?.requestHandled(message, from: client.id)
    }
  }

  /// Logs a line caused by `domid`'s connections, rate-limited per domain so that no
  /// domain can make the log grow without bound.
  private func logLimited(_ domid: UInt32, _ level: Logger.Level, _ text: String, _ metadata: Logger.Metadata) {
    let (allowed, suppressed) = logRateLimit.admit(domid)
    guard allowed else { return }
    var metadata = metadata
    if suppressed > 0 { metadata["suppressed-before"] = "\(suppressed)" }
    logger.log(level: level, "\(text)", metadata: metadata)
  }

  /// Backpressure: a client is not read while its replies pile up unread, and an unprivileged
  /// one not while it has `outstanding` requests unanswered.
  private func mustPause(_ client: ClientConnection) -> Bool {
    client.pendingBytes > readPauseBytes
      || (client.domid != 0 && client.pendingReplies >= configuration.quotas.outstanding)
  }

  private func pauseReading(_ client: ClientConnection) {
    guard !client.isReadPaused else { return }
    client.isReadPaused = true
    client.isWaitingToWrite = true
    loop.modify(client.fd, for: .writable)
  }

  private func handleOutput(_ output: EngineOutput) {
    switch output {
    case .message(let message, let id):
      guard let client = clients[id], !client.isDoomed else { return }
      tracer?.message(message, outgoing: true, connection: id)
      client.enqueue(message)
      if client.pendingBytes > configuration.maxQueuedOutputBytes {
        logLimited(client.domid, .warning, "closing connection that does not read its output",
                   ["connection": "\(id)", "queued": "\(client.pendingBytes)"])
        client.isDoomed = true
      }
      touched.append(client)
    case .close(let id):
      if let client = clients[id] { client.isDoomed = true; touched.append(client) }
    case .introduced(let domid):
      openDomainSocket(domid)
    case .released(let domid):
      closeDomainSocket(domid)
    }
  }

  private func flushTouched() {
    while let client = touched.popLast() {
      guard clients[client.id] === client else { continue }
      if client.isDoomed { closeClient(client); continue }
      switch client.flush() {
      case .failed:
        closeClient(client)
      case .blocked:
        if !client.isWaitingToWrite {
          client.isWaitingToWrite = true
          loop.modify(client.fd, for: client.isReadPaused ? .writable : [.readable, .writable])
        }
      case .done:
        let resume = client.isReadPaused && !mustPause(client)
        if resume || client.isWaitingToWrite {
          client.isReadPaused = client.isReadPaused && !resume
          client.isWaitingToWrite = false
          loop.modify(client.fd, for: .readable)
        }
        if resume {
          // Requests may already be buffered: handle them now rather than wait for new bytes.
          receive(client)
          touched.append(client)
        }
      }
    }
  }

  private func closeClient(_ client: ClientConnection) {
    guard clients.removeValue(forKey: client.id) != nil else { return }
    _ = client.flush()   // best effort, never blocking: replies to a client that half-closed
    engine.disconnect(client.id)
    loop.deregister(client.fd)
    close(client.fd)
    tracer?.note("DESTROY \(client.id)")
    logger.debug("connection closed", metadata: ["connection": "\(client.id)"])
  }

  private func openDomainSocket(_ domid: UInt32) {
    guard domid != 0, domainListeners[domid] == nil else { return }
    let path = domainSocketPath(for: domid)
    do {
      try UnixSocket.claim(path)
      let fd = try UnixSocket.listen(at: path)
      listeners[fd] = domid
      domainListeners[domid] = fd
      watchListener(fd)
    } catch {
      logger.error("cannot open the domain's socket: \(error)", metadata: ["domid": "\(domid)"])
    }
  }

  private func closeDomainSocket(_ domid: UInt32) {
    guard let fd = domainListeners.removeValue(forKey: domid) else { return }
    listeners[fd] = nil
    loop.deregister(fd)
    close(fd)
    unlink(domainSocketPath(for: domid))
  }
}
