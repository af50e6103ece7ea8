import Testing
import XenStore
import XenStoreDaemon

/// Transactions with Xen 4.17's semantics: isolation per node from first access, EAGAIN when a
/// touched node changed meanwhile, events at commit.
@Suite struct TransactionTests {
  let h = EngineHarness()

  private func start(_ c: ConnectionID) -> UInt32 { UInt32(h.call(c, .transactionStart, "").dropLast())! }

  @Test func idsCountUpPerConnectionAndNestingIsEBUSY() {
    let c = h.connect()
    #expect(h.call(c, .transactionStart, "") == "1|")
    #expect(h.callRaw(c, .transactionStart, []) == "2|")
    #expect(h.call(c, .transactionStart, "", tx: 1) == "EBUSY")
    let other = h.connect()
    #expect(h.call(other, .transactionStart, "") == "1|")
    #expect(h.call(other, .read, "/", tx: 2) == "ENOENT", "ids are per connection")
  }

  @Test func writesAreInvisibleOutsideUntilCommit() {
    let c = h.connect()
    let tx = start(c)
    #expect(h.write(c, "/t/x", "v", tx: tx) == "OK|")
    #expect(h.call(c, .read, "/t/x", tx: tx) == "v")
    #expect(h.call(c, .read, "/t/x") == "ENOENT")
    #expect(h.call(c, .transactionEnd, "T", tx: tx) == "OK|")
    #expect(h.call(c, .read, "/t/x") == "v")
    #expect(h.call(c, .transactionEnd, "T", tx: tx) == "ENOENT", "ended transactions are gone")
  }

  @Test func abortDiscards() {
    let c = h.connect()
    let tx = start(c)
    h.write(c, "/t/x", "v", tx: tx)
    #expect(h.call(c, .transactionEnd, "F", tx: tx) == "OK|")
    #expect(h.call(c, .read, "/t/x") == "ENOENT")
  }

  @Test func badEndArgumentKeepsTheTransaction() {
    let c = h.connect()
    let tx = start(c)
    #expect(h.call(c, .transactionEnd, "X", tx: tx) == "EINVAL")
    #expect(h.call(c, .transactionEnd, "", tx: tx) == "EINVAL")
    #expect(h.call(c, .transactionEnd, "T", tx: tx) == "OK|")
    #expect(h.call(c, .transactionEnd, "T") == "ENOENT", "tx id 0 names no transaction")
  }

  /// test-xenstore's "ta err": read X in the transaction, X changes outside, write X inside.
  @Test func conflictingChangeMakesCommitEAGAIN() {
    let c = h.connect()
    h.write(c, "/x", "a")
    let tx = start(c)
    #expect(h.call(c, .read, "/x", tx: tx) == "a")
    h.write(c, "/x", "b")
    h.write(c, "/x", "c", tx: tx)
    #expect(h.call(c, .transactionEnd, "T", tx: tx) == "EAGAIN")
    #expect(h.call(c, .read, "/x") == "b")
    #expect(h.call(c, .transactionEnd, "T", tx: tx) == "ENOENT")
  }

  @Test func readOfAMissingNodeConflictsWithItsCreation() {
    let c = h.connect()
    let tx = start(c)
    #expect(h.call(c, .read, "/new", tx: tx) == "ENOENT")
    h.write(c, "/new", "1")
    #expect(h.call(c, .transactionEnd, "T", tx: tx) == "EAGAIN")
  }

  /// 4.17 checks conflicts from each node's first access, not from transaction start (pyxs's
  /// `test_transaction_commit_retry` expects otherwise and fails on C xenstored too).
  @Test func changesBeforeFirstAccessDoNotConflict() {
    let c = h.connect()
    h.write(c, "/foo/bar", "old")
    let tx = start(c)
    h.write(c, "/foo/bar", "outside")
    #expect(h.call(c, .read, "/foo/bar", tx: tx) == "outside")
    h.write(c, "/foo/bar", "inside", tx: tx)
    #expect(h.call(c, .transactionEnd, "T", tx: tx) == "OK|")
    #expect(h.call(c, .read, "/foo/bar") == "inside")
  }

  @Test func untouchedChangesDoNotConflict() {
    let c = h.connect()
    h.write(c, "/p/a", "1")
    h.write(c, "/q", "1")
    let tx = start(c)
    h.write(c, "/p/a", "2", tx: tx)
    h.write(c, "/q", "2")
    #expect(h.call(c, .transactionEnd, "T", tx: tx) == "OK|")
  }

  @Test func transactionSeesItsOwnTreeForDirectoryRmAndPerms() {
    let c = h.connect()
    let tx = start(c)
    h.write(c, "/tx/a", "v", tx: tx)
    #expect(h.call(c, .mkdir, "/tx/b", tx: tx) == "OK|")
    #expect(h.call(c, .directory, "/tx", tx: tx) == "a|b|")
    #expect(h.call(c, .rm, "/tx/a", tx: tx) == "OK|")
    #expect(h.call(c, .setPerms, "/tx/b", "n0", "r3", tx: tx) == "OK|")
    #expect(h.call(c, .getPerms, "/tx/b", tx: tx) == "n0|r3|")
    #expect(h.call(c, .directory, "/tx") == "ENOENT")
    #expect(h.call(c, .transactionEnd, "T", tx: tx) == "OK|")
    #expect(h.call(c, .directory, "/tx") == "b|")
    #expect(h.call(c, .getPerms, "/tx/b") == "n0|r3|")
    #expect(h.call(c, .control, "check") == "OK|")
  }

  @Test func eventsAreSentAtCommitAndNotForNodesThatCameAndWent() {
    let c = h.connect()
    let watcher = h.connect()
    h.call(watcher, .watch, "/tx", "tw")
    #expect(h.events(watcher) == ["/tx|tw|"])
    let tx = start(c)
    h.write(c, "/tx/a", "v", tx: tx)
    h.call(c, .mkdir, "/tx/b", tx: tx)
    h.call(c, .rm, "/tx/a", tx: tx)
    #expect(h.events(watcher).isEmpty)
    h.call(c, .transactionEnd, "T", tx: tx)
    #expect(h.events(watcher) == ["/tx/b|tw|"])
  }

  @Test func abortedAndFailedTransactionsSendNoEvents() {
    let c = h.connect()
    h.write(c, "/x", "a")
    h.call(c, .watch, "/x", "w")
    _ = h.events(c)
    let tx = start(c)
    h.write(c, "/x", "b", tx: tx)
    h.call(c, .transactionEnd, "F", tx: tx)
    #expect(h.events(c).isEmpty)
  }

  @Test func resetWatchesEndsTransactionsToo() {
    let c = h.connect()
    let tx = start(c)
    h.call(c, .resetWatches, "")
    #expect(h.call(c, .read, "/", tx: tx) == "ENOENT")
  }

  @Test func disconnectDropsOpenTransactions() {
    let c = h.connect()
    let tx = start(c)
    h.write(c, "/gone", "x", tx: tx)
    h.engine.disconnect(c)
    let d = h.connect()
    #expect(h.call(d, .read, "/gone") == "ENOENT")
    _ = tx
  }
}
