import Testing
import XenStore
import XenStoreDaemon

/// Watches as C xenstored 4.17 fires them.
@Suite struct WatchTests {
  let h = EngineHarness()

  @Test func watchRepliesOKThenSendsTheFirstEvent() {
    let c = h.connect()
    #expect(h.call(c, .watch, "/w", "tok") == "OK|")
    #expect(h.events(c) == ["/w|tok|"])
  }

  @Test func duplicateIsEEXISTButAnotherTokenIsFine() {
    let c = h.connect()
    h.call(c, .watch, "/w", "tok")
    #expect(h.call(c, .watch, "/w", "tok") == "EEXIST")
    #expect(h.call(c, .watch, "/w", "tok2") == "OK|")
    let other = h.connect()
    #expect(h.call(other, .watch, "/w", "tok") == "OK|", "duplicates are per connection")
  }

  @Test(arguments: ["/w/", "/w b", "", "/" + String(repeating: "a", count: 2048), "@" + String(repeating: "a", count: 2048)])
  func invalidWatchPathsAreEINVAL(path: String) {
    let c = h.connect()
    #expect(h.call(c, .watch, path, "t") == "EINVAL")
  }

  @Test func anySpecialNameMayBeWatched() {
    let c = h.connect()
    #expect(h.call(c, .watch, "@bogus", "t") == "OK|")
    #expect(h.call(c, .watch, "@releaseDomain/5", "t") == "OK|")
  }

  @Test func changesFireForTheNodeAndDescendantsWithTheChangedPath() {
    let c = h.connect()
    h.call(c, .watch, "/w", "tok")
    _ = h.events(c)
    h.write(c, "/w/a/b", "x")
    #expect(h.events(c) == ["/w/a/b|tok|"], "one event for the written node, none for created parents")
    h.write(c, "/other", "x")
    h.write(c, "/wx", "x")
    #expect(h.events(c).isEmpty)
    h.call(c, .setPerms, "/w/a", "n0", "r1")
    #expect(h.events(c) == ["/w/a|tok|"])
  }

  @Test func removalFiresForTheNodeAndWatchedDescendants() {
    let c = h.connect()
    h.write(c, "/w/a/b", "x")
    h.call(c, .watch, "/w", "top")
    h.call(c, .watch, "/w/a/b", "deep")
    h.call(c, .watch, "/w/never", "none")
    _ = h.events(c)
    h.call(c, .rm, "/w")
    #expect(h.events(c).sorted() == ["/w/a/b|deep|", "/w|top|"])
  }

  @Test func rootWatchSeesEverything() {
    let c = h.connect()
    h.call(c, .watch, "/", "all")
    _ = h.events(c)
    h.write(c, "/x/y", "1")
    #expect(h.events(c) == ["/x/y|all|"])
  }

  @Test func relativeWatchGetsRelativeEvents() {
    let c = h.connect()
    h.call(c, .watch, "rel", "tok")
    #expect(h.events(c) == ["rel|tok|"])
    h.write(c, "rel/q", "x")
    #expect(h.events(c) == ["rel/q|tok|"])
    h.write(c, "/local/domain/0/rel/r", "x")
    #expect(h.events(c) == ["rel/r|tok|"])
    #expect(h.call(c, .unwatch, "/local/domain/0/rel", "tok") == "OK|", "unwatch matches the canonical path")
  }

  @Test func depthLimitsHowFarBelowEventsFire() {
    let c = h.connect()
    #expect(h.call(c, .watch, "/d", "t", "1") == "OK|")
    _ = h.events(c)
    h.write(c, "/d/a", "x")
    h.write(c, "/d/a/b", "x")
    h.write(c, "/d", "x")
    #expect(h.events(c) == ["/d/a|t|", "/d|t|"])
  }

  @Test func unwatchAndResetWatches() {
    let c = h.connect()
    h.call(c, .watch, "/w", "tok")
    #expect(h.call(c, .unwatch, "/w", "nope") == "ENOENT")
    #expect(h.call(c, .unwatch, "/w", "tok") == "OK|")
    #expect(h.call(c, .unwatch, "/w", "tok") == "ENOENT")
    h.call(c, .watch, "/w", "a")
    h.call(c, .watch, "/v", "b")
    #expect(h.call(c, .resetWatches, "") == "OK|")
    _ = h.events(c)
    h.write(c, "/w", "1")
    h.write(c, "/v", "1")
    #expect(h.events(c).isEmpty)
    #expect(h.call(c, .watch, "/w", "a") == "OK|", "reset watches may be set again")
  }

  @Test func otherConnectionsWatchesFireBeforeTheWritersReply() {
    let writer = h.connect()
    let watcher = h.connect()
    h.call(watcher, .watch, "/w", "t")
    _ = h.events(watcher)
    h.write(writer, "/w", "v")
    #expect(h.events(watcher) == ["/w|t|"])
    h.engine.disconnect(watcher)
    h.write(writer, "/w", "again")
    #expect(h.events(watcher).isEmpty)
  }

  @Test func introduceAndReleaseEventsGoToPrivilegedWatchers() {
    let c = h.connect()
    h.call(c, .watch, "@introduceDomain", "i")
    h.call(c, .watch, "@releaseDomain", "r")
    _ = h.events(c)
    h.call(c, .introduce, "7", "1", "2")
    #expect(h.events(c) == ["@introduceDomain|i|"])
    h.call(c, .introduce, "7", "1", "2")
    #expect(h.events(c).isEmpty, "introducing again changes nothing")
    h.call(c, .release, "7")
    #expect(h.events(c) == ["@releaseDomain|r|"])
  }

  @Test func specialWatchesCanNameTheDomain() {
    let c = h.connect()
    h.call(c, .watch, "@releaseDomain/7", "just7")
    h.call(c, .watch, "@releaseDomain", "which", "1")
    h.call(c, .watch, "@introduceDomain", "which", "1")
    _ = h.events(c)
    h.call(c, .introduce, "7", "1", "2")
    h.call(c, .introduce, "8", "1", "2")
    #expect(h.events(c) == ["@introduceDomain/7|which|", "@introduceDomain/8|which|"])
    h.call(c, .release, "8")
    #expect(h.events(c) == ["@releaseDomain/8|which|"])
    h.call(c, .release, "7")
    #expect(h.events(c).sorted() == ["@releaseDomain/7|just7|", "@releaseDomain/7|which|"])
  }
}
