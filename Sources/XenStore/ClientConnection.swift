#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// The socket side of a `XenStoreClient`: one non-blocking fd, its input decoder and output
/// queue, the requests awaiting replies and the watches awaiting events.
///
/// Confined to `loop`: every method runs on the loop thread (hence `@unchecked Sendable`).
/// Request ids are assigned here, in sending order, so no other thread touches them.
final class ClientConnection: @unchecked Sendable {
  /// A request sent and not yet answered.
  struct Pending {
    /// Resumed with the reply, or beforehand with CancellationError by the waiting task.
    let reply: Waiter
    /// Runs on the loop when a reply comes for a request whose task stopped waiting, to undo
    /// what the daemon did anyway (a transaction started, a watch added).
    let orphaned: (@Sendable (Message, ClientConnection) -> Void)?
  }

  /// Who waits for a reply: one task, or one request of a pipelined batch.
  enum Waiter {
    case single(OnceResume<Message>)
    case batch(ClientBatch, Int)
  }

  let loop: EventLoop
  let path: String
  private let fd: Int32
  private var decoder = MessageDecoder()
  private var outbox: [UInt8] = []
  private var outboxStart = 0
  private var watchingWritable = false
  private var readBuffer = [UInt8](repeating: 0, count: 65536)
  private var nextRequestID: UInt32 = 0
  private var pending: [UInt32: Pending] = [:]
  private var watches: [String: WatchRoute] = [:]
  /// Set once the connection is over; every later request fails with it.
  private var failure: XenStoreError?

  /// Where the events of one watch token go.
  struct WatchRoute {
    let watchedPath: String
    let events: AsyncThrowingStream<XenStoreWatch.Event, Error>.Continuation
  }

  init(fd: Int32, path: String, loop: EventLoop) {
    self.fd = fd
    self.path = path
    self.loop = loop
  }

  /// Starts reading. Loop thread.
  func start() {
    loop.register(fd, for: .readable) { [self] events in handle(events) }
  }

  // MARK: Requests

  /// Queues `message` under a fresh request id; its reply resumes `reply`. A request whose
  /// waiter already gave up (cancelled before it reached the loop) is not sent at all.
  func send(_ message: Message, reply: OnceResume<Message>,
            orphaned: (@Sendable (Message, ClientConnection) -> Void)? = nil) {
    if let failure { reply.resume(throwing: failure); return }
    if reply.isDone { return }
    var message = message
    nextRequestID &+= 1
    while pending[nextRequestID] != nil { nextRequestID &+= 1 }
    message.requestID = nextRequestID
    pending[nextRequestID] = Pending(reply: .single(reply), orphaned: orphaned)
    message.encode(into: &outbox)
    flush()
  }

  /// Queues every request of `batch` at once, each under its own request id, and writes them
  /// in one go: replies come back in order and are matched by id. A batch whose waiter gave
  /// up before it reached the loop is not sent.
  func send(_ batch: ClientBatch) {
    if batch.isAbandoned { return }
    for (index, message) in batch.messages.enumerated() {
      guard var message else { continue }  // refused before sending: already completed
      if let failure {
        batch.complete(index, .failure(failure))
        continue
      }
      nextRequestID &+= 1
      while pending[nextRequestID] != nil { nextRequestID &+= 1 }
      message.requestID = nextRequestID
      pending[nextRequestID] = Pending(reply: .batch(batch, index), orphaned: nil)
      message.encode(into: &outbox)
    }
    batch.messages = []
    if failure == nil { flush() }
  }

  /// Sends `message` and ignores its reply: cleanup that must happen even when the task that
  /// asked for it is cancelled (UNWATCH of a dropped watch, abort of an abandoned transaction).
  func sendDetached(_ message: Message) {
    send(message, reply: OnceResume<Message>())
  }

  /// Requests sent and not yet answered (tests wait on it).
  var pendingCount: Int { pending.count }

  // MARK: Watches

  func addWatch(token: String, route: WatchRoute) {
    if let failure { route.events.finish(throwing: failure); return }
    watches[token] = route
  }

  /// Forgets `token`; true if it was still routed (so the caller owns sending UNWATCH).
  @discardableResult
  func removeWatch(token: String) -> Bool {
    watches.removeValue(forKey: token) != nil
  }

  /// Ends every watch sequence: RESET_WATCHES removed their watches in the daemon.
  func finishAllWatches() {
    let routes = watches
    watches.removeAll()
    for route in routes.values { route.events.finish() }
  }

