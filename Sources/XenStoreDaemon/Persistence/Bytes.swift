import XenStore

/// Little-endian integers, LEB128 lengths and length-prefixed strings: the encoding inside
/// every state-directory record.
struct ByteWriter {
  var bytes: [UInt8] = []

  mutating func u8(_ v: UInt8) { bytes.append(v) }

  mutating func u32(_ v: UInt32) {
    withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
  }

  mutating func u64(_ v: UInt64) {
    withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
  }

  /// An unsigned LEB128 number: one byte for the small counts and lengths that dominate.
  mutating func count(_ v: Int) {
    var v = UInt64(v)
    while v >= 0x80 {
      bytes.append(UInt8(v & 0x7f) | 0x80)
      v >>= 7
    }
    bytes.append(UInt8(v))
  }

  mutating func data(_ v: some Collection<UInt8>) {
    count(v.count)
    bytes.append(contentsOf: v)
  }

  mutating func string(_ v: String) { data(v.utf8) }

  mutating func permissions(_ p: Permissions) {
    count(p.entries.count)
    for entry in p.entries {
      u32(entry.domain)
      u8(entry.access.rawValue)
    }
  }
}

/// Reads what `ByteWriter` wrote; every read checks the bounds and throws `.truncated` rather
/// than trapping, since the bytes come from disk.
struct ByteReader {
  struct Malformed: Error, CustomStringConvertible {
    let description: String
  }

  let bytes: [UInt8]
  private(set) var position: Int
  let end: Int

  init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
    self.bytes = bytes
    position = start
    self.end = end ?? bytes.count
  }

  var isAtEnd: Bool { position == end }

  private mutating func take(_ n: Int) throws(Malformed) -> Range<Int> {
    guard n >= 0, end - position >= n else { throw Malformed(description: "truncated field") }
    defer { position += n }
    return position..<(position + n)
  }

  mutating func u8() throws(Malformed) -> UInt8 { bytes[try take(1).lowerBound] }

  mutating func u32() throws(Malformed) -> UInt32 {
    let r = try take(4)
    return bytes[r].reversed().reduce(0) { $0 << 8 | UInt32($1) }
  }

  mutating func u64() throws(Malformed) -> UInt64 {
    let r = try take(8)
    return bytes[r].reversed().reduce(0) { $0 << 8 | UInt64($1) }
  }

  mutating func count() throws(Malformed) -> Int {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while true {
      let b = try u8()
      value |= UInt64(b & 0x7f) << shift
      if b & 0x80 == 0 { break }
      shift += 7
      guard shift < 63 else { throw Malformed(description: "overlong number") }
    }
    // Everything counted takes at least a byte: no count exceeds what is left of the record.
    guard value <= UInt64(end - position) else {
      throw Malformed(description: "count \(value) larger than the record")
    }
    return Int(value)
  }

  mutating func data() throws(Malformed) -> [UInt8] { Array(bytes[try take(try count())]) }

  mutating func string() throws(Malformed) -> String {
    let r = try take(try count())
    return String(decoding: bytes[r], as: UTF8.self)
  }

  mutating func permissions() throws(Malformed) -> Permissions {
    let n = try count()
    var entries: [Permission] = []
    entries.reserveCapacity(min(n, 64))
    for _ in 0..<n {
      let domain = try u32()
      let access = try u8()
      guard access <= Access.both.rawValue else { throw Malformed(description: "bad access bits \(access)") }
      entries.append(Permission(domain: domain, access: Access(rawValue: access)))
    }
    guard let p = Permissions(entries) else { throw Malformed(description: "empty access list") }
    return p
  }
}
