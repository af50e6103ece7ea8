import Reactor

/// One request of a pipelined batch (`XenStoreOperations.pipeline(_:)`): what to send, and
/// how to name it in an error ("write /local/domain/3/name").
public struct XenStoreRequest: Sendable, Hashable, CustomStringConvertible {
  let type: MessageType
  let payload: [UInt8]
  /// The request as error messages name it: `write /a/b`.
  public let operation: String
  /// Tests only: send even a payload over the protocol's limit (the daemon drops the connection).
  var sendOversized = false

  init(_ type: MessageType, payload: [UInt8], operation: String) {
    self.type = type
    self.payload = payload
    self.operation = operation
  }

  init(_ type: MessageType, strings: [String], operation: String) {
    var payload: [UInt8] = []
    for s in strings { payload.append(contentsOf: s.utf8); payload.append(0) }
    self.init(type, payload: payload, operation: operation)
  }

  /// WRITE: sets `path` to `value`, creating it and missing parents.
  public static func write(_ path: String, bytes value: [UInt8]) -> XenStoreRequest {
    var payload = Array(path.utf8)
    payload.append(0)
    payload.append(contentsOf: value)
    return XenStoreRequest(.write, payload: payload, operation: "write \(path)")
  }

  /// WRITE of the UTF-8 bytes of `value`.
  public static func write(_ path: String, _ value: String) -> XenStoreRequest {
    write(path, bytes: Array(value.utf8))
  }

  /// READ: the reply is the node's value.
  public static func read(_ path: String) -> XenStoreRequest {
    XenStoreRequest(.read, strings: [path], operation: "read \(path)")
  }

  /// MKDIR: creates `path` with an empty value if it does not exist.
  public static func mkdir(_ path: String) -> XenStoreRequest {
    XenStoreRequest(.mkdir, strings: [path], operation: "mkdir \(path)")
  }

  /// RM: removes `path` and everything below it.
  public static func rm(_ path: String) -> XenStoreRequest {
    XenStoreRequest(.rm, strings: [path], operation: "rm \(path)")
  }

  /// SET_PERMS: sets the access list of `path`.
  public static func setPermissions(_ path: String, _ permissions: Permissions) -> XenStoreRequest {
    XenStoreRequest(.setPerms, strings: [path] + permissions.entries.map(\.description),
                    operation: "set permissions of \(path)")
  }

  public var description: String { operation }
}

/// A pipelined batch that did not fully succeed: which request failed first (in the order
/// they were given), how, and what became of every request. Requests of the batch after a
/// failed one were still sent and carried out by the daemon unless `results` says otherwise
/// (inside a transaction, `XenStoreClient.transaction(pipelining:)` aborts it).
public struct XenStoreBatchError: Error, Sendable, CustomStringConvertible {
  /// The position in the batch of the first request that failed.
  public let index: Int
  /// That request.
  public let request: XenStoreRequest
  /// Its error (`.ENOENT`, `.EACCES`, ..., `.connectionLost`).
  public let error: XenStoreError
  /// Each request's outcome, in batch order: its reply payload or its error.
  public let results: [Result<[UInt8], XenStoreError>]

  /// `request 3 of 10 (write /a/b) failed: write /a/b: Permission denied`.
  public var description: String {
    "request \(index + 1) of \(results.count) (\(request)) failed: \(error.message)"
  }
}

extension XenStoreOperations {
  /// Sends every request at once, each with its own request id, without waiting for one reply
  /// before sending the next, and returns when every reply is in: their payloads, in order.
  /// The daemon carries them out in order (on this connection), so a batch costs about one
  /// round trip however long it is. In a transaction each request carries its id.
  ///
  /// Throws `XenStoreBatchError` naming the first request that failed, with every request's
  /// outcome; a lost connection fails every request not answered yet with `.connectionLost`.
  /// A cancelled task gets `.cancelled` (the daemon may still carry out what was sent).
  @discardableResult
  public func pipeline(_ requests: [XenStoreRequest]) async throws -> [[UInt8]] {
    let results = try await pipelineResults(requests)
    var payloads: [[UInt8]] = []
    payloads.reserveCapacity(results.count)
    for (index, result) in results.enumerated() {
      switch result {
      case .success(let payload): payloads.append(payload)
      case .failure(let error):
        throw XenStoreBatchError(index: index, request: requests[index], error: error, results: results)
      }
    }
    return payloads
  }

