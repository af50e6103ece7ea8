/// The kind of a xenstore message: `enum xsd_sockmsg_type` of Xen 4.17's `xs_wire.h`.
///
/// A struct, not an enum: the daemon must carry unknown numbers through to an ENOSYS reply.
public struct MessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  public let rawValue: UInt32
  public init(rawValue: UInt32) { self.rawValue = rawValue }

  public static let control = MessageType(rawValue: 0)
  public static let directory = MessageType(rawValue: 1)
  public static let read = MessageType(rawValue: 2)
  public static let getPerms = MessageType(rawValue: 3)
  public static let watch = MessageType(rawValue: 4)
  public static let unwatch = MessageType(rawValue: 5)
  public static let transactionStart = MessageType(rawValue: 6)
  public static let transactionEnd = MessageType(rawValue: 7)
  public static let introduce = MessageType(rawValue: 8)
  public static let release = MessageType(rawValue: 9)
  public static let getDomainPath = MessageType(rawValue: 10)
  public static let write = MessageType(rawValue: 11)
  public static let mkdir = MessageType(rawValue: 12)
  public static let rm = MessageType(rawValue: 13)
  public static let setPerms = MessageType(rawValue: 14)
  public static let watchEvent = MessageType(rawValue: 15)
  public static let error = MessageType(rawValue: 16)
  public static let isDomainIntroduced = MessageType(rawValue: 17)
  public static let resume = MessageType(rawValue: 18)
  public static let setTarget = MessageType(rawValue: 19)
  /// XS_RESTRICT, removed from Xen: answered ENOSYS.
  public static let restrict = MessageType(rawValue: 20)
  public static let resetWatches = MessageType(rawValue: 21)
  public static let directoryPart = MessageType(rawValue: 22)
  public static let getFeature = MessageType(rawValue: 23)
  public static let setFeature = MessageType(rawValue: 24)
  public static let getQuota = MessageType(rawValue: 25)
  public static let setQuota = MessageType(rawValue: 26)

  private static let names: [UInt32: String] = [
    0: "CONTROL", 1: "DIRECTORY", 2: "READ", 3: "GET_PERMS", 4: "WATCH", 5: "UNWATCH",
    6: "TRANSACTION_START", 7: "TRANSACTION_END", 8: "INTRODUCE", 9: "RELEASE",
    10: "GET_DOMAIN_PATH", 11: "WRITE", 12: "MKDIR", 13: "RM", 14: "SET_PERMS",
    15: "WATCH_EVENT", 16: "ERROR", 17: "IS_DOMAIN_INTRODUCED", 18: "RESUME",
    19: "SET_TARGET", 20: "RESTRICT", 21: "RESET_WATCHES", 22: "DIRECTORY_PART",
    23: "GET_FEATURE", 24: "SET_FEATURE", 25: "GET_QUOTA", 26: "SET_QUOTA",
  ]
  public var description: String { Self.names[rawValue] ?? "TYPE(\(rawValue))" }
}

/// One xenstore message: the 16-byte `struct xsd_sockmsg` header and its payload.
public struct Message: Hashable, Sendable {
  /// `XENSTORE_PAYLOAD_MAX`: the largest payload either side may send.
  public static let payloadMax = 4096
  public static let headerSize = 16

  public var type: MessageType
  public var requestID: UInt32
  public var transactionID: UInt32
  public var payload: [UInt8]

  public init(type: MessageType, requestID: UInt32 = 0, transactionID: UInt32 = 0, payload: [UInt8]) {
    self.type = type
    self.requestID = requestID
    self.transactionID = transactionID
    self.payload = payload
  }

  /// A message whose payload is NUL-terminated strings, as most requests are.
  public init(type: MessageType, requestID: UInt32 = 0, transactionID: UInt32 = 0, strings: [String]) {
    var payload: [UInt8] = []
    for s in strings { payload.append(contentsOf: s.utf8); payload.append(0) }
    self.init(type: type, requestID: requestID, transactionID: transactionID, payload: payload)
  }

  /// The reply to `request` with the same type, ids and the given payload.
  public static func reply(to request: Message, payload: [UInt8]) -> Message {
    Message(type: request.type, requestID: request.requestID, transactionID: request.transactionID, payload: payload)
  }

  /// `"OK\0"`, the reply of every request that returns nothing else.
  public static func ok(to request: Message) -> Message { reply(to: request, payload: Array("OK\0".utf8)) }

  /// An ERROR reply: the errno name plus NUL, ids copied from the request.
  public static func error(_ code: XenStoreError.Code, to request: Message) -> Message {
    Message(type: .error, requestID: request.requestID, transactionID: request.transactionID,
            payload: Array(code.name.utf8) + [0])
  }

  /// Header (host byte order, as Xen's daemons and clients use) followed by the payload.
  public func encoded() -> [UInt8] {
    var bytes = [UInt8]()
    bytes.reserveCapacity(Message.headerSize + payload.count)
    encode(into: &bytes)
    return bytes
  }

  /// Appends header and payload to `bytes`.
  public func encode(into bytes: inout [UInt8]) {
    for word in [type.rawValue, requestID, transactionID, UInt32(payload.count)] {
      withUnsafeBytes(of: word) { bytes.append(contentsOf: $0) }
    }
    bytes.append(contentsOf: payload)
  }

  /// The payload split at NULs. A trailing NUL ends the last string; bytes after the last
  /// NUL form a final unterminated element (as WRITE's value is).
  public var fields: [[UInt8]] {
    var out: [[UInt8]] = []
    var start = 0
    for (i, b) in payload.enumerated() where b == 0 {
      out.append(Array(payload[start..<i]))
      start = i + 1
    }
    if start < payload.count { out.append(Array(payload[start...])) }
    return out
  }

  /// The payload as text, for traces: NULs shown as `|`.
  public var payloadDescription: String {
    String(decoding: payload.map { $0 == 0 ? UInt8(ascii: "|") : $0 }, as: UTF8.self)
  }
}

extension Message: CustomStringConvertible {
  public var description: String {
    "\(type) req=\(requestID) tx=\(transactionID) len=\(payload.count) \"\(payloadDescription)\""
  }
}
