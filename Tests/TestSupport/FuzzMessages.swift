import XenStore

/// The protocol fuzz test's messages (`ReliabilityProtocolFuzzTests`), shared with the
/// engine-level replay of its traffic (`HomeSurvivalStressTests`): the same random choices in
/// the same order, so a seed gives the same bytes in both.
public enum FuzzMessages {
  static let privilegedPaths = [
    "/fuzz", "/fuzz/a", "/fuzz/a/b", "/fuzz//x", "/fuzz/bad path", "/fuzz/", "rel/x", "", "@introduceDomain",
    "@releaseDomain", "@other", "/fuzz/" + String(repeating: "L", count: 2100), "/fuzz/\u{7f}", "/fuzz/é",
  ]
  static let anyPaths = privilegedPaths + [
    "/", "/good", "/good/w", "/local/domain/1", "/local/domain/1/data/k0", "../1/data", "/local", "/tool",
    "data", "/local/domain/2", "/local/domain/3/x",
  ]
  static let words = ["0", "1", "2", "3", "100", "101", "-1", "0x10", "T", "F", "check", "quota",
                      "help", "print", "", "tok", String(repeating: "t", count: 3000)]

  /// A request dom0 may send without reaching the well-behaved clients' data: any type but
  /// RELEASE and SET_TARGET (domains 100 and up only), paths under /fuzz, relative or bad;
  /// possibly misframed (truncated, or a header announcing more than the daemon takes).
  public static func safe(using random: inout some RandomNumberGenerator) -> (bytes: [UInt8], misframed: Bool) {
    var type = MessageType(rawValue: UInt32.random(in: 0...30, using: &random))
    var strings = (0..<Int.random(in: 0...4, using: &random)).map { _ in privilegedPaths.randomElement(using: &random)! }
    if type == .release || type == .setTarget || type == .resume || type == .introduce {
      strings = ["\(Int.random(in: 100...105, using: &random))", "\(Int.random(in: 100...105, using: &random))", "0"]
    } else if Bool.random(using: &random) {
      strings += [words.randomElement(using: &random)!]
    }
    if type == .control && strings.first.map({ !["check", "quota", "help"].contains($0) }) ?? true {
      type = .read
    }
    let shape = Int.random(in: 0..<10, using: &random)
    switch shape {
    case 0: return (header(type.rawValue, UInt32.random(in: 4097...UInt32.max, using: &random)) + [1, 2, 3], true)
    case 1: return (Array(encoded(type, strings, using: &random).dropLast(Int.random(in: 1...4, using: &random))), true)
    default: return (encoded(type, strings, using: &random), false)
    }
  }

  /// Anything: a generated request, random bytes, an oversized or lying header.
  public static func any(using random: inout some RandomNumberGenerator) -> [UInt8] {
    switch Int.random(in: 0..<8, using: &random) {
    case 0: return (0..<Int.random(in: 1...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
    case 1: return header(UInt32.random(in: 0...30, using: &random), UInt32.random(in: 4097...UInt32.max, using: &random))
    case 2: return header(UInt32.random(in: 0...30, using: &random), 200) + [0, 1]
    default:
      let type = MessageType(rawValue: UInt32.random(in: 0...40, using: &random))
      var strings = (0..<Int.random(in: 0...4, using: &random)).map { _ in anyPaths.randomElement(using: &random)! }
      if Bool.random(using: &random) { strings.append(words.randomElement(using: &random)!) }
      return encoded(type, strings, using: &random)
    }
  }

  /// Flips, inserts or deletes a few bytes anywhere, header included.
  public static func mutate(_ bytes: inout [UInt8], using random: inout some RandomNumberGenerator) {
    for _ in 0..<Int.random(in: 1...4, using: &random) {
      let i = Int.random(in: 0..<max(bytes.count, 1), using: &random)
      switch Int.random(in: 0..<3, using: &random) {
      case 0 where i < bytes.count: bytes[i] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
      case 1: bytes.insert(UInt8.random(in: 0...255, using: &random), at: min(i, bytes.count))
      default: if i < bytes.count { bytes.remove(at: i) }
      }
    }
  }

  static func encoded(_ type: MessageType, _ strings: [String], using random: inout some RandomNumberGenerator) -> [UInt8] {
    let tx: UInt32 = Int.random(in: 0..<5, using: &random) == 0 ? UInt32.random(in: 0...3, using: &random) : 0
    var payload = Array(strings.map { Array($0.utf8) + [0] }.joined())
    if payload.count > Message.payloadMax { payload = Array(payload.prefix(Message.payloadMax)) }
    if Int.random(in: 0..<6, using: &random) == 0 && !payload.isEmpty { payload.removeLast() }
    return Message(type: type, requestID: UInt32.random(in: 0...UInt32.max, using: &random), transactionID: tx,
                   payload: payload).encoded()
  }

  static func header(_ type: UInt32, _ length: UInt32) -> [UInt8] {
    var bytes: [UInt8] = []
    for word in [type, 1, 0, length] { withUnsafeBytes(of: word) { bytes.append(contentsOf: $0) } }
    return bytes
  }
}
