/// A token of xl.cfg syntax, with the place it starts.
struct ConfigToken: Sendable {
  enum Kind: Hashable, Sendable {
    case identifier(String)
    case number(Int64)
    case string(String)
    case assign, addAssign, comma, semicolon, openBracket, closeBracket
    case newline
    case end
  }

  var kind: Kind
  var location: SourceLocation

  /// How the token reads in "found …" messages.
  var description: String {
    switch kind {
    case .identifier(let name): "identifier \"\(name)\""
    case .number(let n): "number \(n)"
    case .string(let s): "string \(ConfigValue.quoted(s))"
    case .assign: "'='"
    case .addAssign: "'+='"
    case .comma: "','"
    case .semicolon: "';'"
    case .openBracket: "'['"
    case .closeBracket: "']'"
    case .newline: "end of line"
    case .end: "end of file"
    }
  }
}

/// Splits xl.cfg text into tokens, following libxlu's lexer: keys are `[a-z][_0-9a-z]*`,
/// numbers start with a digit, strings are single- or double-quoted on one line with C
/// escapes, `#` starts a comment, spaces and tabs separate, newlines are tokens.
struct ConfigLexer {
  private let source: [UInt8]
  private let file: String
  private var index = 0
  private var line: Int
  private var lineStart = 0

  init(source: [UInt8], file: String, firstLine: Int) {
    self.source = source
    self.file = file
    self.line = firstLine
  }

  private var here: SourceLocation { location(at: index) }

  private func location(at offset: Int) -> SourceLocation {
    SourceLocation(file: file, line: line, column: offset - lineStart + 1)
  }

  private func peek(_ ahead: Int = 0) -> UInt8? {
    index + ahead < source.count ? source[index + ahead] : nil
  }

  mutating func next() throws(XenLightError) -> ConfigToken {
    skipBlanksAndComment()
    let start = here
    guard let byte = peek() else { return ConfigToken(kind: .end, location: start) }
    switch byte {
    case UInt8(ascii: "\n"):
      index += 1
      line += 1
      lineStart = index
      return ConfigToken(kind: .newline, location: start)
    case UInt8(ascii: "="): index += 1; return ConfigToken(kind: .assign, location: start)
    case UInt8(ascii: ","): index += 1; return ConfigToken(kind: .comma, location: start)
    case UInt8(ascii: ";"): index += 1; return ConfigToken(kind: .semicolon, location: start)
    case UInt8(ascii: "["): index += 1; return ConfigToken(kind: .openBracket, location: start)
    case UInt8(ascii: "]"): index += 1; return ConfigToken(kind: .closeBracket, location: start)
    case UInt8(ascii: "+") where peek(1) == UInt8(ascii: "="):
      index += 2
      return ConfigToken(kind: .addAssign, location: start)
    case UInt8(ascii: "\""), UInt8(ascii: "'"):
      return ConfigToken(kind: .string(try string(quote: byte)), location: start)
    case UInt8(ascii: "0")...UInt8(ascii: "9"):
      return ConfigToken(kind: .number(try number()), location: start)
    case UInt8(ascii: "a")...UInt8(ascii: "z"):
      return ConfigToken(kind: .identifier(identifier()), location: start)
    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"):
      throw XenLightError(
        .syntax,
        "unexpected character '\(Character(Unicode.Scalar(byte)))': setting names start with a lower-case letter and contain only a-z, 0-9, '_' and '.'",
        at: start)
    default:
      throw XenLightError(.syntax, "unexpected character \(Self.describe(byte))", at: start)
    }
  }

