import Testing
import XenStore
import XenStoreDaemon

/// Access control for unprivileged domains (C xenstored's `perm_for_conn`, `get_node`,
/// `errno_from_parents`, `watch_permitted`).
@Suite struct PermissionTests {
  let h = EngineHarness()
  let dom0: ConnectionID
  let dom5: ConnectionID

  init() {
    dom0 = h.connect()
    h.call(dom0, .introduce, "5", "1", "2")
    h.call(dom0, .introduce, "6", "1", "2")
    dom5 = h.connect(5)
    h.write(dom0, "/local/domain/5", "")
    h.call(dom0, .setPerms, "/local/domain/5", "n5", "r0")
  }

  @Test func aDomainWorksInItsHomeAndOwnsWhatItCreates() {
    #expect(h.write(dom5, "device/vif", "1") == "OK|")
    #expect(h.call(dom5, .read, "device/vif") == "1")
    #expect(h.call(dom5, .getPerms, "device/vif") == "n5|r0|", "inherits the parent's list, creator owns")
    #expect(h.call(dom5, .directory, "/local/domain/5") == "device|")
    #expect(h.call(dom5, .rm, "device") == "OK|")
  }

  @Test func dom0NodesAreHiddenWithEACCES() {
    h.write(dom0, "/secret/a", "x")
    #expect(h.call(dom5, .read, "/secret/a") == "EACCES")
    #expect(h.call(dom5, .read, "/secret/missing") == "EACCES", "a missing node does not reveal itself")
    #expect(h.call(dom5, .directory, "/") == "EACCES")
    #expect(h.write(dom5, "/secret/a", "y") == "EACCES")
    #expect(h.write(dom5, "/secret/new", "y") == "EACCES")
    #expect(h.call(dom5, .mkdir, "/newtop") == "EACCES")
    #expect(h.call(dom5, .rm, "/secret/a") == "EACCES")
    #expect(h.call(dom5, .getPerms, "/secret/a") == "EACCES")
    #expect(h.call(dom5, .setPerms, "/secret/a", "n5") == "EACCES")
    #expect(h.call(dom0, .read, "/secret/a") == "x")
  }

  @Test func missingNodeIsENOENTWhereTheParentIsReadable() {
    #expect(h.call(dom5, .read, "/local/domain/5/missing") == "ENOENT")
    #expect(h.call(dom5, .read, "missing") == "ENOENT")
  }

  @Test func grantsAndDefaultAccess() {
    h.write(dom0, "/shared/r", "read-me")
    h.call(dom0, .setPerms, "/shared/r", "n0", "r5")
    #expect(h.call(dom5, .read, "/shared/r") == "read-me")
    #expect(h.write(dom5, "/shared/r", "no") == "EACCES")

    h.write(dom0, "/shared/w", "")
    h.call(dom0, .setPerms, "/shared/w", "n0", "w5")
    #expect(h.write(dom5, "/shared/w", "yes") == "OK|")
    #expect(h.call(dom5, .read, "/shared/w") == "EACCES")

    h.write(dom0, "/shared/all", "public")
    h.call(dom0, .setPerms, "/shared/all", "r0")
    #expect(h.call(dom5, .read, "/shared/all") == "public")

    h.call(dom0, .setPerms, "/shared/all", "b0", "n5")
    #expect(h.call(dom5, .read, "/shared/all") == "EACCES", "a listed entry overrides the default")
  }

  @Test func onlyTheOwnerChangesPermissionsAndNeverTheOwner() {
    h.write(dom5, "mine", "")
    #expect(h.call(dom5, .setPerms, "mine", "n5", "r6") == "OK|")
    #expect(h.call(dom5, .getPerms, "mine") == "n5|r6|")
    #expect(h.call(dom5, .setPerms, "mine", "n6") == "EPERM")
    #expect(h.call(dom0, .setPerms, "/local/domain/5/mine", "n6") == "OK|")
    #expect(h.call(dom5, .setPerms, "mine", "n5") == "EACCES")
  }

  @Test func targetActsAsItsTarget() {
    let dom6 = h.connect(6)
    #expect(h.call(dom6, .read, "/local/domain/5") == "EACCES")
    h.call(dom0, .setTarget, "6", "5")
    #expect(h.call(dom6, .read, "/local/domain/5") == "")
    #expect(h.write(dom6, "/local/domain/5/dm", "x") == "OK|")
  }

  @Test func watchesFireOnlyForNodesTheDomainMayRead() {
    h.write(dom0, "/secret/a", "x")
    #expect(h.call(dom5, .watch, "/secret", "s") == "OK|", "watching is allowed, the events are not")
    #expect(h.events(dom5) == ["/secret|s|"], "the first event is always sent")
    h.write(dom0, "/secret/a", "y")
    h.write(dom0, "/secret/b", "y")
    #expect(h.events(dom5).isEmpty)
    h.write(dom0, "/secret/open", "")
    h.call(dom0, .setPerms, "/secret/open", "n0", "r5")
    #expect(h.events(dom5) == ["/secret/open|s|"], "readable after the change")
    h.call(dom0, .setPerms, "/secret/open", "n0")
    #expect(h.events(dom5) == ["/secret/open|s|"], "readable before the change")
  }

  @Test func specialWatchesNeedPermission() {
    h.call(dom5, .watch, "@introduceDomain", "i")
    #expect(h.events(dom5) == ["@introduceDomain|i|"])
    h.call(dom0, .introduce, "8", "1", "2")
    #expect(h.events(dom5).isEmpty)
    #expect(h.call(dom5, .setPerms, "@introduceDomain", "n5") == "EACCES")
    #expect(h.call(dom0, .setPerms, "@introduceDomain", "n0", "r5") == "OK|")
    h.call(dom0, .introduce, "9", "1", "2")
    #expect(h.events(dom5) == ["@introduceDomain|i|"])
    #expect(h.call(dom0, .getPerms, "@introduceDomain") == "EINVAL", "as in C xenstored 4.17")
  }
}
