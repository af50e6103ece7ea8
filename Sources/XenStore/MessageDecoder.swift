/// Reassembles messages from a byte stream split anywhere: libxenstore writes the header and
/// the payload (and WRITE's value) in separate `write()`s, so a read may end mid-message.
public struct MessageDecoder: Sendable {
  private var buffer: [UInt8] = []
  private var start = 0

  public init() {}

  /// Bytes received but not yet part of a whole message.
  public var bufferedByteCount: Int { buffer.count - start }

  /// Appends received bytes.
  public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
    if start > 0 && start == buffer.count { buffer.removeAll(keepingCapacity: true); start = 0 }
    buffer.append(contentsOf: bytes)
  }

  /// Appends received bytes from raw memory.
  public mutating func append(_ bytes: UnsafeRawBufferPointer) {
    if start > 0 && start == buffer.count { buffer.removeAll(keepingCapacity: true); start = 0 }
    buffer.append(contentsOf: bytes)
  }

  /// The next whole message, or nil if more bytes are needed.
  /// Throws `.invalidLength` for a header announcing more than `Message.payloadMax` bytes:
  /// the stream cannot be resynchronised, so the connection must be dropped (as Xen does).
  public mutating func next() throws(XenStoreError) -> Message? {
    guard buffer.count - start >= Message.headerSize else { compact(); return nil }
    let header = buffer.withUnsafeBytes { raw -> (UInt32, UInt32, UInt32, UInt32) in
      (raw.loadUnaligned(fromByteOffset: start, as: UInt32.self),
       raw.loadUnaligned(fromByteOffset: start + 4, as: UInt32.self),
       raw.loadUnaligned(fromByteOffset: start + 8, as: UInt32.self),
       raw.loadUnaligned(fromByteOffset: start + 12, as: UInt32.self))
    }
    let length = Int(header.3)
    guard length <= Message.payloadMax else {
      throw XenStoreError(.invalidLength, "message length \(length) exceeds \(Message.payloadMax)")
    }
    guard buffer.count - start >= Message.headerSize + length else { compact(); return nil }
    let body = start + Message.headerSize
    let message = Message(type: MessageType(rawValue: header.0), requestID: header.1,
                          transactionID: header.2, payload: Array(buffer[body..<body + length]))
    start = body + length
    return message
  }

  private mutating func compact() {
    if start > 4096 || (start > 0 && start == buffer.count) {
      buffer.removeSubrange(0..<start)
      start = 0
    }
  }
}
