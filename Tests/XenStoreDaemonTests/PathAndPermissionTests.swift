import Testing
import XenStore

/// The pure rules in XenStore's Path.swift and Permissions.swift.
@Suite struct PathAndPermissionTests {
  @Test(arguments: [
    ("/", true), ("/a", true), ("/a/b-c_d@e/0", true), ("/a/", false), ("a", false), ("", false),
    ("//", false), ("/a//b", false), ("/a b", false), ("/a.b", false), ("@x", false),
    ("/" + String(repeating: "x", count: 2047), true), ("/" + String(repeating: "x", count: 2048), false),
    ("/local/domain/7/" + String(repeating: "x", count: 2048), true),
    ("/local/domain/123456/" + String(repeating: "x", count: 2048), false),
  ])
  func validNodePaths(path: String, valid: Bool) {
    #expect(XenStorePath.isValidNode(path) == valid)
  }

  @Test func canonicalizeAndRelatives() {
    #expect(XenStorePath.canonicalize("name", domain: 3) == "/local/domain/3/name")
    #expect(XenStorePath.canonicalize("/abs", domain: 3) == "/abs")
    #expect(XenStorePath.canonicalize("@releaseDomain", domain: 3) == "@releaseDomain")
    #expect(XenStorePath.parent(of: "/a/b") == "/a")
    #expect(XenStorePath.parent(of: "/a") == "/")
    #expect(XenStorePath.parent(of: "/") == "/")
    #expect(XenStorePath.basename(of: "/a/b") == "b")
    #expect(XenStorePath.child("x", of: "/") == "/x")
    #expect(XenStorePath.isDescendant("/a/b", of: "/a") && XenStorePath.isDescendant("/a", of: "/a"))
    #expect(!XenStorePath.isDescendant("/ab", of: "/a") && XenStorePath.isDescendant("/ab", of: "/"))
    #expect(XenStorePath.depth(of: "/a/b/c", below: "/a") == 2)
    #expect(XenStorePath.isValidWatch("@anything") && !XenStorePath.isValidWatch("/bad/"))
  }

  @Test func permissionsParseAndDecide() throws {
    let p = try #require(Permissions(strings: ["n0", "r5", "w6", "b7"].map(\.utf8)))
    #expect(p.description == "n0,r5,w6,b7")
    #expect(p.wire == Array("n0\0r5\0w6\0b7\0".utf8))
    #expect(p.access(for: 0) == .both, "the owner may do anything")
    #expect(p.access(for: 5) == .read && p.access(for: 6) == .write && p.access(for: 7) == .both)
    #expect(p.access(for: 9) == .none, "everyone else gets the default")
    #expect(p.access(for: 9, target: 5) == .read, "a domain acts for its target too")
    #expect(Permissions(strings: ["x1"].map(\.utf8)) == nil)
    #expect(Permissions(strings: ["r"].map(\.utf8)) == nil)
    #expect(Permissions(strings: [String]().map(\.utf8)) == nil)
    #expect(Permission("r0x10".utf8)?.domain == 16, "strtol base 0: hex")
    #expect(Permission("b010".utf8)?.domain == 8, "strtol base 0: octal")
  }
}
