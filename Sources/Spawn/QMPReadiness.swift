#if canImport(Glibc)
import Glibc
#endif
import CReactor
import Reactor

/// Confirmation by QMP, QEMU's monitor protocol, on a Unix socket QEMU listens on
/// (`-qmp unix:PATH,server=on,wait=off`).
///
/// A connect alone proves nothing: QEMU binds the socket before late initialisation, which
/// may still fail. So: connect (retrying on ENOENT/ECONNREFUSED on short timers, 1 ms
/// doubling to 10 ms, while the spawner watches for the daemon's death), read the greeting
/// `{"QMP": ...}`, send `qmp_capabilities`, then `query-status`, whose status must be one
/// of `acceptedStates`. The status is the confirming value. Anything else is a protocol
/// failure naming what was received.
public struct QMPReadiness: ReadinessSource, ReadinessWait {
  public var socketPath: String
  /// "running"; "prelaunch" for QEMU started with -S; "paused" when restoring.
  public var acceptedStates: Set<String>

  public init(socketPath: String, acceptedStates: Set<String> = ["running", "prelaunch", "paused"]) {
    self.socketPath = socketPath
    self.acceptedStates = acceptedStates
  }

  public var awaiting: String { "QMP on \(socketPath)" }

  public func wait(_ context: ReadinessContext) async throws -> String {
    var connection = try await connect(context)
    defer { _ = Glibc.close(connection.fd) }

    let greeting = try await connection.next()
    guard greeting.message.isGreeting else {
      throw connection.failure("expected the QMP greeting, received \(greeting.line)")
    }
    try await connection.send(#"{"execute": "qmp_capabilities", "id": "spawn-capabilities"}"#)
    _ = try await connection.reply(to: "spawn-capabilities", command: "qmp_capabilities")
    try await connection.send(#"{"execute": "query-status", "id": "spawn-status"}"#)
    let reply = try await connection.reply(to: "spawn-status", command: "query-status")
    guard let status = reply.message.status else {
      throw connection.failure("query-status returned no status: \(reply.line)")
    }
    guard acceptedStates.contains(status) else {
      throw connection.failure(
        "query-status returned status \"\(status)\", not one of \(acceptedStates.sorted().joined(separator: ", "))")
    }
    return status
  }

  /// Connects. While the socket is not there yet (ENOENT) it waits for it to appear (inotify
  /// on its directory); while it is there but not listening yet or stale (ECONNREFUSED), or
  /// its backlog is full (EAGAIN), it retries on short timers (1 ms doubling to 10 ms): no
  /// event says that a socket began to listen. A socket opened before exec and passed to
  /// QEMU connects the first time.
  private func connect(_ context: ReadinessContext) async throws -> QMPConnection {
    var delay: UInt64 = 1_000_000
    var appearing: DirectoryWatch?
    while true {
      try Task.checkCancellation()
      let error: SpawnError
      do { return try QMPConnection.connect(path: socketPath, loop: context.loop, what: context.what) } catch let e { error = e }
      switch error.errno {
      case .ENOENT?:
        if let watch = appearing.take() {
          try await watch.next(on: context.loop)
          appearing = consume watch
        } else {
          // Watch first, then try again: a socket made in between is not missed.
          appearing = try? DirectoryWatch(DirectoryWatch.directory(of: socketPath))
          if appearing == nil { try await context.loop.sleep(nanoseconds: delay) }
        }
      case .ECONNREFUSED?, .EAGAIN?:
        try await context.loop.sleep(nanoseconds: delay)
        delay = min(delay * 2, 10_000_000)
      default:
        throw error
      }
    }
  }
}

extension ReadinessSource where Self == QMPReadiness {
  /// QMP greeting, `qmp_capabilities` and `query-status` in an accepted state.
  public static func qmp(socketPath: String, acceptedStates: Set<String> = ["running", "prelaunch", "paused"])
    -> QMPReadiness
  {
    QMPReadiness(socketPath: socketPath, acceptedStates: acceptedStates)
  }
}

/// What the startup conversation needs of a QMP message.
struct QMPMessage {
  struct Failure {
    var `class`: String?
    var desc: String?
  }
  /// The greeting's `{"QMP": {...}}`.
  var isGreeting: Bool
  /// A reply's `return`, and its `status` member if it is an object with one.
  var hasReturn: Bool
  var status: String?
  var error: Failure?
  var event: String?
  var id: String?

  init(_ json: JSON) {
    isGreeting = json["QMP"] != nil
    hasReturn = json["return"] != nil
    status = json["return"]?["status"]?.stringValue
    error = json["error"].map { Failure(class: $0["class"]?.stringValue, desc: $0["desc"]?.stringValue) }
    event = json["event"]?.stringValue
    id = json["id"]?.stringValue
  }
}

/// One QMP connection: CRLF-terminated JSON messages, waited for on the loop. The framing
/// (lines in, commands out) is public for toolstacks that talk QMP after startup; the
/// startup conversation decodes only what it needs (`QMPMessage`).
public struct QMPConnection: Sendable {
  public let fd: Int32
  public let loop: EventLoop
  public let what: String
  /// Received, not yet split into lines.
  private var buffer: [UInt8] = []
  private static let maximumLine = 1 << 20

  public init(fd: Int32, loop: EventLoop, what: String) {
    self.fd = fd
    self.loop = loop
    self.what = what
  }

  /// Connects to the QMP socket at `path` once (no retry: for a socket that is known to be
  /// listening, such as one opened before QEMU ran). Non-blocking, close-on-exec.
  public static func connect(path: String, loop: EventLoop, what: String) throws(SpawnError) -> QMPConnection {
    guard let address = UnixAddress(path) else {
      throw SpawnError(.protocolFailed, what: what, detail: "QMP socket path too long: \(path)")
    }
    let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
    let fd = Glibc.socket(AF_UNIX, type, 0)
    guard fd >= 0 else { throw SpawnError(.protocolFailed, what: what, errno: .current, detail: "no socket for QMP") }
    guard address.withSockaddr({ Glibc.connect(fd, $0, $1) }) == 0 else {
      let error = SystemErrno.current
      _ = Glibc.close(fd)
      throw SpawnError(.protocolFailed, what: what, errno: error, detail: "connecting to QMP at \(path) failed")
    }
    return QMPConnection(fd: fd, loop: loop, what: what)
  }

  /// A listening Unix socket at `path` (an old file there is replaced) for QEMU to take as
  /// `-chardev socket,fd=N,server=on`: clients can connect from the moment it returns,
  /// before QEMU runs, and QEMU accepts them once its monitor is up. Close-on-exec: pass it
  /// with `SpawnCommand.passedDescriptors`.
  public static func listen(path: String, what: String) throws(SpawnError) -> Int32 {
    guard let address = UnixAddress(path) else {
      throw SpawnError(.spawnFailed, what: what, detail: "QMP socket path too long: \(path)")
    }
    let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SpawnError(.spawnFailed, what: what, errno: .current, detail: "no socket for QMP") }
    _ = unlink(path)
    guard address.withSockaddr({ bind(fd, $0, $1) }) == 0, Glibc.listen(fd, 16) == 0 else {
      let error = SystemErrno.current
      _ = Glibc.close(fd)
      throw SpawnError(.spawnFailed, what: what, errno: error, detail: "cannot listen on \(path)")
    }
    return fd
  }

  func failure(_ detail: String) -> SpawnError {
    SpawnError(.protocolFailed, what: what, detail: "QMP: " + detail)
  }

  /// The next message, and its line as received (for error messages).
  mutating func next() async throws -> (message: QMPMessage, line: String) {
    let line = try await nextLine()
    let text = String(decoding: line, as: UTF8.self).trimmingTrailingWhitespace
    guard let json = try? JSON.parse(line), case .object = json else {
      throw failure("received something not a JSON object: \(text.prefix(300))")
    }
    return (QMPMessage(json), String(text.prefix(300)))
  }

  /// The next line QEMU sent, without its line end. Throws `.protocolFailed` when the
  /// connection closes or fails.
  public mutating func nextLine() async throws -> [UInt8] {
    while true {
      if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
        let line = Array(buffer[..<newline])
        buffer.removeSubrange(...newline)
        return line
      }
      guard buffer.count < QMPConnection.maximumLine else { throw failure("received a line over 1 MiB") }
      _ = try await loop.wait(for: .readable, on: fd)
      var chunk = [UInt8](repeating: 0, count: 4096)
      let n = read(fd, &chunk, chunk.count)
      if n > 0 {
        buffer += chunk[0..<n]
      } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
        let error = n == 0 ? nil : SystemErrno.current
        let partial = buffer.isEmpty ? "" : " after \"\(String(decoding: buffer.prefix(300), as: UTF8.self))\""
        throw SpawnError(
          .protocolFailed, what: what, errno: error,
          detail: "QMP: the connection closed\(error.map { " (\($0.name))" } ?? "")\(partial)")
      }
    }
  }

  /// The reply with `id`, skipping asynchronous events; an error reply is a failure.
  mutating func reply(to id: String, command: String) async throws -> (message: QMPMessage, line: String) {
    while true {
      let received = try await next()
      if received.message.event != nil { continue }
      if let error = received.message.error {
        throw failure("\(command) failed: \(error.class ?? "Error"): \(error.desc ?? received.line)")
      }
      guard received.message.id == id, received.message.hasReturn else {
        throw failure("expected the reply to \(command), received \(received.line)")
      }
      return received
    }
  }

  /// Sends `command` (one JSON object) with its line end. `descriptor`, when given, rides
  /// along with the first bytes (SCM_RIGHTS), as QMP's `getfd` and `add-fd` expect: QEMU
  /// takes it with the command, so a confined device model never opens a host path itself.
  /// The caller keeps its own copy and closes it.
  public func send(_ command: String, passing descriptor: Int32? = nil) async throws {
    var bytes = Array((command + "\r\n").utf8)[...]
    var attached = descriptor
    while !bytes.isEmpty {
      // MSG_NOSIGNAL: a QEMU that just died must not take the caller down with SIGPIPE.
      let n = bytes.withUnsafeBytes { raw in
        if let attached { return creactor_send_with_descriptor(fd, raw.baseAddress, UInt(raw.count), attached) }
        return Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL))
      }
      if n > 0 {
        attached = nil
        bytes = bytes.dropFirst(n)
      } else if errno == EAGAIN || errno == EINTR {
        _ = try await loop.wait(for: .writable, on: fd)
      } else {
        throw SpawnError(.protocolFailed, what: what, errno: .current, detail: "QMP: sending \(command) failed")
      }
    }
  }
}