  private mutating func skipBlanksAndComment() {
    while let byte = peek() {
      if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") {
        index += 1
      } else if byte == UInt8(ascii: "#") {
        while let b = peek(), b != UInt8(ascii: "\n") { index += 1 }
      } else {
        return
      }
    }
  }

  private mutating func identifier() -> String {
    let start = index
    while let b = peek(), Self.isKeyByte(b) { index += 1 }
    return String(decoding: source[start..<index], as: UTF8.self)
  }

  private static func isKeyByte(_ b: UInt8) -> Bool {
    (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
      || b == UInt8(ascii: "_") || b == UInt8(ascii: ".")  // xl.conf's vif.default.bridge
  }

  /// A number token: it runs over letters and digits, and all of it must be a number.
  private mutating func number() throws(XenLightError) -> Int64 {
    let start = index
    let startLocation = here
    while let b = peek(), Self.isKeyByte(b) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) { index += 1 }
    let text = String(decoding: source[start..<index], as: UTF8.self)
    switch Self.integer(text) {
    case .success(let value): return value
    case .failure(let reason): throw XenLightError(.syntax, reason.description, at: startLocation)
    }
  }

  /// `text` read as `strtol(text, &end, 0)` reads it, where `end` must reach the end:
  /// decimal, 0-prefixed octal or 0x hex, with an optional '-'. The failure is a message.
  static func integer(_ text: String) -> Result<Int64, NumberError> {
    var digits = Substring(text)
    let negative = digits.hasPrefix("-")
    if negative { digits = digits.dropFirst() }
    var radix = 10
    if digits.count > 2, digits.hasPrefix("0x") || digits.hasPrefix("0X") {
      radix = 16
      digits = digits.dropFirst(2)
    } else if digits.count > 1, digits.hasPrefix("0") {
      radix = 8
      digits = digits.dropFirst()
    }
    guard !digits.isEmpty, digits.allSatisfy({ Int(String($0), radix: radix) != nil }) else {
      return .failure(NumberError(
        "invalid number \"\(text)\"" + (radix == 8 ? " (a leading 0 makes a number octal)" : "")))
    }
    guard let value = Int64((negative ? "-" : "") + digits, radix: radix) else {
      return .failure(NumberError("number \(text) is too large"))
    }
    return .success(value)
  }

  struct NumberError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
  }

  /// A quoted string, unescaped as libxlu does: `\\ \" \' \a \b \f \n \r \t \v`, `\xHH`
  /// and up to three octal digits. A string must end on the line it starts.
  private mutating func string(quote: UInt8) throws(XenLightError) -> String {
    let startLocation = here
    index += 1
    var bytes: [UInt8] = []
    while true {
      guard let b = peek(), b != UInt8(ascii: "\n") else {
        throw XenLightError(
          .syntax, "unterminated string: a string must end with \(Self.describe(quote)) on the line it starts",
          at: startLocation)
      }
      index += 1
      if b == quote { break }
      guard b == UInt8(ascii: "\\") else {
        bytes.append(b)
        continue
      }
      let escapeLocation = location(at: index - 1)
      guard let e = peek(), e != UInt8(ascii: "\n") else {
        throw XenLightError(.syntax, "unterminated string: '\\' at the end of the line", at: escapeLocation)
      }
      index += 1
      switch e {
      case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"): bytes.append(e)
      case UInt8(ascii: "a"): bytes.append(7)
      case UInt8(ascii: "b"): bytes.append(8)
      case UInt8(ascii: "f"): bytes.append(12)
      case UInt8(ascii: "n"): bytes.append(10)
      case UInt8(ascii: "r"): bytes.append(13)
      case UInt8(ascii: "t"): bytes.append(9)
      case UInt8(ascii: "v"): bytes.append(11)
      case UInt8(ascii: "x"):
        var value = 0
        var count = 0
        while count < 2, let h = peek(), let digit = Int(String(Unicode.Scalar(h)), radix: 16) {
          value = value * 16 + digit
          count += 1
          index += 1
        }
        guard count > 0 else {
          throw XenLightError(.syntax, "invalid escape sequence '\\x': expected hexadecimal digits", at: escapeLocation)
        }
        bytes.append(UInt8(value))
      case UInt8(ascii: "0")...UInt8(ascii: "7"):
        var value = Int(e - UInt8(ascii: "0"))
        var count = 1
        while count < 3, let o = peek(), o >= UInt8(ascii: "0"), o <= UInt8(ascii: "7") {
          value = value * 8 + Int(o - UInt8(ascii: "0"))
          count += 1
          index += 1
        }
        guard value <= 255 else {
          throw XenLightError(.syntax, "invalid escape sequence: octal value \(value) is above 255", at: escapeLocation)
        }
        bytes.append(UInt8(value))
      default:
        throw XenLightError(.syntax, "invalid escape sequence '\\\(Self.printable(e))'", at: escapeLocation)
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  private static func printable(_ b: UInt8) -> String {
    b >= 0x20 && b < 0x7f ? String(Unicode.Scalar(b)) : "\\x" + String(b, radix: 16)
  }

  static func describe(_ b: UInt8) -> String {
    b >= 0x20 && b < 0x7f ? "'\(Unicode.Scalar(b))'" : "byte 0x\(String(b, radix: 16))"
  }
}
