import Testing
import XenStore
import XenStoreDaemon

/// READ, WRITE, MKDIR, RM, DIRECTORY, DIRECTORY_PART as C xenstored 4.17 answers them
/// (each expectation was checked against it over the raw protocol).
@Suite struct NodeOperationTests {
  let h = EngineHarness()

  @Test func startsWithCXenstoredsTree() {
    let c = h.connect()
    #expect(h.call(c, .directory, "/") == "tool|")
    #expect(h.call(c, .directory, "/tool") == "xenstored|")
    #expect(h.call(c, .getPerms, "/") == "n0|")
    #expect(h.call(c, .read, "/") == "")
  }

  @Test func writeCreatesParentsWithEmptyValuesAndReadHasNoTrailingNUL() {
    let c = h.connect()
    #expect(h.write(c, "/a/b/c", "val") == "OK|")
    #expect(h.call(c, .read, "/a/b/c") == "val")
    #expect(h.call(c, .read, "/a") == "")
    #expect(h.call(c, .read, "/a/b") == "")
    #expect(h.call(c, .getPerms, "/a") == "n0|")
    #expect(h.call(c, .directory, "/") == "tool|a|")
  }

  @Test func valuesAreBytesAndMayHoldNULs() {
    let c = h.connect()
    #expect(h.callRaw(c, .write, Array("/v\0x\0y".utf8)) == "OK|")
    #expect(h.callRaw(c, .read, Array("/v\0".utf8)) == "x|y")
    #expect(h.write(c, "/empty", "") == "OK|")
    #expect(h.call(c, .read, "/empty") == "")
    #expect(h.write(c, "/", "rootvalue") == "OK|")
    #expect(h.call(c, .read, "/") == "rootvalue")
  }

  @Test func relativePathsLiveUnderTheDomainsHome() {
    let c = h.connect()
    #expect(h.write(c, "rel/x", "1") == "OK|")
    #expect(h.call(c, .read, "/local/domain/0/rel/x") == "1")
    #expect(h.call(c, .directory, "/local/domain/0") == "rel|")
  }

  @Test func directoryListsChildrenInCreationOrder() {
    let c = h.connect()
    for name in ["c", "d", "e"] { h.write(c, "/a/b/\(name)", "") }
    #expect(h.call(c, .directory, "/a/b") == "c|d|e|")
    #expect(h.call(c, .directory, "/a/b/c") == "")
    #expect(h.call(c, .directory, "/nonexist") == "ENOENT")
  }

  @Test func directoryOverThePayloadLimitIsE2BIGAndDirectoryPartPagesIt() {
    let c = h.connect()
    for i in 0..<300 { h.write(c, "/big/child\(String(1000 + i))", "") }   // 300 × 10 bytes
    for i in 0..<150 { h.write(c, "/big/second\(String(1000 + i))", "") }  // 150 × 11 bytes
    #expect(h.call(c, .directory, "/big") == "E2BIG")
    let first = h.call(c, .directoryPart, "/big", "0")
    let parts = first.split(separator: "|", omittingEmptySubsequences: false)
    let generation = parts[0]
    #expect(!first.hasSuffix("||"), "the first part is not the last")
    let bytes = first.utf8.count - generation.utf8.count - 1
    let second = h.call(c, .directoryPart, "/big", String(bytes))
    #expect(second.hasPrefix(generation + "|"))
    #expect(second.hasSuffix("||"), "the last part ends with an empty string")
    let names = (parts.dropFirst() + second.split(separator: "|", omittingEmptySubsequences: false).dropFirst())
      .filter { !$0.isEmpty }
    #expect(names.count == 450)
    #expect(h.call(c, .directoryPart, "/big", "99999") == generation + "||")
  }

  @Test func directoryPartOfALeafAndBadArguments() {
    let c = h.connect()
    h.write(c, "/a/b", "")
    #expect(h.call(c, .directoryPart, "/a/b", "0").hasSuffix("||"))
    #expect(h.callRaw(c, .directoryPart, Array("/a/b\0".utf8)) == "EINVAL")
    #expect(h.callRaw(c, .directoryPart, Array("/a/b\u{0}0".utf8)) == "EINVAL")
    #expect(h.call(c, .directoryPart, "/a", "x").hasSuffix("|b||"), "offset parsed as atoi: 0")
  }

  @Test func mkdirCreatesOnceAndIsOKOnExistingNodes() {
    let c = h.connect()
    #expect(h.call(c, .mkdir, "/m/n/o") == "OK|")
    #expect(h.call(c, .read, "/m/n/o") == "")
    h.write(c, "/m/n/o", "keep")
    #expect(h.call(c, .mkdir, "/m/n/o") == "OK|")
    #expect(h.call(c, .read, "/m/n/o") == "keep")
    #expect(h.call(c, .mkdir, "/") == "OK|")
  }

  @Test func rmRemovesSubtrees() {
    let c = h.connect()
    h.write(c, "/r/a/b", "1")
    h.write(c, "/r/c", "2")
    #expect(h.call(c, .rm, "/r/a") == "OK|")
    #expect(h.call(c, .read, "/r/a/b") == "ENOENT")
    #expect(h.call(c, .directory, "/r") == "c|")
    #expect(h.call(c, .rm, "/r") == "OK|")
    #expect(h.call(c, .directory, "/") == "tool|")
    #expect(h.call(c, .control, "check") == "OK|")
  }

  @Test func rmOfMissingNodeIsOKOnlyWhenItsParentExists() {
    let c = h.connect()
    #expect(h.call(c, .rm, "/nonexist") == "OK|")
    #expect(h.call(c, .rm, "/nonexist/x") == "ENOENT")
    #expect(h.call(c, .rm, "/") == "EINVAL")
  }

  @Test(arguments: [
    ("/a/", "EINVAL"), ("/a//b", "EINVAL"), ("/a b", "EINVAL"), ("", "EINVAL"), ("@a", "EINVAL"),
    ("@introduceDomain", "EINVAL"), ("/a@b", "ENOENT"), ("a", "ENOENT"), ("/x-y_z/0", "ENOENT"),
  ])
  func pathRulesDecideTheErrno(path: String, expected: String) {
    let c = h.connect()
    #expect(h.call(c, .read, path) == expected)
  }

  @Test func pathLengthLimitIsRelativeToTheDomainHome() {
    let c = h.connect()
    #expect(h.write(c, "/" + String(repeating: "a", count: 2047), "x") == "OK|")
    #expect(h.write(c, "/" + String(repeating: "a", count: 2048), "x") == "EINVAL")
    #expect(h.write(c, "/local/domain/5/" + String(repeating: "a", count: 2048), "x") == "OK|")
    #expect(h.write(c, "/local/domain/5/" + String(repeating: "a", count: 2049), "x") == "EINVAL")
    #expect(h.write(c, String(repeating: "b", count: 2048), "x") == "OK|")
    #expect(h.write(c, String(repeating: "b", count: 2049), "x") == "EINVAL")
  }
}
