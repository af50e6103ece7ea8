/// How xenstore-utils shows values on a terminal and reads them from the command line
/// (`sanitise_value` / `unsanitise_value` in Xen's xenstore_client.c), byte for byte.
enum ValueEscaping {
  /// Printable ASCII stays; `\t \n \r \\` get their C escape; bytes below 8 become three-digit
  /// octal (`\000`), every other byte `\xNN`.
  static func escape(_ value: some Sequence<UInt8>) -> [UInt8] {
    var out: [UInt8] = []
    for c in value {
      if c >= 0x20 && c <= 0x7e && c != UInt8(ascii: "\\") {
        out.append(c)
        continue
      }
      out.append(UInt8(ascii: "\\"))
      switch c {
      case 0x09: out.append(UInt8(ascii: "t"))
      case 0x0a: out.append(UInt8(ascii: "n"))
      case 0x0d: out.append(UInt8(ascii: "r"))
      case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
      case 0..<8: out.append(contentsOf: "00\(c)".utf8)
      default: out.append(contentsOf: ("x" + hex(c)).utf8)
      }
    }
    return out
  }

  /// The inverse, with the C version's edges: an unknown escape yields the character itself,
  /// `\x` takes what `sscanf("%2x")` takes (so `\x-1` is 0xff and `\x0x` is 0), octal takes up
  /// to three digits (truncated to a byte), and a trailing backslash becomes a NUL byte.
  static func unescape(_ text: some Collection<UInt8>) -> [UInt8] {
    let input = Array(text.prefix { $0 != 0 })  // argv strings end at NUL
    var out: [UInt8] = []
    var i = 0
    while i < input.count {
      var c = UInt32(input[i])
      i += 1
      if c == UInt32(UInt8(ascii: "\\")) {
        let escaped = i < input.count ? input[i] : 0
        i += 1
        c = UInt32(escaped)
        switch escaped {
        case UInt8(ascii: "t"): c = 0x09
        case UInt8(ascii: "n"): c = 0x0a
        case UInt8(ascii: "r"): c = 0x0d
        case UInt8(ascii: "x"):
          if let (value, used) = scanHex(input[i...]) { c = value; i += used }
        case UInt8(ascii: "0")...UInt8(ascii: "7"):
          i -= 1
          let digits = input[i...].prefix(3).prefix { (UInt8(ascii: "0")...UInt8(ascii: "7")).contains($0) }
          c = digits.reduce(0) { $0 * 8 + UInt32($1 - UInt8(ascii: "0")) }
          i += digits.count
        case 0:
          i -= 1
        default:
          break
        }
      }
      out.append(UInt8(truncatingIfNeeded: c))
    }
    return out
  }

  /// glibc's `sscanf(s, "%2x%n")`: skips white space, then at most two characters of an
  /// optional sign, optional `0x`, hex digits. The value and characters used, or nil if none.
  private static func scanHex(_ s: ArraySlice<UInt8>) -> (UInt32, Int)? {
    var i = s.startIndex
    while i < s.endIndex, [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d].contains(s[i]) { i += 1 }
    var width = 2
    var negative = false
    if i < s.endIndex, s[i] == UInt8(ascii: "-") || s[i] == UInt8(ascii: "+") {
      negative = s[i] == UInt8(ascii: "-")
      i += 1
      width -= 1
    }
    var value: UInt32 = 0
    var digits = 0
    if width == 2, i + 1 < s.endIndex, s[i] == UInt8(ascii: "0"), s[i + 1] | 0x20 == UInt8(ascii: "x") {
      i += 2
      width = 0
      digits = 1  // the prefix's 0 counts as a conversion
    }
    while width > 0, i < s.endIndex, let d = hexValue(s[i]) {
      value = value * 16 + d
      i += 1
      width -= 1
      digits += 1
    }
    guard digits > 0 else { return nil }
    return (negative ? 0 &- value : value, i - s.startIndex)
  }

  private static func hexValue(_ c: UInt8) -> UInt32? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(c - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(c - UInt8(ascii: "A") + 10)
    default: nil
    }
  }

  private static func hex(_ c: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(c >> 4)], digits[Int(c & 15)]])
  }
}