  // MARK: Closing

  /// Closes the socket: pending requests fail with `.connectionLost`, watch sequences end
  /// without error (the client chose this).
  func close() {
    let routes = watches
    watches.removeAll()
    fail(XenStoreError(.connectionLost, "the xenstore client was closed"))
    for route in routes.values { route.events.finish() }
  }

  /// Ends the connection once: fails every pending request and watch with `error`.
  private func fail(_ error: XenStoreError) {
    guard failure == nil else { return }
    failure = error
    loop.deregister(fd)
    Glibc.close(fd)
    outbox = []
    outboxStart = 0
    let waiting = pending
    pending.removeAll()
    for request in waiting.values {
      switch request.reply {
      case .single(let reply): reply.resume(throwing: error)
      case .batch(let batch, let index): batch.complete(index, .failure(error))
      }
    }
    let routes = watches
    watches.removeAll()
    for route in routes.values { route.events.finish(throwing: error) }
  }

  private func lost(_ why: String, errno code: Int32? = nil) {
    let reason = code.map { ": " + String(cString: strerror($0)) } ?? ""
    fail(XenStoreError(.connectionLost, "connection to xenstored at \(path) lost: \(why)\(reason)", errno: code))
  }

  // MARK: I/O

  private func handle(_ events: EventLoop.Events) {
    if !events.isDisjoint(with: [.readable, .hangup, .error]) { readAvailable() }
    if events.contains(.writable) && failure == nil { flush() }
  }

  /// Writes as much of the outbox as the socket takes; waits for writability for the rest.
  private func flush() {
    while outboxStart < outbox.count {
      let n = outbox.withUnsafeBytes { raw in
        Glibc.send(fd, raw.baseAddress! + outboxStart, raw.count - outboxStart, Int32(MSG_NOSIGNAL))
      }
      if n > 0 { outboxStart += n; continue }
      let error = errno
      if error == EINTR { continue }
      if error == EAGAIN || error == EWOULDBLOCK {
        if !watchingWritable {
          watchingWritable = true
          loop.modify(fd, for: [.readable, .writable])
        }
        return
      }
      // A broken pipe or a reset: the daemon closed its end (killed mid-exchange, say), which
      // a read would report as a close; the same end for the caller, in the same words.
      if error == EPIPE || error == ECONNRESET { lost("xenstored closed the connection"); return }
      lost("sending failed", errno: error)
      return
    }
    outbox.removeAll(keepingCapacity: outbox.count <= 65536)
    outboxStart = 0
    if watchingWritable {
      watchingWritable = false
      loop.modify(fd, for: .readable)
    }
  }

  private func readAvailable() {
    while failure == nil {
      let n = readBuffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
      if n == 0 { lost("xenstored closed the connection"); return }
      if n < 0 {
        let error = errno
        if error == EINTR { continue }
        if error == EAGAIN || error == EWOULDBLOCK { return }
        // A reset is a close with our request still unread (a daemon killed mid-exchange):
        // the same end for the caller, in the same words.
        if error == ECONNRESET { lost("xenstored closed the connection"); return }
        lost("receiving failed", errno: error)
        return
      }
      readBuffer.withUnsafeBytes { decoder.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
      do {
        while let message = try decoder.next() { dispatch(message) }
      } catch {
        fail(XenStoreError(.protocolViolation, "xenstored at \(path) sent an invalid message: \(error.message)"))
        return
      }
      if n < readBuffer.count { return }
    }
  }

  private func dispatch(_ message: Message) {
    if message.type == .watchEvent {
      let fields = message.fields
      guard fields.count >= 2 else { return }
      let token = String(decoding: fields[1], as: UTF8.self)
      guard let route = watches[token] else { return }  // unwatched meanwhile: spurious
      route.events.yield(.init(path: String(decoding: fields[0], as: UTF8.self), watchedPath: route.watchedPath))
      return
    }
    guard let request = pending.removeValue(forKey: message.requestID) else {
      fail(XenStoreError(.protocolViolation, "xenstored at \(path) answered request \(message.requestID), which was never sent: \(message)"))
      return
    }
    switch request.reply {
    case .single(let reply):
      if !reply.resume(returning: message) { request.orphaned?(message, self) }
    case .batch(let batch, let index):
      batch.complete(index, .success(message))
    }
  }
}
