/// Reads one JSON text (RFC 8259) into a `JSON` value: what QMP sends, one message per line.
///
/// Strict: one value with only whitespace around it; no comments, trailing commas, single
/// quotes or control characters inside strings. Numbers keep their integer part (nothing QMP
/// sends that a toolstack reads has a fraction) and saturate at Int64's bounds. Nesting
/// deeper than `maximumDepth` is refused rather than recursed into.
extension JSON {
  /// Why a text is not JSON, and at which byte.
  public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var offset: Int
    public var description: String { "\(reason) at byte \(offset)" }
  }

  public static let maximumDepth = 512

  public static func parse(_ text: some Collection<UInt8>) throws(ParseError) -> JSON {
    var parser = JSONParser(bytes: Array(text))
    parser.skipWhitespace()
    let value = try parser.value(depth: 0)
    parser.skipWhitespace()
    guard parser.atEnd else { throw parser.error("unexpected text after the value") }
    return value
  }

  public static func parse(_ text: String) throws(ParseError) -> JSON {
    try parse(Array(text.utf8))
  }
}

private struct JSONParser {
  let bytes: [UInt8]
  var index = 0

  init(bytes: [UInt8]) { self.bytes = bytes }

  var atEnd: Bool { index == bytes.count }

  func error(_ reason: String) -> JSON.ParseError { JSON.ParseError(reason: reason, offset: index) }

  mutating func skipWhitespace() {
    while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
  }

  mutating func value(depth: Int) throws(JSON.ParseError) -> JSON {
    guard index < bytes.count else { throw error("unexpected end of text") }
    switch bytes[index] {
    case UInt8(ascii: "{"): return try object(depth: depth + 1)
    case UInt8(ascii: "["): return try array(depth: depth + 1)
    case UInt8(ascii: "\""): return .string(try string())
    case UInt8(ascii: "t"): try literal("true"); return .bool(true)
    case UInt8(ascii: "f"): try literal("false"); return .bool(false)
    case UInt8(ascii: "n"): try literal("null"); return .null
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
    default: throw error("unexpected character '\(Unicode.Scalar(bytes[index]))'")
    }
  }

  mutating func literal(_ word: StaticString) throws(JSON.ParseError) {
    let expected = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
    guard bytes.count - index >= expected.count, bytes[index..<index + expected.count].elementsEqual(expected) else {
      throw error("invalid literal")
    }
    index += expected.count
  }

  mutating func object(depth: Int) throws(JSON.ParseError) -> JSON {
    guard depth <= JSON.maximumDepth else { throw error("nested deeper than \(JSON.maximumDepth)") }
    index += 1
    var members: [(String, JSON)] = []
    skipWhitespace()
    if try consume(UInt8(ascii: "}")) { return .object(members) }
    while true {
      skipWhitespace()
      guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a member name") }
      let key = try string()
      skipWhitespace()
      guard try consume(UInt8(ascii: ":")) else { throw error("expected ':'") }
      skipWhitespace()
      members.append((key, try value(depth: depth)))
      skipWhitespace()
      if try consume(UInt8(ascii: "}")) { return .object(members) }
      guard try consume(UInt8(ascii: ",")) else { throw error("expected ',' or '}'") }
    }
  }

  mutating func array(depth: Int) throws(JSON.ParseError) -> JSON {
    guard depth <= JSON.maximumDepth else { throw error("nested deeper than \(JSON.maximumDepth)") }
    index += 1
    var items: [JSON] = []
    skipWhitespace()
    if try consume(UInt8(ascii: "]")) { return .array(items) }
    while true {
      skipWhitespace()
      items.append(try value(depth: depth))
      skipWhitespace()
      if try consume(UInt8(ascii: "]")) { return .array(items) }
      guard try consume(UInt8(ascii: ",")) else { throw error("expected ',' or ']'") }
    }
  }

  /// Consumes `byte` if it is next.
  mutating func consume(_ byte: UInt8) throws(JSON.ParseError) -> Bool {
    guard index < bytes.count else { throw error("unexpected end of text") }
    guard bytes[index] == byte else { return false }
    index += 1
    return true
  }

  /// A string, from its opening quote. Invalid UTF-8 becomes U+FFFD.
  mutating func string() throws(JSON.ParseError) -> String {
    index += 1
    var utf8: [UInt8] = []
    while true {
      guard index < bytes.count else { throw error("unterminated string") }
      let byte = bytes[index]
      switch byte {
      case UInt8(ascii: "\""):
        index += 1
        return String(decoding: utf8, as: UTF8.self)
      case UInt8(ascii: "\\"):
        index += 1
        guard index < bytes.count else { throw error("unterminated string") }
        let escape = bytes[index]
        index += 1
        switch escape {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"): utf8.append(contentsOf: String(try unicodeEscape()).utf8)
        default:
          index -= 1
          throw error("invalid escape '\\\(Unicode.Scalar(escape))'")
        }
      case 0..<0x20:
        throw error("control character in a string")
      default:
        utf8.append(byte)
        index += 1
      }
    }
  }

  /// After `\u`: four hex digits, and a second escape for a surrogate pair. A lone
  /// surrogate becomes U+FFFD, as an invalid byte sequence does.
  mutating func unicodeEscape() throws(JSON.ParseError) -> Character {
    let first = try hex4()
    if (0xD800..<0xDC00).contains(first), bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"),
      bytes[index + 1] == UInt8(ascii: "u")
    {
      let mark = index
      index += 2
      let second = try hex4()
      if (0xDC00..<0xE000).contains(second) {
        let scalar = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        return Character(Unicode.Scalar(scalar)!)
      }
      index = mark
    }
    return Character(Unicode.Scalar(first) ?? "\u{FFFD}")
  }

  mutating func hex4() throws(JSON.ParseError) -> UInt32 {
    guard bytes.count - index >= 4 else { throw error("incomplete \\u escape") }
    var value: UInt32 = 0
    for _ in 0..<4 {
      let digit: UInt32
      switch bytes[index] {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(bytes[index] - UInt8(ascii: "0"))
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(bytes[index] - UInt8(ascii: "a") + 10)
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(bytes[index] - UInt8(ascii: "A") + 10)
      default: throw error("invalid hex digit in a \\u escape")
      }
      value = value << 4 | digit
      index += 1
    }
    return value
  }

  /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, as an integer: a fraction or
  /// exponent goes through Double; out-of-range values saturate.
  mutating func number() throws(JSON.ParseError) -> Int64 {
    let start = index
    if bytes[index] == UInt8(ascii: "-") { index += 1 }
    guard index < bytes.count, isDigit(bytes[index]) else { throw error("expected a digit") }
    if bytes[index] == UInt8(ascii: "0") {
      index += 1
    } else {
      while index < bytes.count, isDigit(bytes[index]) { index += 1 }
    }
    var integral = true
    if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
      integral = false
      index += 1
      guard index < bytes.count, isDigit(bytes[index]) else { throw error("expected a digit after '.'") }
      while index < bytes.count, isDigit(bytes[index]) { index += 1 }
    }
    if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
      integral = false
      index += 1
      if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
      guard index < bytes.count, isDigit(bytes[index]) else { throw error("expected a digit in the exponent") }
      while index < bytes.count, isDigit(bytes[index]) { index += 1 }
    }
    let text = String(decoding: bytes[start..<index], as: UTF8.self)
    if integral, let exact = Int64(text) { return exact }
    let approximate = Double(text) ?? 0
    if approximate >= 9.2e18 { return .max }
    if approximate <= -9.2e18 { return .min }
    return Int64(approximate)
  }

  func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
}
