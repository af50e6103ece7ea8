/// A domain's 128-bit UUID, written as 8-4-4-4-12 lower-case hex digits (as `/vm/<uuid>`).
public struct DomainUUID: Hashable, Sendable, CustomStringConvertible {
  public let bytes: [UInt8]

  /// Parses `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (either case); nil if malformed.
  public init?(_ text: String) {
    let groups = text.split(separator: "-", omittingEmptySubsequences: false)
    guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return nil }
    var bytes: [UInt8] = []
    for group in groups {
      var chars = group.makeIterator()
      while let high = chars.next(), let low = chars.next() {
        guard let byte = UInt8(String([high, low]), radix: 16) else { return nil }
        bytes.append(byte)
      }
    }
    self.bytes = bytes
  }

  /// A random (version 4) UUID from getrandom(2).
  public static func random() -> DomainUUID {
    var bytes = [UInt8](repeating: 0, count: 16)
    Random.fill(&bytes)
    bytes[6] = (bytes[6] & 0x0f) | 0x40
    bytes[8] = (bytes[8] & 0x3f) | 0x80
    return DomainUUID(bytes: bytes)
  }

  private init(bytes: [UInt8]) { self.bytes = bytes }

  public var description: String {
    let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
    return [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { hex[$0].joined() }.joined(separator: "-")
  }
}

/// Random bytes for UUIDs and MAC addresses (the stdlib's generator uses getrandom(2)).
enum Random {
  static func fill(_ bytes: inout [UInt8]) {
    var generator = SystemRandomNumberGenerator()
    for i in bytes.indices { bytes[i] = generator.next() }
  }
}
