import Reactor
import Synchronization

/// An asynchronous connection to a xenstore daemon over its Unix socket: the Swift
/// counterpart of libxenstore's `struct xs_handle`.
///
/// Many tasks may use one client at once: each request carries its own request id and its
/// reply is matched by it, whatever order the daemon answers in. The socket is non-blocking
/// and driven by an `EventLoop`; no call here blocks a thread.
///
/// Errors are `XenStoreError`: the daemon's errno name in `code` (`.ENOENT`, `.EACCES`, ...)
/// with the matching `errno`, or a local code (`.connectFailed`, `.connectionLost`,
/// `.protocolViolation`). A cancelled task gets `.cancelled`; its request's reply, if
/// any, is dropped when it arrives. When the connection is lost every waiting request fails
/// with `.connectionLost` and every watch sequence ends with that error.
///
/// The node operations (`read`, `write`, `directory`, ...) come from `XenStoreOperations`,
/// which transactions share.
public final class XenStoreClient: XenStoreOperations {
  /// The socket this client is connected to.
  public let socketPath: String
  let loop: EventLoop
  let connection: ClientConnection
  private let nextToken = Atomic<UInt64>(0)
  /// Runs tasks on this client's event-loop thread: each request is sent from there and its
  /// reply resumes the waiting task there, without a hop through the cooperative pool.
  /// Every request already prefers it; code that makes many requests in a row can run on it
  /// whole with `withLoopExecutor(_:)`.
  public let executor: XenStoreLoopExecutor

  private init(socketPath: String, fd: Int32, loop: EventLoop) {
    self.socketPath = socketPath
    self.loop = loop
    self.executor = XenStoreLoopExecutor(loop: loop)
    self.connection = ClientConnection(fd: fd, path: socketPath, loop: loop)
    let connection = connection
    loop.execute { connection.start() }
  }

  /// Connects to xenstored at `socketPath`, or where libxenstore would look
  /// (`XenStoreSocketPath.current`: `XENSTORED_PATH`, `XENSTORED_RUNDIR/socket`,
  /// `/var/run/xenstored/socket`). Like `xs_open`, but socket only: there is no xenbus
  /// fallback without a hypervisor. Throws `.connectFailed` naming the path, with the errno
  /// (`ENOENT`: no socket; `ECONNREFUSED`: nobody listens).
  public static func connect(to socketPath: String? = nil, loop: EventLoop = .shared) async throws(XenStoreError) -> XenStoreClient {
    let path = socketPath ?? XenStoreSocketPath.current
    let fd = try await ClientSocket.connect(to: path, loop: loop)
    return XenStoreClient(socketPath: path, fd: fd, loop: loop)
  }

  deinit {
    let connection = connection
    loop.execute { connection.close() }
  }

  /// Closes the connection (`xs_close`). Waiting requests fail with `.connectionLost`; watch
  /// sequences end normally.
  public func close() {
    let connection = connection
    loop.execute { connection.close() }
  }

  // MARK: XenStoreOperations

  public var client: XenStoreClient { self }
  public var transactionID: UInt32 { 0 }

  // MARK: Requests

  /// Sends one request and returns its reply, or throws the daemon's error.
  /// `operation` names the request in error messages ("read /a").
  func request(_ type: MessageType, transaction: UInt32 = 0, payload: [UInt8], operation: String,
               orphaned: (@Sendable (Message, ClientConnection) -> Void)? = nil) async throws(XenStoreError) -> Message {
    // libxenstore refuses these before sending (E2BIG); the daemon would drop the connection.
    guard payload.count <= Message.payloadMax else {
      throw XenStoreError(.E2BIG, "\(operation): request of \(payload.count) bytes exceeds the \(Message.payloadMax)-byte limit",
                          errno: XenStoreError.Code.E2BIG.errnoValue)
    }
    let message = Message(type: type, transactionID: transaction, payload: payload)
    let answer = try await exchange(message, orphaned: orphaned)
    return try Self.checked(answer, type, operation: operation)
  }

  /// The reply itself, or the daemon's error as `XenStoreError`.
  static func checked(_ answer: Message, _ type: MessageType, operation: String) throws(XenStoreError) -> Message {
    if answer.type == .error { throw XenStoreError(reply: answer, operation: operation) }
    guard answer.type == type else {
      throw XenStoreError(.protocolViolation, "\(operation): xenstored answered \(type) with \(answer.type)")
    }
    return answer
  }

  /// Sends `message` and waits for its reply, on the loop's executor: the request goes out
  /// from the loop thread and the reply resumes this task there (the task comes back to its
  /// own executor only when the caller is not on the loop already).
  private func exchange(_ message: Message, orphaned: (@Sendable (Message, ClientConnection) -> Void)?) async throws(XenStoreError) -> Message {
    let connection = connection
    let loop = loop
    do {
      return try await exchangeUntyped(message, connection: connection, loop: loop, orphaned: orphaned)
    } catch {
      throw XenStoreError.from(error, "\(message.type)")
    }
  }

  private func exchangeUntyped(
    _ message: Message, connection: ClientConnection, loop: EventLoop, orphaned: (@Sendable (Message, ClientConnection) -> Void)?
  ) async throws -> Message {
    try await withTaskExecutorPreference(executor) {
      let reply = OnceResume<Message>()
      return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
          reply.set(continuation)
          if loop.inLoop {
            connection.send(message, reply: reply, orphaned: orphaned)
          } else {
            loop.execute { connection.send(message, reply: reply, orphaned: orphaned) }
          }
        }
      } onCancel: {
        reply.resume(throwing: CancellationError())
      }
    }
  }

  /// Runs `body` with this client's loop as its task executor: its requests, one after
  /// another, then cost no thread hop each (see `executor`). For short request/reply code:
  /// blocking in `body` blocks the client's event loop.
  public func withLoopExecutor<T, Failure: Error>(
    isolation: isolated (any Actor)? = #isolation, _ body: () async throws(Failure) -> T
  ) async throws(Failure) -> T {
    try await withTaskExecutorPreference(executor, isolation: isolation, operation: body)
  }

  /// A request whose payload is NUL-terminated strings.
  func request(_ type: MessageType, transaction: UInt32 = 0, strings: [String], operation: String,
               orphaned: (@Sendable (Message, ClientConnection) -> Void)? = nil) async throws(XenStoreError) -> Message {
    var payload: [UInt8] = []
    for s in strings { payload.append(contentsOf: s.utf8); payload.append(0) }
    return try await request(type, transaction: transaction, payload: payload, operation: operation, orphaned: orphaned)
  }

  /// Sends a request nobody waits for (cleanup that must not depend on a cancelled task).
  func sendDetached(_ message: Message) {
    let connection = connection
    loop.execute { connection.sendDetached(message) }
  }

  /// A token unique within this client, so watch events find their sequence.
  func makeToken() -> String {
    "swift-xs-\(nextToken.add(1, ordering: .relaxed).newValue)"
  }
}

extension Message {
  /// The payload as text, without its trailing NUL.
  var replyText: String {
    var bytes = payload[...]
    if bytes.last == 0 { bytes = bytes.dropLast() }
    return String(decoding: bytes, as: UTF8.self)
  }
}
