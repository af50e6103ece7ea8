import Logging
import XenStore
import XenStoreDaemon

/// Drives a `XenStoreEngine` directly, without sockets, and records what it sends.
final class EngineHarness {
  let engine: XenStoreEngine
  private(set) var outputs: [EngineOutput] = []
  private var nextRequestID: UInt32 = 100
  private var seenEvents: [ConnectionID: [Message]] = [:]

  init(quotas: Quotas = .xenDefaults) {
    var logger = Logger(label: "engine-test")
    logger.logLevel = .warning
    engine = XenStoreEngine(quotas: quotas, logger: logger)
    engine.output = { [unowned self] in outputs.append($0) }
  }

  func connect(_ domid: UInt32 = 0) -> ConnectionID { engine.connect(domain: domid) }

  /// Sends a request whose payload is `strings`, each NUL-terminated, and returns the reply as
  /// text: an error's errno name (`"ENOENT"`), else the payload with NULs shown as `|`.
  @discardableResult
  func call(_ conn: ConnectionID, _ type: MessageType, _ strings: String..., tx: UInt32 = 0) -> String {
    callRaw(conn, type, Array(strings.map { Array($0.utf8) + [0] }.joined()), tx: tx)
  }

  /// As `call`, with the exact payload bytes.
  @discardableResult
  func callRaw(_ conn: ConnectionID, _ type: MessageType, _ payload: [UInt8], tx: UInt32 = 0) -> String {
    nextRequestID += 1
    let id = nextRequestID
    engine.handle(Message(type: type, requestID: id, transactionID: tx, payload: payload), from: conn)
    let sent = take(conn)
    seenEvents[conn, default: []] += sent.filter { $0.type == .watchEvent }
    guard let reply = sent.first(where: { $0.type != .watchEvent }) else { return "<no reply>" }
    precondition(reply.requestID == id && reply.transactionID == tx, "reply ids must echo the request")
    return Self.text(reply)
  }

  /// WRITE of `value` (not NUL-terminated, as on the wire).
  @discardableResult
  func write(_ conn: ConnectionID, _ path: String, _ value: String, tx: UInt32 = 0) -> String {
    callRaw(conn, .write, Array(path.utf8) + [0] + Array(value.utf8), tx: tx)
  }

  /// Watch events sent to `conn` since the last look, as `path|token|`.
  func events(_ conn: ConnectionID) -> [String] {
    let events = (seenEvents.removeValue(forKey: conn) ?? []) + take(conn).filter { $0.type == .watchEvent }
    return events.map(Self.text)
  }

  /// Domain and close outputs since the last look.
  func notices() -> [String] {
    var out: [String] = []
    outputs.removeAll { output in
      switch output {
      case .message: return false
      case .close(let id): out.append("close \(id.rawValue)")
      case .introduced(let domid): out.append("introduced \(domid)")
      case .released(let domid): out.append("released \(domid)")
      }
      return true
    }
    return out
  }

  /// Removes and returns the messages sent to `conn`.
  private func take(_ conn: ConnectionID) -> [Message] {
    var mine: [Message] = []
    outputs.removeAll { output in
      if case .message(let m, let to) = output, to == conn { mine.append(m); return true }
      return false
    }
    return mine
  }

  static func text(_ m: Message) -> String {
    if m.type == .error { return String(decoding: m.payload.dropLast(), as: UTF8.self) }
    return m.payloadDescription
  }
}
