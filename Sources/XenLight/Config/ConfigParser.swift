/// Parses xl.cfg text, following libxlu's grammar:
///
///     file    := { NEWLINE | ';' | setting }
///     setting := KEY ('=' | '+=') value (NEWLINE | ';' | end of file)
///     value   := STRING | NUMBER | '[' { NEWLINE } [ item { ',' { NEWLINE } item } [','] { NEWLINE } ] ']'
///     item    := value { NEWLINE }
///
/// The first error stops parsing; it says where it is and what was expected there.
struct ConfigParser {
  private var lexer: ConfigLexer
  private var token = ConfigToken(kind: .end, location: SourceLocation(file: "", line: 0, column: 0))
  /// The key of the setting being parsed, for messages.
  private var key = ""
  /// The first word of the current statement: "import" or "def" there means a Python xm config.
  private var statementWord: String?

  /// Words that open an xm-era (Python) config and never an xl one.
  private static let pythonWords: Set<String> = ["import", "from", "def", "if", "for", "while", "class", "try", "print"]

  init(source: [UInt8], file: String, firstLine: Int) {
    lexer = ConfigLexer(source: source, file: file, firstLine: firstLine)
  }

  /// Parses everything, calling `emit(setting, isAppend)` for each setting in order.
  mutating func parse(
    _ emit: (ConfigSetting, Bool) throws(XenLightError) -> Void
  ) throws(XenLightError) {
    try advance()
    while true {
      switch token.kind {
      case .end:
        return
      case .newline, .semicolon:
        try advance()
      case .identifier(let name):
        statementWord = name
        key = name
        let location = token.location
        try advance()
        let append: Bool
        switch token.kind {
        case .assign: append = false
        case .addAssign: append = true
        default: throw expected("'=' or '+=' after \"\(name)\"")
        }
        try advance()
        let value = try parseValue()
        switch token.kind {
        case .newline, .semicolon: try advance()
        case .end: break
        default: throw expected("a new line or ';' after the value of \"\(name)\"")
        }
        try emit(ConfigSetting(key: name, value: value, location: location), append)
      default:
        statementWord = nil
        throw expected("a setting (KEY = VALUE)")
      }
    }
  }

  private mutating func advance() throws(XenLightError) {
    token = try lexer.next()
  }

  private mutating func skipNewlines() throws(XenLightError) {
    while token.kind == .newline { try advance() }
  }

  private mutating func parseValue() throws(XenLightError) -> ConfigValue {
    switch token.kind {
    case .string(let s):
      try advance()
      return .string(s)
    case .number(let n):
      try advance()
      return .number(n)
    case .openBracket:
      try advance()
      return .list(try parseListItems())
    case .identifier(let word):
      throw expected(
        "a value for \"\(key)\": a quoted string, a number or a [list] (to set a string write \(key) = \"\(word)\")")
    default:
      throw expected("a value for \"\(key)\": a quoted string, a number or a [list]")
    }
  }

  /// The items of a list whose '[' was just consumed, through the closing ']'.
  private mutating func parseListItems() throws(XenLightError) -> [ConfigValue] {
    var items: [ConfigValue] = []
    try skipNewlines()
    while token.kind != .closeBracket {
      items.append(try parseValue())
      try skipNewlines()
      switch token.kind {
      case .comma:
        try advance()
        try skipNewlines()
      case .closeBracket:
        break
      default:
        throw expected("',' or ']' in the list for \"\(key)\"")
      }
    }
    try advance()
    return items
  }

  /// "expected X, found Y", with a hint when the file is an xm-era Python config.
  private func expected(_ what: String) -> XenLightError {
    var message = "expected \(what), found \(token.description)"
    if let word = statementWord, Self.pythonWords.contains(word) {
      message += "; this looks like an xm-era Python config (\"\(word) …\"), which xl does not read: xl configs contain only KEY = VALUE settings"
    }
    return XenLightError(.syntax, message, at: token.location)
  }
}
