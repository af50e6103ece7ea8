/// Reads typed settings out of a `ConfigFile`, remembering which keys were read so that the
/// rest can be reported as unknown. Type errors name the key and where it was set, the way
/// xl's `xlu_cfg_get_*` do: a number may be written quoted ("128"), a boolean is a number
/// (0 or not), and a string setting also accepts a number.
struct SettingsReader {
  let file: ConfigFile
  private(set) var readKeys: Set<String> = []

  init(_ file: ConfigFile) { self.file = file }

  /// The setting for `key`, marking it read.
  mutating func setting(_ key: String) -> ConfigSetting? {
    readKeys.insert(key)
    return file[key]
  }

  /// The settings nobody read, in file order.
  var unreadSettings: [ConfigSetting] { file.settings.filter { !readKeys.contains($0.key) } }

  func error(_ setting: ConfigSetting, _ message: String) -> XenLightError {
    XenLightError(.invalidConfig, "\(setting.key): \(message)", at: setting.location)
  }

  mutating func string(_ key: String) throws(XenLightError) -> String? {
    guard let setting = setting(key) else { return nil }
    switch setting.value {
    case .string(let s): return s
    case .number(let n): return String(n)
    case .list: throw error(setting, "expected a string, found a list")
    }
  }

  mutating func integer(_ key: String) throws(XenLightError) -> Int64? {
    guard let setting = setting(key) else { return nil }
    switch setting.value {
    case .number(let n):
      return n
    case .string(let s):
      // Quoted numbers are numbers to xl too (it converts every atom with strtol).
      guard case .success(let value) = ConfigLexer.integer(s) else {
        throw error(setting, "expected a number, found the string \(ConfigValue.quoted(s))")
      }
      return value
    case .list:
      throw error(setting, "expected a number, found a list")
    }
  }

  /// A count or size that must lie in `range`.
  mutating func integer(_ key: String, in range: ClosedRange<Int64>, unit: String = "") throws(XenLightError) -> Int? {
    guard let value = try integer(key) else { return nil }
    guard range.contains(value) else {
      let suffix = unit.isEmpty ? "" : " " + unit
      throw error(file[key]!, "\(value)\(suffix) is out of range (\(range.lowerBound)…\(range.upperBound)\(suffix))")
    }
    return Int(value)
  }

  /// A boolean: 0 is false, any other number true.
  mutating func bool(_ key: String) throws(XenLightError) -> Bool? {
    guard let setting = file[key] else {
      readKeys.insert(key)
      return nil
    }
    do {
      return try integer(key)! != 0
    } catch {
      throw self.error(setting, "expected a boolean (0 or 1), found \(setting.value.kind) \(setting.value)")
    }
  }

  /// A list of strings; with `acceptingSingle`, a lone string means a one-item list.
  mutating func stringList(_ key: String, acceptingSingle: Bool = false) throws(XenLightError) -> [String]? {
    guard let setting = setting(key) else { return nil }
    switch setting.value {
    case .list(let items):
      var strings: [String] = []
      for (index, item) in items.enumerated() {
        switch item {
        case .string(let s): strings.append(s)
        case .number(let n): strings.append(String(n))
        case .list: throw error(setting, "item \(index + 1) is a list, but the items must be strings")
        }
      }
      return strings
    case .string(let s) where acceptingSingle:
      return [s]
    case .number(let n) where acceptingSingle:
      return [String(n)]
    default:
      throw error(setting, "expected a list of strings, found \(setting.value.kind)")
    }
  }
}
