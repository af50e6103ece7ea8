/// A JSON value, written the way xl prints JSON (yajl's beautified form: 4-space indents).
///
/// Not `indirect`: arrays already hold their elements out of line, and an indirect enum keeps its
/// boxes behind tag-carrying pointers that LeakSanitizer cannot follow, so a value still alive at
/// exit (a QMP event a monitor was handling) was reported as leaked.
public enum JSON: Hashable, Sendable {
  case null
  case bool(Bool)
  case number(Int64)
  case string(String)
  case array([JSON])
  /// Keys in the order given.
  case object([(String, JSON)])

  public static func == (a: JSON, b: JSON) -> Bool { a.rendered() == b.rendered() }
  public func hash(into hasher: inout Hasher) { hasher.combine(rendered()) }

  /// The value as text, pretty-printed with 4-space indentation.
  public func rendered(indent: Int = 0) -> String {
    let pad = String(repeating: " ", count: indent)
    let inner = String(repeating: " ", count: indent + 4)
    switch self {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .number(let n): return String(n)
    case .string(let s): return JSON.quoted(s)
    case .array(let items):
      if items.isEmpty { return "[]" }
      return "[\n" + items.map { inner + $0.rendered(indent: indent + 4) }.joined(separator: ",\n") + "\n" + pad + "]"
    case .object(let members):
      if members.isEmpty { return "{}" }
      return "{\n"
        + members.map { inner + JSON.quoted($0.0) + ": " + $0.1.rendered(indent: indent + 4) }.joined(separator: ",\n")
        + "\n" + pad + "}"
    }
  }

  public static func quoted(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case _ where scalar.value < 0x20:
        let hex = String(scalar.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out + "\""
  }
}


extension JSON {
  /// The member `key` of an object (nil otherwise).
  public subscript(key: String) -> JSON? {
    guard case .object(let members) = self else { return nil }
    return members.first { $0.0 == key }?.1
  }

  public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
  public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
  public var intValue: Int64? { if case .number(let n) = self { n } else { nil } }
  public var arrayValue: [JSON]? { if case .array(let a) = self { a } else { nil } }

  /// On one line, as QMP commands are sent.
  public var compact: String {
    switch self {
    case .array(let items): "[" + items.map(\.compact).joined(separator: ", ") + "]"
    case .object(let members): "{" + members.map { JSON.quoted($0.0) + ": " + $0.1.compact }.joined(separator: ", ") + "}"
    default: rendered()
    }
  }
}
