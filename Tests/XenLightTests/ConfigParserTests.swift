import Testing
@testable import XenLight

@Suite struct ConfigParserTests {
  private func parse(_ text: String) throws -> ConfigFile {
    try ConfigFile.parse(text, file: "t.cfg")
  }

  /// The exact message parsing `text` fails with.
  private func failure(_ text: String) -> String? {
    do {
      _ = try ConfigFile.parse(text, file: "t.cfg")
      return nil
    } catch {
      return error.description
    }
  }

  @Test func settingsSeparatedByNewlinesAndSemicolons() throws {
    let config = try parse("name = \"a\"\nmemory=128; vcpus = 2;\n\n;")
    #expect(config.settings.map(\.key) == ["name", "memory", "vcpus"])
    #expect(config["name"]?.value == .string("a"))
    #expect(config["memory"]?.value == .number(128))
    #expect(config["vcpus"]?.location == SourceLocation(file: "t.cfg", line: 2, column: 13))
  }

  @Test func lastLineNeedsNoNewline() throws {
    #expect(try parse("memory = 64")["memory"]?.value == .number(64))
  }

  @Test func numbersAreDecimalOctalOrHex() throws {
    let config = try parse("a = 10\nb = 010\nc = 0x1F\nd = 0\ne = 0XfF")
    #expect(config["a"]?.value == .number(10))
    #expect(config["b"]?.value == .number(8))
    #expect(config["c"]?.value == .number(31))
    #expect(config["d"]?.value == .number(0))
    #expect(config["e"]?.value == .number(255))
  }

