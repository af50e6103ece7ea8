import XenStore

/// TRANSACTION_START and TRANSACTION_END.
extension XenStoreEngine {
  func transactionStart(_ request: Message, _ ctx: Context) throws(WireError) -> [UInt8] {
    // Dispatch already checked that a non-zero id names an open transaction: no nesting.
    guard ctx.transaction == nil else { throw WireError(.EBUSY) }
    let conn = ctx.conn
    if !conn.isPrivileged && connections(of: conn.domid).reduce(0, { $0 + $1.transactions.count }) >= quotas.transactions {
      throw WireError(.ENOSPC)
    }
    var id = conn.lastTransactionID
    repeat { id &+= 1 } while id == 0 || conn.transactions[id] != nil
    conn.lastTransactionID = id
    conn.transactions[id] = Transaction(id: id, store: store)
    return Array(nulTerminated: String(id))
  }

  /// `T\0` commits (EAGAIN if a touched node changed meanwhile), `F\0` aborts.
  func transactionEnd(_ args: RequestArguments, _ ctx: Context) throws(WireError) -> [UInt8] {
    guard let transaction = ctx.transaction else { throw WireError(.ENOENT) }
    let commit: Bool
    switch args.single {
    case "T": commit = true
    case "F": commit = false
    default: throw WireError(.EINVAL)
    }
    ctx.conn.transactions[transaction.id] = nil
    guard commit else { return Self.ok }
    guard !transaction.hasConflict else { throw WireError(.EAGAIN) }
    for event in transaction.apply() {
      fireLive(event.path, exact: event.exact, permissions: store.node(event.path)?.permissions,
               oldPermissions: event.oldPermissions)
    }
    return Self.ok
  }
}
