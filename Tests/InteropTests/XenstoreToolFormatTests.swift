import Testing
@testable import xenstore
import InteropSupport

/// The tool's formatting as pure functions: the expected bytes are what xenstore-utils 4.17
/// prints (the interop cases in XenstoreToolTests compare the whole tool with it).
@Suite struct XenstoreToolFormatTests {
  @Test func escapeFollowsSanitiseValue() {
    let value: [UInt8] = [UInt8(ascii: "a"), 0, 7, 8, 9, 10, 13, 0x1f, 0x7f, 0x80, 0xff, UInt8(ascii: "\\"), UInt8(ascii: "~")]
    #expect(String(decoding: ValueEscaping.escape(value), as: UTF8.self) == #"a\000\007\x08\t\n\r\x1f\x7f\x80\xff\\~"#)
    #expect(ValueEscaping.escape([]) == [])
  }

  @Test(arguments: [
    (#"plain"#, [UInt8]("plain".utf8)),
    (#"\t\n\r\\"#, [9, 10, 13, 92]),
    (#"\x41\x4"#, [0x41, 4]),
    (#"\x-1"#, [0xff]),          // sscanf's sign
    (#"\x0x"#, [0]),             // "0x" prefix fills the width
    (#"\x 4"#, [4]),             // white space skipped
    (#"\xg"#, [UInt8]("xg".utf8)),  // no conversion: the letter stays
    (#"\101\1234"#, [0x41, 0x53, 0x34]),
    (#"\777"#, [0xff]),          // truncated to a byte
    (#"\q"#, [UInt8]("q".utf8)), // unknown escape: the character
    (#"end\"#, [UInt8]("end".utf8) + [0]),  // trailing backslash: a NUL
  ] as [(String, [UInt8])])
  func unescapeFollowsUnsanitiseValue(_ text: String, _ expected: [UInt8]) {
    #expect(ValueEscaping.unescape(Array(text.utf8)) == expected)
  }

  @Test func escapeThenUnescapeIsIdentity() {
    let all = (0...255).map { UInt8($0) }
    #expect(ValueEscaping.unescape(ValueEscaping.escape(all)) == all)
  }

  @Test func lsLineWithinWidth() {
    let layout = ListingLayout()
    #expect(text(layout.entry(name: bytes("b"), path: bytes("/a/b"), depth: 1, value: bytes("hello"))) == #" b = "hello""#)
    #expect(text(layout.entry(name: bytes("b"), path: bytes("/a/b"), depth: 1, value: nil)) == " b:\n")
  }

  @Test func lsCutsLongValuesAndNames() {
    let layout = ListingLayout(maxWidth: 30)
    let value = bytes(String(repeating: "v", count: 40))
    // 30 - 8 - 1 = 21 characters of value fit after "n = \"".
    #expect(text(layout.entry(name: bytes("n"), path: bytes("/n"), depth: 0, value: value))
            == #"n = ""# + String(repeating: "v", count: 21) + #"\...""#)
    let name = bytes(String(repeating: "x", count: 40))
    #expect(text(layout.entry(name: name, path: bytes("/x"), depth: 2, value: bytes("")))
            == "  " + String(repeating: "x", count: 20) + #" = """#)  // 2 + 20 + 0 + 8 fits in 30
  }

  @Test func lsPermissionLeaderEndsAtColumnSixty() {
    let layout = ListingLayout(showPermissions: true)
    let line = layout.entry(name: bytes("b"), path: bytes("/a/b"), depth: 0, value: bytes("hello")) + layout.permissions(["n0", "r5"])
    #expect(text(line) == #"b = "hello"  . . . . . . . . . . . . . . . . . . . . . . . .  (n0,r5)"#)
  }

  @Test func lsFlatPrintsWholePathsWithoutLeader() {
    let layout = ListingLayout.flat(showPermissions: true)
    let line = layout.entry(name: bytes("b"), path: bytes("/a/b"), depth: 3, value: bytes("hello")) + layout.permissions(["n0"])
    #expect(text(line) == #"/a/b = "hello"   (n0)"#)
  }

  @Test func lsNegativeWidthMeansNoLimit() {
    // A terminal reporting 0 columns: max_width -2 wraps to a huge size_t, and a negative
    // precision prints everything.
    let layout = ListingLayout(maxWidth: -2)
    let long = String(repeating: "z", count: 200)
    #expect(text(layout.entry(name: bytes(long), path: bytes("/z"), depth: 0, value: bytes(long))) == "\(long) = \"\(long)\"")
  }

  @Test(arguments: [("5", 5), ("  -7x", -7), ("+12", 12), ("", 0), ("abc", 0), ("4294967296", 0), ("99999999999999999999", -1)]
        as [(String, Int32)])
  func atoiLikeC(_ text: String, _ expected: Int32) {
    #expect(atoi(Array(text.utf8)) == expected)
  }

  @Test func chmodModesParseLikeXenstoreUtils() throws {
    let permissions = try Chmod.parse(["n0", "r-1", "w4294967296", "b"], for: "/a")
    #expect(permissions.description == "n0,r4294967295,w0,b0")
    #expect(throws: ToolExit.self) { try Chmod.parse(["q1"], for: "/a") }
    #expect(throws: ToolExit.self) { try Chmod.parse([], for: "/a") }
  }

  @Test func argumentsOfALinkAndAttachedValues() {
    #expect(XenstoreTool.arguments(invokedAs: "xenstore-read", ["-p", "/a"]) == ["read", "-p", "/a"])
    #expect(XenstoreTool.arguments(invokedAs: "xenstore", ["watch", "-n3", "/a"]) == ["watch", "-n", "3", "/a"])
    #expect(XenstoreTool.arguments(invokedAs: "xenstore", ["write", "--", "/a", "-n3"]) == ["write", "--", "/a", "-n3"])
  }

  private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
  private func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }
}
