import Testing
import XenStore
@testable import XenStoreDaemon

/// The engine's one table of request types (`XenStoreEngine.requests`) against Xen 4.17's
/// `wire_funcs` (tools/xenstore/xenstored_core.c; tools/xenstored/core.c since 4.19): which
/// types have a handler, which are `XS_FLAG_PRIV`, which are `XS_FLAG_NOTID`. Then the same
/// facts observed through `handle`, so the table is what dispatch uses.
@Suite struct RequestTableTests {
  /// Types with a handler in Xen 4.17 (WATCH_EVENT, ERROR and RESTRICT have none there;
  /// GET_FEATURE to SET_QUOTA came later and are not implemented here).
  static let xenHandled: Set<MessageType> = [
    .control, .directory, .read, .getPerms, .watch, .unwatch, .transactionStart, .transactionEnd,
    .introduce, .release, .getDomainPath, .write, .mkdir, .rm, .setPerms, .isDomainIntroduced, .resume,
    .setTarget, .resetWatches, .directoryPart,
  ]
  /// `XS_FLAG_PRIV` in Xen 4.17.
  static let xenPrivileged: Set<MessageType> = [
    .control, .introduce, .release, .isDomainIntroduced, .resume, .setTarget,
  ]
  /// `XS_FLAG_NOTID` in Xen 4.17.
  static let xenIgnoringTransaction: Set<MessageType> = [.watch, .unwatch]

  @Test func theTableHasXensRowsAndFlags() {
    let table = XenStoreEngine.requests
    #expect(Set(table.keys) == Self.xenHandled)
    #expect(Set(table.filter { $0.value.privileged }.keys) == Self.xenPrivileged)
    #expect(Set(table.filter { $0.value.transaction == .ignored }.keys) == Self.xenIgnoringTransaction)
    // The transaction-nodes quota spares only TRANSACTION_END, so a full transaction can end.
    #expect(Set(table.filter { $0.value.transaction == .usedBeyondQuota }.keys) == [.transactionEnd])
  }

  /// Every type number a client may send, known or not.
  static let allTypes = (0...40).map { MessageType(rawValue: $0) } + [MessageType(rawValue: .max)]

  @Test(arguments: allTypes)
  func dispatchFollowsTheTable(type: MessageType) {
    let h = EngineHarness()
    let dom0 = h.connect()
    h.call(dom0, .introduce, "5", "0", "0")
    let domain = h.connect(5)
    // Payloads that no handler accepts as a success, so only dispatch's own answers matter.
    let fromDomain = h.callRaw(domain, type, [], tx: 77)
    let fromDom0 = h.callRaw(dom0, type, [], tx: 77)
    guard Self.xenHandled.contains(type) else {
      #expect(fromDomain == "ENOSYS" && fromDom0 == "ENOSYS")
      return
    }
    // Privilege comes first, before the (bad) transaction id is looked at.
    if Self.xenPrivileged.contains(type) { #expect(fromDomain == "EACCES") }
    // A transaction id naming no transaction: ENOENT, unless the type ignores it.
    if Self.xenIgnoringTransaction.contains(type) {
      #expect(fromDom0 != "ENOENT" && fromDomain != "ENOENT" && fromDomain != "EACCES")
    } else {
      #expect(fromDom0 == "ENOENT")
      if !Self.xenPrivileged.contains(type) { #expect(fromDomain == "ENOENT") }
    }
  }

  /// The quota rule: a domain's transaction that has touched `transaction-nodes` nodes refuses
  /// every request in it with ENOSPC but TRANSACTION_END; dom0's is not limited.
  @Test func aFullTransactionRefusesAllButItsEnd() {
    var quotas = Quotas()
    quotas.transactionNodes = 2
    let h = EngineHarness(quotas: quotas)
    let dom0 = h.connect()
    h.call(dom0, .introduce, "5", "0", "0")
    h.write(dom0, "/local/domain/5", "")
    h.call(dom0, .setPerms, "/local/domain/5", "n5")
    let domain = h.connect(5)
    let tx = UInt32(h.call(domain, .transactionStart, "").dropLast())!
    #expect(h.write(domain, "a", "1", tx: tx) == "OK|")   // touches a and its parent
    #expect(h.call(domain, .read, "a", tx: tx) == "ENOSPC")
    #expect(h.call(domain, .watch, "a", "t", tx: tx) == "OK|")   // the id is ignored
    #expect(h.call(domain, .transactionEnd, "T", tx: tx) == "OK|")
    #expect(h.call(domain, .read, "a") == "1")

    let tx0 = UInt32(h.call(dom0, .transactionStart, "").dropLast())!
    for i in 0..<4 { #expect(h.write(dom0, "/x\(i)", "v", tx: tx0) == "OK|") }
    #expect(h.call(dom0, .transactionEnd, "T", tx: tx0) == "OK|")
  }
}