  /// Like `pipeline(_:)`, but returns each request's outcome instead of throwing for the first
  /// failure. Throws only `.cancelled` (or a lost connection).
  public func pipelineResults(_ requests: [XenStoreRequest]) async throws(XenStoreError) -> [Result<[UInt8], XenStoreError>] {
    guard !requests.isEmpty else { return [] }
    let replies = try await client.exchange(batch: requests, transaction: transactionID)
    return replies.enumerated().map { index, reply in
      let request = requests[index]
      return reply.flatMap { message in
        Result { () throws(XenStoreError) -> [UInt8] in
          try XenStoreClient.checked(message, request.type, operation: request.operation).payload
        }
      }
    }
  }

  /// Writes every `(path, value)` pair in one pipelined batch (see `pipeline(_:)`).
  public func write(_ values: [(path: String, value: String)]) async throws {
    try await pipeline(values.map { XenStoreRequest.write($0.path, $0.value) })
  }
}

extension XenStoreClient {
  /// Sends `requests` as one batch and waits for all their replies (or errors).
  func exchange(batch requests: [XenStoreRequest], transaction: UInt32) async throws(XenStoreError) -> [Result<Message, XenStoreError>] {
    let batch = ClientBatch(count: requests.count)
    var messages: [Message?] = []
    messages.reserveCapacity(requests.count)
    for (index, request) in requests.enumerated() {
      if request.payload.count > Message.payloadMax && !request.sendOversized {
        batch.complete(index, .failure(XenStoreError(
          .E2BIG, "\(request.operation): request of \(request.payload.count) bytes exceeds the \(Message.payloadMax)-byte limit",
          errno: XenStoreError.Code.E2BIG.errnoValue)))
        messages.append(nil)
      } else {
        messages.append(Message(type: request.type, transactionID: transaction, payload: request.payload))
      }
    }
    batch.messages = messages
    let connection = connection
    let loop = loop
    do {
      return try await withTaskExecutorPreference(executor) {
        try await withTaskCancellationHandler {
          try await withCheckedThrowingContinuation { continuation in
            batch.done.set(continuation)
            if loop.inLoop { connection.send(batch) } else { loop.execute { connection.send(batch) } }
          }
        } onCancel: {
          batch.done.resume(throwing: CancellationError())
        }
      }
    } catch {
      throw XenStoreError.from(error, "a batch of \(messages.count) requests")
    }
  }

  /// Runs `requests` in a transaction, pipelined: TRANSACTION_START, then every request at
  /// once (each carrying the transaction's id), then TRANSACTION_END — about three round
  /// trips however many requests. If any request fails the transaction is aborted and
  /// `XenStoreBatchError` thrown (nothing was applied); a commit that meets a conflict
  /// (`.EAGAIN`) runs the whole batch again in a fresh transaction, at most `maxAttempts`
  /// times in all. Returns each request's reply payload.
  @discardableResult
  public func transaction(pipelining requests: [XenStoreRequest], maxAttempts: Int = 16) async throws -> [[UInt8]] {
    try await transaction(maxAttempts: maxAttempts) { tx in try await tx.pipeline(requests) }
  }
}

/// The replies of one pipelined batch as they come in. Confined to the client's loop thread
/// once sent (completions before that happen on the sending task, before it is queued).
final class ClientBatch: @unchecked Sendable {
  /// The requests to send; nil where a request was refused before sending. Emptied once sent.
  var messages: [Message?] = []
  private var results: [Result<Message, XenStoreError>?]
  private var remaining: Int
  /// Resumed once every request has its outcome, or beforehand with CancellationError.
  let done = OnceResume<[Result<Message, XenStoreError>]>()

  init(count: Int) {
    results = Array(repeating: nil, count: count)
    remaining = count
  }

  /// True when the waiting task stopped waiting (cancelled).
  var isAbandoned: Bool { done.isDone }

  func complete(_ index: Int, _ result: Result<Message, XenStoreError>) {
    guard case .none = results[index] else { return }
    results[index] = result
    remaining -= 1
    if remaining == 0 { done.resume(returning: results.map { $0! }) }
  }
}