  @Test func stringsInEitherQuoteWithEscapes() throws {
    let config = try parse(#"""
      a = 'it\'s'
      b = "say \"hi\""
      c = "t\tn\nr\rbs\\"
      d = "\x41\101\0"
      e = 'a "b" c'
      f = ""
      g = "\a\b\f\v"
      """#)
    #expect(config["a"]?.value == .string("it's"))
    #expect(config["b"]?.value == .string("say \"hi\""))
    #expect(config["c"]?.value == .string("t\tn\nr\rbs\\"))
    #expect(config["d"]?.value == .string("AA\0"))
    #expect(config["e"]?.value == .string("a \"b\" c"))
    #expect(config["f"]?.value == .string(""))
    #expect(config["g"]?.value == .string("\u{7}\u{8}\u{c}\u{b}"))
  }

  @Test func listsSpanLinesWithTrailingCommas() throws {
    let config = try parse("""
      disk = [
          'a,raw,xvda,rw',   # first

          "b",
      ]
      empty = []
      blank = [

      ]
      nested = [ [ 1, 2 ], [ "x" ], ]
      one = [ 7 ]
      """)
    #expect(config["disk"]?.value == .list([.string("a,raw,xvda,rw"), .string("b")]))
    #expect(config["empty"]?.value == .list([]))
    #expect(config["blank"]?.value == .list([]))
    #expect(config["nested"]?.value == .list([.list([.number(1), .number(2)]), .list([.string("x")])]))
    #expect(config["one"]?.value == .list([.number(7)]))
  }

  @Test func commentsRunToEndOfLine() throws {
    let config = try parse("# heading\nmemory = 1 # trailing = [ 'x'\n  # indented\n")
    #expect(config.settings.map(\.key) == ["memory"])
  }

  @Test func laterAssignmentReplacesEarlier() throws {
    let config = try parse("memory = 1\nname = 'a'\nmemory = 2")
    #expect(config.settings.map(\.key) == ["memory", "name"])
    #expect(config["memory"]?.value == .number(2))
    #expect(config["memory"]?.location.line == 3)
  }

  @Test func appendExtendsListsAndStrings() throws {
    let config = try parse("""
      vif = [ 'bridge=br0' ]
      vif += [ 'bridge=br1' ]
      extra = "root=/dev/xvda1"
      extra += " console=hvc0"
      serial += [ 'pty' ]
      """)
    #expect(config["vif"]?.value == .list([.string("bridge=br0"), .string("bridge=br1")]))
    #expect(config["extra"]?.value == .string("root=/dev/xvda1 console=hvc0"))
    #expect(config["serial"]?.value == .list([.string("pty")]))
    #expect(config["vif"]?.location.line == 2)
  }

  @Test func appendOfAnotherKindIsAnError() {
    #expect(failure("vif = [ '' ]\nvif += 'x'") == "t.cfg:2:1: cannot append a string to \"vif\", which is a list")
    #expect(failure("memory = 1\nmemory += 2") == "t.cfg:2:1: cannot append a number to \"memory\", which is a number")
  }

  @Test func commandLineOverridesAreMoreSettings() throws {
    let file = try parse("name = 'a'\nmemory = 128\nvif = [ 'bridge=br0' ]")
    let config = try file.applying(overrides: ["memory=256", "vif+=['bridge=br1']", "vcpus = 3"])
    #expect(config["memory"]?.value == .number(256))
    #expect(config["memory"]?.location == SourceLocation(file: "command line", line: 1, column: 1))
    #expect(config["vif"]?.value == .list([.string("bridge=br0"), .string("bridge=br1")]))
    #expect(config["vcpus"]?.value == .number(3))
    #expect(config.settings.map(\.key) == ["name", "memory", "vif", "vcpus"])
  }

  @Test func badCommandLineOverrideNamesItsPosition() throws {
    let file = try parse("name = 'a'")
    #expect(throws: XenLightError(
      .syntax,
      "expected a value for \"name\": a quoted string, a number or a [list] (to set a string write name = \"b\"), found identifier \"b\"",
      at: SourceLocation(file: "command line", line: 2, column: 6))
    ) {
      _ = try file.applying(overrides: ["memory=1", "name=b"])
    }
  }

  // MARK: every syntax error, with its exact message

  @Test func missingEquals() {
    #expect(failure("name \"x\"") == "t.cfg:1:6: expected '=' or '+=' after \"name\", found string \"x\"")
    #expect(failure("memory\n") == "t.cfg:1:7: expected '=' or '+=' after \"memory\", found end of line")
  }

  @Test func bareWordValue() {
    #expect(failure("type = hvm") == "t.cfg:1:8: expected a value for \"type\": a quoted string, a number or a [list] (to set a string write type = \"hvm\"), found identifier \"hvm\"")
  }

  @Test func missingValue() {
    #expect(failure("memory =\n") == "t.cfg:1:9: expected a value for \"memory\": a quoted string, a number or a [list], found end of line")
    #expect(failure("memory = ;") == "t.cfg:1:10: expected a value for \"memory\": a quoted string, a number or a [list], found ';'")
  }

  @Test func twoSettingsOnOneLine() {
    #expect(failure("name = \"a\" memory = 1") == "t.cfg:1:12: expected a new line or ';' after the value of \"name\", found identifier \"memory\"")
  }

  @Test func statementNotStartingWithAKey() {
    #expect(failure("\n  = 3") == "t.cfg:2:3: expected a setting (KEY = VALUE), found '='")
    #expect(failure("\"a\" = 3") == "t.cfg:1:1: expected a setting (KEY = VALUE), found string \"a\"")
    #expect(failure("]") == "t.cfg:1:1: expected a setting (KEY = VALUE), found ']'")
  }

  @Test func unterminatedStrings() {
    #expect(failure("name = \"abc\nmemory = 1") == "t.cfg:1:8: unterminated string: a string must end with '\"' on the line it starts")
    #expect(failure("name = 'abc") == "t.cfg:1:8: unterminated string: a string must end with ''' on the line it starts")
    #expect(failure("name = 'ab\\\n'") == "t.cfg:1:11: unterminated string: '\\' at the end of the line")
  }

  @Test func invalidEscapes() {
    #expect(failure(#"name = "a\qb""#) == #"t.cfg:1:10: invalid escape sequence '\q'"#)
    #expect(failure(#"name = "\xg""#) == #"t.cfg:1:9: invalid escape sequence '\x': expected hexadecimal digits"#)
    #expect(failure(#"name = "\777""#) == "t.cfg:1:9: invalid escape sequence: octal value 511 is above 255")
  }

  @Test func invalidNumbers() {
    #expect(failure("memory = 08") == "t.cfg:1:10: invalid number \"08\" (a leading 0 makes a number octal)")
    #expect(failure("memory = 12abc") == "t.cfg:1:10: invalid number \"12abc\"")
    #expect(failure("memory = 0x") == "t.cfg:1:10: invalid number \"0x\" (a leading 0 makes a number octal)")
    #expect(failure("memory = 99999999999999999999") == "t.cfg:1:10: number 99999999999999999999 is too large")
  }

  @Test func listErrors() {
    #expect(failure("disk = [ 'a' 'b' ]") == "t.cfg:1:14: expected ',' or ']' in the list for \"disk\", found string \"b\"")
    #expect(failure("disk = [ 'a',\n") == "t.cfg:2:1: expected a value for \"disk\": a quoted string, a number or a [list], found end of file")
    #expect(failure("disk = [ , ]") == "t.cfg:1:10: expected a value for \"disk\": a quoted string, a number or a [list], found ','")
    #expect(failure("disk = [ 'a' ] ]") == "t.cfg:1:16: expected a new line or ';' after the value of \"disk\", found ']'")
  }

  @Test func unexpectedCharacters() {
    #expect(failure("Name = 'a'") == "t.cfg:1:1: unexpected character 'N': setting names start with a lower-case letter and contain only a-z, 0-9, '_' and '.'")
    #expect(failure("memory = @") == "t.cfg:1:10: unexpected character '@'")
    #expect(failure("memory = 1 + 2") == "t.cfg:1:12: unexpected character '+'")
    #expect(failure("x = \u{1}") == "t.cfg:1:5: unexpected character byte 0x1")
  }

  // MARK: Xen's examples

  @Test(arguments: ["xlexample.hvm", "xlexample.pvlinux", "xlexample.pvhlinux"])
  func xenExamplesParse(_ name: String) throws {
    let config = try ConfigFile.read(contentsOf: Examples.path("xen/" + name))
    #expect(config["name"] != nil)
    #expect(config["disk"]?.value == .list([.string("/dev/vg/guest-volume,raw,xvda,rw")]))
    #expect(config["vif"]?.value == .list([.string("")]))
  }

  @Test func xmExampleIsRejectedAtItsImport() {
    let path = Examples.path("xen/xmexample.hvm")
    #expect(throws: XenLightError(
      .syntax,
      "expected '=' or '+=' after \"import\", found identifier \"os\"; this looks like an xm-era Python config (\"import …\"), which xl does not read: xl configs contain only KEY = VALUE settings",
      at: SourceLocation(file: path, line: 1, column: 8))
    ) {
      _ = try ConfigFile.read(contentsOf: path)
    }
  }

  @Test func pythonAfterACommentHeaderFailsAtItsLine() {
    let text = "#  -*- mode: python; -*-\n# xm config\n\nimport os, re\nmemory = 128\n"
    #expect(failure(text)?.hasPrefix("t.cfg:4:8: expected '=' or '+=' after \"import\", found identifier \"os\"; this looks like an xm-era Python config") == true)
    #expect(failure("memory = 1\nif re.search('64', arch):\n")?.hasPrefix("t.cfg:2:4: expected '=' or '+=' after \"if\", found identifier \"re.search\"; this looks like") == true)
  }

  @Test func missingFileIsAnIOError() {
    #expect(throws: XenLightError(.io, "cannot read /nonexistent/x.cfg: No such file or directory", errno: 2)) {
      _ = try ConfigFile.read(contentsOf: "/nonexistent/x.cfg")
    }
  }

  @Test func valuesPrintBackAsConfigSyntax() throws {
    let value = ConfigValue.list([.string("a\"b\\"), .number(3), .list([])])
    #expect(value.description == #"["a\"b\\", 3, []]"#)
    let text = "x = " + value.description
    #expect(try parse(text)["x"]?.value == value)
  }
}
