/// A value in an xl.cfg file: a string, a number or a (possibly nested) list.
///
/// xl's own parser (libxlu) keeps every atom as text and converts on use; here numbers are
/// converted once, with the same rules as `strtol(…, 0)`: decimal, 0-prefixed octal, 0x hex.
/// Not `indirect`, for the reason given on `JSON`.
public enum ConfigValue: Hashable, Sendable, CustomStringConvertible {
  case string(String)
  case number(Int64)
  case list([ConfigValue])

  /// What kind of value this is, for messages ("a string", "a number", "a list").
  public var kind: String {
    switch self {
    case .string: "a string"
    case .number: "a number"
    case .list: "a list"
    }
  }

  /// The value written back in xl.cfg syntax.
  public var description: String {
    switch self {
    case .string(let s): ConfigValue.quoted(s)
    case .number(let n): String(n)
    case .list(let items): "[" + items.map(\.description).joined(separator: ", ") + "]"
    }
  }

  /// `s` as a double-quoted xl.cfg string, escaping what the parser unescapes.
  public static func quoted(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\t": out += "\\t"
      case "\r": out += "\\r"
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out + "\""
  }
}

/// One `KEY = VALUE` (or `KEY += VALUE`) setting, with where it was written.
public struct ConfigSetting: Hashable, Sendable {
  public var key: String
  public var value: ConfigValue
  /// Where the key was written (for `+=`, the latest addition).
  public var location: SourceLocation

  public init(key: String, value: ConfigValue, location: SourceLocation) {
    self.key = key
    self.value = value
    self.location = location
  }
}

/// A parsed xl.cfg: the settings in order of first appearance, each with its final value.
///
/// As in xl, a later `KEY = VALUE` replaces an earlier one, and `KEY += VALUE` appends to a
/// list (or concatenates a string). Command-line `KEY=VALUE` overrides are parsed as more
/// lines of the same file (`merging(_:file:)`), exactly as xl does with its extra config.
public struct ConfigFile: Hashable, Sendable {
  public private(set) var settings: [ConfigSetting] = []

  public init() {}

  /// The setting for `key`, if the file has one.
  public subscript(key: String) -> ConfigSetting? {
    settings.first { $0.key == key }
  }

  /// Parses xl.cfg text. `file` names the source in error locations.
  public static func parse(_ text: String, file: String) throws(XenLightError) -> ConfigFile {
    var config = ConfigFile()
    try config.merge(text, file: file)
    return config
  }

  /// Reads and parses the file at `path`.
  public static func read(contentsOf path: String) throws(XenLightError) -> ConfigFile {
    let text = try FileIO.readText(path)
    return try parse(text, file: path)
  }

  /// A copy with `text` parsed after this file's own settings.
  public func merging(_ text: String, file: String) throws(XenLightError) -> ConfigFile {
    var copy = self
    try copy.merge(text, file: file)
    return copy
  }

  /// A copy with each of `overrides` (`KEY=VALUE` or `KEY+=VALUE`, as `xl create` takes them)
  /// applied in order. Each one is a line of the pseudo-file "command line" (line = position).
  public func applying(overrides: [String]) throws(XenLightError) -> ConfigFile {
    var copy = self
    for (index, line) in overrides.enumerated() {
      var parser = ConfigParser(source: Array(line.utf8), file: "command line", firstLine: index + 1)
      try parser.parse { setting, append throws(XenLightError) in try copy.apply(setting, append: append) }
    }
    return copy
  }

  mutating func merge(_ text: String, file: String) throws(XenLightError) {
    var parser = ConfigParser(source: Array(text.utf8), file: file, firstLine: 1)
    try parser.parse { setting, append throws(XenLightError) in try apply(setting, append: append) }
  }

  /// Records one setting: `=` replaces, `+=` appends to what is there (or sets it).
  mutating func apply(_ setting: ConfigSetting, append: Bool) throws(XenLightError) {
    guard let index = settings.firstIndex(where: { $0.key == setting.key }) else {
      settings.append(setting)
      return
    }
    guard append else {
      settings[index] = setting
      return
    }
    switch (settings[index].value, setting.value) {
    case (.list(let old), .list(let new)):
      settings[index].value = .list(old + new)
    case (.string(let old), .string(let new)):
      settings[index].value = .string(old + new)
    case (let old, let new):
      throw XenLightError(
        .syntax, "cannot append \(new.kind) to \"\(setting.key)\", which is \(old.kind)",
        at: setting.location)
    }
    settings[index].location = setting.location
  }
}
