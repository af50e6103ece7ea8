/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every record in a
/// state directory. Table-driven, eight bytes per step ("slicing by 8"), so that checksumming
/// a snapshot of a large tree stays cheap next to writing it.
enum CRC32C {
  /// The checksum of `bytes`, continuing from `crc` (the checksum of the bytes before them).
  static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
    var c = ~crc
    var i = 0
    let n = bytes.count
    tables.withUnsafeBufferPointer { t in
      while n - i >= 8 {
        let low = c ^ (UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16
          | UInt32(bytes[i + 3]) << 24)
        let high = UInt32(bytes[i + 4]) | UInt32(bytes[i + 5]) << 8 | UInt32(bytes[i + 6]) << 16
          | UInt32(bytes[i + 7]) << 24
        c = t[7 * 256 + Int(low & 0xff)] ^ t[6 * 256 + Int((low >> 8) & 0xff)]
          ^ t[5 * 256 + Int((low >> 16) & 0xff)] ^ t[4 * 256 + Int(low >> 24)]
          ^ t[3 * 256 + Int(high & 0xff)] ^ t[2 * 256 + Int((high >> 8) & 0xff)]
          ^ t[1 * 256 + Int((high >> 16) & 0xff)] ^ t[Int(high >> 24)]
        i += 8
      }
      while i < n {
        c = t[Int((c ^ UInt32(bytes[i])) & 0xff)] ^ (c >> 8)
        i += 1
      }
    }
    return ~c
  }

  static func checksum(_ bytes: some Collection<UInt8>, continuing crc: UInt32 = 0) -> UInt32 {
    if let result = bytes.withContiguousStorageIfAvailable({ checksum(UnsafeRawBufferPointer($0), continuing: crc) }) {
      return result
    }
    return Array(bytes).withUnsafeBytes { checksum($0, continuing: crc) }
  }

  /// `tables[k * 256 + b]`: the CRC of byte `b` followed by `k` zero bytes.
  private static let tables: [UInt32] = {
    var t = [UInt32](repeating: 0, count: 8 * 256)
    for b in 0..<256 {
      var c = UInt32(b)
      for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
      t[b] = c
    }
    for k in 1..<8 {
      for b in 0..<256 {
        let previous = t[(k - 1) * 256 + b]
        t[k * 256 + b] = t[Int(previous & 0xff)] ^ (previous >> 8)
      }
    }
    return t
  }()
}
