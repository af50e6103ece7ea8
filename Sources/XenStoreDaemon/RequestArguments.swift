import XenStore

/// A request failed with this wire errno.
struct WireError: Error {
  let code: XenStoreError.Code
  init(_ code: XenStoreError.Code) { self.code = code }
}

/// How C xenstored reads request payloads; its quirks decide which errno a malformed request
/// gets, and clients can observe them, so they are kept.
struct RequestArguments {
  let payload: [UInt8]

  /// The single argument of a one-string request: the payload must be one NUL-terminated
  /// string and nothing else (C's `onearg`); nil otherwise.
  var single: String? {
    guard let nul = payload.firstIndex(of: 0), nul == payload.count - 1 else { return nil }
    return String(decoding: payload[..<nul], as: UTF8.self)
  }

  /// The NUL-terminated strings; bytes after the last NUL are ignored (C's `get_strings`).
  var strings: [String] {
    var out: [String] = []
    var start = 0
    for i in payload.indices where payload[i] == 0 {
      out.append(String(decoding: payload[start..<i], as: UTF8.self))
      start = i + 1
    }
    return out
  }

  /// The number of NULs (C's `xs_count_strings`).
  var nulCount: Int { payload.reduce(0) { $0 + ($1 == 0 ? 1 : 0) } }

  /// C's `atoi` of a domid argument, as the unsigned value C xenstored then uses:
  /// leading digits only, 0 if there are none.
  static func domid(_ text: String) -> UInt32 {
    var bytes = Substring(text).utf8.drop { $0 == UInt8(ascii: " ") || ($0 >= 9 && $0 <= 13) }
    var negative = false
    if let sign = bytes.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
      negative = sign == UInt8(ascii: "-")
      bytes = bytes.dropFirst()
    }
    var value: Int64 = 0
    for b in bytes {
      guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { break }
      value = value &* 10 &+ Int64(b - UInt8(ascii: "0"))
      if value > Int64(UInt32.max) { value = Int64(UInt32.max) }
    }
    return UInt32(truncatingIfNeeded: negative ? -value : value)
  }
}

extension Array where Element == UInt8 {
  /// `text` followed by NUL.
  init(nulTerminated text: String) {
    self.init(text.utf8)
    append(0)
  }
}
