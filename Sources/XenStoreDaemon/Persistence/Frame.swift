/// The framing of every record in a state-directory file:
///
///     magic "XSJ1" (4) | payload length u32 LE (4) | CRC-32C u32 LE (4) | payload
///
/// The checksum covers the length field and the payload, so a damaged length is caught as
/// surely as damaged contents. The magic lets recovery tell a torn tail (nothing valid after
/// the damage) from damage in the middle (a valid record follows it).
enum Frame {
  static let magic: [UInt8] = Array("XSJ1".utf8)
  static let headerSize = 12
  /// No record is larger: a length beyond it is damage, not a record.
  static let maxPayload = 1 << 28

  /// Appends the framed `payload` to `out`.
  static func append(_ payload: [UInt8], to out: inout [UInt8]) {
    var length = ByteWriter()
    length.u32(UInt32(payload.count))
    let crc = CRC32C.checksum(payload, continuing: CRC32C.checksum(length.bytes))
    out.append(contentsOf: magic)
    out.append(contentsOf: length.bytes)
    withUnsafeBytes(of: crc.littleEndian) { out.append(contentsOf: $0) }
    out.append(contentsOf: payload)
  }

  /// What lies at one offset of a file.
  enum Read {
    /// A whole, intact record: its payload's range and the offset just past it.
    case record(payload: Range<Int>, next: Int)
    /// The end of the file, exactly at a record boundary.
    case end
    /// No intact record here.
    case damaged(reason: String)
  }

  /// The record at `offset` of `bytes`.
  static func read(_ bytes: [UInt8], at offset: Int) -> Read {
    if offset == bytes.count { return .end }
    guard bytes.count - offset >= headerSize else {
      return .damaged(reason: "\(bytes.count - offset) bytes, too short for a record header")
    }
    guard bytes[offset..<(offset + 4)].elementsEqual(magic) else { return .damaged(reason: "no record marker") }
    let length = Int(littleEndianU32(bytes, at: offset + 4))
    let stored = littleEndianU32(bytes, at: offset + 8)
    guard length <= maxPayload else { return .damaged(reason: "impossible record length \(length)") }
    let start = offset + headerSize
    guard bytes.count - start >= length else {
      return .damaged(reason: "record of \(length) bytes cut short at \(bytes.count - start)")
    }
    let crc = bytes.withUnsafeBytes { raw in
      CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)]),
                      continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[(offset + 4)..<(offset + 8)])))
    }
    guard crc == stored else { return .damaged(reason: "checksum mismatch") }
    return .record(payload: start..<(start + length), next: start + length)
  }

  private static func littleEndianU32(_ bytes: [UInt8], at i: Int) -> UInt32 {
    UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
  }

  /// The offset of the first intact record starting after `offset`, if any: a damaged record
  /// followed by an intact one is damage in the middle, not a torn tail.
  static func nextIntactRecord(in bytes: [UInt8], after offset: Int) -> Int? {
    var i = offset + 1
    while i + headerSize <= bytes.count {
      if bytes[i] == magic[0], case .record = read(bytes, at: i) { return i }
      i += 1
    }
    return nil
  }
}
