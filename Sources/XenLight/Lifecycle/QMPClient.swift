#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Spawn
import Synchronization

/// A QMP session with a running device model: commands matched to their replies by id, and
/// the asynchronous events (`SHUTDOWN`, `STOP`, `GUEST_PANICKED`…) as a stream.
///
/// The socket is one QEMU opened before exec (`-chardev socket,fd=N,server=on`), so it exists
/// and listens for as long as QEMU lives: connecting never races QEMU's startup. QEMU serves
/// one client per QMP socket at a time; see `DomainLayout` for which socket is whose.
public final class QMPClient: Sendable {
  /// One asynchronous event, with QEMU's timestamp.
  public struct Event: Sendable, CustomStringConvertible {
    public var name: String
    public var data: JSON
    /// QEMU's clock (CLOCK_REALTIME) when it emitted the event, in microseconds.
    public var timestampMicroseconds: Int64
    public var description: String { data == .null ? name : "\(name) \(data.compact)" }
  }

  public let path: String
  public let events: AsyncStream<Event>
  private let sink: AsyncStream<Event>.Continuation
  private let connection: QMPConnection
  private let state = Mutex(State())

  private struct State {
    var nextID = 1
    var pending: [String: CheckedContinuation<JSON, any Error>] = [:]
    var closed: XenLightError?
    /// The reader, for `finish` to wait on.
    var reader: Task<Void, Never>?
  }

  private init(connection: QMPConnection, path: String) {
    self.connection = connection
    self.path = path
    (events, sink) = AsyncStream.makeStream(of: Event.self)
  }

  /// Connects to `path`, reads the greeting and negotiates capabilities. Fails with
  /// `.deviceModelFailed` if QEMU does not speak QMP there.
  public static func connect(path: String, loop: EventLoop = .shared, what: String = "device model") async throws(XenLightError)
    -> QMPClient
  {
    var connection: QMPConnection
    do { connection = try QMPConnection.connect(path: path, loop: loop, what: what) } catch {
      throw XenLightError(.deviceModelFailed, "\(error)", cause: .init(error))
    }
    let greeting: JSON
    do {
      greeting = try await decode(connection.nextLine())
    } catch {
      _ = Glibc.close(connection.fd)
      throw XenLightError(.deviceModelFailed, "\(what): no QMP greeting on \(path): \(error)", cause: .init(error))
    }
    guard greeting["QMP"] != nil else {
      _ = Glibc.close(connection.fd)
      throw XenLightError(.deviceModelFailed, "\(what): \(path) did not greet as QMP: \(greeting.compact.prefix(200))")
    }
    let client = QMPClient(connection: connection, path: path)
    let reader = Task { [connection] in await client.read(connection) }
    client.state.withLock { $0.reader = reader }
    _ = try await client.execute("qmp_capabilities")
    return client
  }

  /// Runs `command` and returns its `return` value. A QMP error reply, or the connection
  /// closing first, throws `.deviceModelFailed` with QEMU's words. `descriptor`, when given,
  /// is passed with the command (SCM_RIGHTS) for `getfd` and `add-fd`; the caller still owns
  /// its copy.
  @discardableResult
  public func execute(
    _ command: String, _ arguments: [(String, JSON)] = [], passing descriptor: Int32? = nil
  ) async throws(XenLightError) -> JSON {
    let id: String = state.withLock { state in
      defer { state.nextID += 1 }
      return "xl-\(state.nextID)"
    }
    var message: [(String, JSON)] = [("execute", .string(command))]
    if !arguments.isEmpty { message.append(("arguments", .object(arguments))) }
    message.append(("id", .string(id)))
    let text = JSON.object(message).compact
    let connection = self.connection
    do {
      return try await withCheckedThrowingContinuation { continuation in
        let refused: XenLightError? = state.withLock {
          if let closed = $0.closed { return closed }
          $0.pending[id] = continuation
          return nil
        }
        if let refused { continuation.resume(throwing: refused); return }
        Task {
          do { try await connection.send(text, passing: descriptor) } catch { self.fail(id, XenLightError(.deviceModelFailed, "\(error)", cause: .init(error))) }
        }
      }
    } catch let error as XenLightError {
      throw error
    } catch {
      throw XenLightError(.deviceModelFailed, "QMP \(command): \(error)", cause: .init(error))
    }
  }

  /// Ends the session: pending commands fail, the event stream finishes.
  public func close() { _ = shutdown(connection.fd, Int32(SHUT_RDWR)) }

  /// Ends the session and waits until its reader has finished with everything it read (so a
  /// short-lived command leaves nothing in flight when its process exits).
  public func finish() async {
    close()
    await state.withLock { $0.reader }?.value
  }

  /// Connects, runs `body` with the session, then finishes it, whatever `body` did.
  public static func session<T: Sendable>(
    path: String, loop: EventLoop = .shared, what: String = "device model",
    _ body: (QMPClient) async throws(XenLightError) -> T
  ) async throws(XenLightError) -> T {
    let qmp = try await connect(path: path, loop: loop, what: what)
    let result: Result<T, XenLightError>
    do throws(XenLightError) { result = .success(try await body(qmp)) } catch { result = .failure(error) }
    await qmp.finish()
    return try result.get()
  }

  private func fail(_ id: String, _ error: XenLightError) {
    state.withLock { $0.pending.removeValue(forKey: id) }?.resume(throwing: error)
  }

  /// Reads until the connection ends, resuming commands and yielding events; then fails
  /// what is pending. The descriptor stays open until the client is gone (`deinit`): a
  /// `close()` or a command's send after the end still names this connection, never a
  /// descriptor number reused by then.
  private func read(_ connection: QMPConnection) async {
    var connection = connection
    var ending = XenLightError(.deviceModelFailed, "QMP connection to \(path) closed")
    while true {
      let message: JSON
      do { message = try await Self.decode(connection.nextLine()) } catch {
        ending = XenLightError(.deviceModelFailed, "QMP connection to \(path) closed: \(error)", cause: .init(error))
        break
      }
      if let name = message["event"]?.stringValue {
        let stamp = message["timestamp"]
        let micros = (stamp?["seconds"]?.intValue ?? 0) * 1_000_000 + (stamp?["microseconds"]?.intValue ?? 0)
        sink.yield(Event(name: name, data: message["data"] ?? .null, timestampMicroseconds: micros))
        continue
      }
      guard let id = message["id"]?.stringValue,
        let waiter = state.withLock({ $0.pending.removeValue(forKey: id) })
      else { continue }
      if let error = message["error"] {
        let desc = error["desc"]?.stringValue ?? error.compact
        waiter.resume(throwing: XenLightError(.deviceModelFailed, "QEMU refused: \(desc)"))
      } else {
        waiter.resume(returning: message["return"] ?? .null)
      }
    }
    let waiters = state.withLock { state in
      state.closed = ending
      defer { state.pending = [:] }
      return Array(state.pending.values)
    }
    for waiter in waiters { waiter.resume(throwing: ending) }
    sink.finish()
  }

  deinit { _ = Glibc.close(connection.fd) }

  private static func decode(_ line: [UInt8]) throws -> JSON {
    do { return try JSON.parse(line) } catch { throw XenLightError(.deviceModelFailed, "QMP sent something not JSON (\(error)): \(String(decoding: line.prefix(300), as: UTF8.self))") }
  }
}
