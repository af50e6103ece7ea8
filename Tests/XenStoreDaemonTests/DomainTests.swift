import Testing
import XenStore
import XenStoreDaemon

/// INTRODUCE, RELEASE, RESUME, SET_TARGET, IS_DOMAIN_INTRODUCED, GET_DOMAIN_PATH.
@Suite struct DomainTests {
  let h = EngineHarness()

  @Test func introduceAndRelease() {
    let c = h.connect()
    #expect(h.call(c, .isDomainIntroduced, "0") == "T|")
    #expect(h.call(c, .isDomainIntroduced, "5") == "F|")
    #expect(h.call(c, .introduce, "5", "1", "2") == "OK|")
    #expect(h.notices() == ["introduced 5"])
    #expect(h.call(c, .isDomainIntroduced, "5") == "T|")
    #expect(h.call(c, .introduce, "5", "1", "3") == "OK|")
    #expect(h.notices().isEmpty)
    #expect(h.call(c, .introduce, "6", "1") == "EINVAL")
    #expect(h.call(c, .release, "5") == "OK|")
    #expect(h.notices() == ["released 5"])
    #expect(h.call(c, .release, "5") == "ENOENT")
    #expect(h.call(c, .release, "0") == "EINVAL")
    #expect(h.callRaw(c, .release, []) == "EINVAL")
  }

  @Test func resumeAndSetTarget() {
    let c = h.connect()
    h.call(c, .introduce, "5", "1", "2")
    #expect(h.call(c, .resume, "5") == "OK|")
    #expect(h.call(c, .resume, "9") == "ENOENT")
    #expect(h.call(c, .resume, "0") == "EINVAL")
    #expect(h.call(c, .setTarget, "5", "0") == "OK|")
    #expect(h.call(c, .setTarget, "5", "9") == "ENOENT")
    #expect(h.call(c, .setTarget, "9", "5") == "ENOENT")
    #expect(h.call(c, .setTarget, "5") == "EINVAL")
  }

  @Test func releaseClosesTheDomainsConnectionsAndDeletesWhatItOwns() {
    let c = h.connect()
    h.call(c, .introduce, "5", "1", "2")
    _ = h.notices()
    let dom = h.connect(5)
    h.write(c, "/local/domain/5", "")
    h.call(c, .setPerms, "/local/domain/5", "n5")
    #expect(h.write(dom, "data/x", "1") == "OK|")
    h.write(c, "/kept", "")
    h.call(c, .watch, "/local/domain/5/data", "w")
    _ = h.events(c)
    h.call(c, .release, "5")
    #expect(h.notices() == ["close \(dom.rawValue)", "released 5"])
    #expect(h.call(c, .read, "/local/domain/5") == "ENOENT")
    #expect(h.call(c, .read, "/kept") == "")
    #expect(h.events(c) == ["/local/domain/5/data|w|"])
    #expect(h.call(c, .control, "check") == "OK|")
    #expect(h.call(dom, .read, "/kept") == "<no reply>", "the engine forgot the released domain's connection")
  }

  @Test func setPermsOwnerMustBeAnExistingDomain() {
    let c = h.connect()
    h.write(c, "/u", "z")
    #expect(h.call(c, .setPerms, "/u", "n8", "r0") == "ENOENT")
    #expect(h.call(c, .setPerms, "/u", "n0", "r8") == "OK|", "other entries may name any domain")
    h.call(c, .introduce, "7", "1", "2")
    #expect(h.call(c, .setPerms, "/u", "n7", "r8") == "OK|")
    #expect(h.call(c, .getPerms, "/u") == "n7|r8|")
  }

  @Test func unprivilegedDomainsMayNotUseDom0Requests() {
    let c = h.connect()
    h.call(c, .introduce, "5", "1", "2")
    let dom = h.connect(5)
    for (type, args) in [(MessageType.introduce, ["6", "1", "2"]), (.release, ["5"]), (.resume, ["5"]),
                         (.setTarget, ["5", "0"]), (.isDomainIntroduced, ["0"]), (.control, ["check"])] {
      #expect(h.callRaw(dom, type, Array(args.map { Array($0.utf8) + [0] }.joined())) == "EACCES")
    }
    #expect(h.callRaw(dom, .introduce, [0], tx: 42) == "EACCES", "EACCES comes before the tx check")
    #expect(h.call(dom, .getDomainPath, "5") == "/local/domain/5|")
  }
}
