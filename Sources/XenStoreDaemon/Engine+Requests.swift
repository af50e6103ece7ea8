import XenStore

/// One row per request type, as C xenstored's `wire_funcs` (tools/xenstored/core.c): the
/// handler and every fact dispatch needs. A type without a row is answered ENOSYS.
extension XenStoreEngine {
  /// Everything the engine knows about one request type. No field has a default, so a row
  /// cannot be added without saying whether the type is privileged and what it does with the
  /// transaction id.
  struct RequestKind: Sendable {
    /// Only dom0 may send it (`XS_FLAG_PRIV`): anyone else gets EACCES, before the transaction
    /// id or the payload is looked at.
    let privileged: Bool
    /// What it does with the header's transaction id.
    let transaction: TransactionUse
    /// Does the work; its payload is the reply's.
    let handle: @Sendable (XenStoreEngine, Request) throws(WireError) -> [UInt8]
  }

  enum TransactionUse: Sendable {
    /// The id is ignored and the request works on the live tree (`XS_FLAG_NOTID`).
    case ignored
    /// A non-zero id must name an open transaction of the connection (ENOENT otherwise) and
    /// the request works in it; in an unprivileged domain's transaction that has touched
    /// `transaction-nodes` nodes it is refused with ENOSPC (the quota rule).
    case used
    /// As `used`, but never refused by the `transaction-nodes` quota, so that a full
    /// transaction can still be ended (TRANSACTION_END).
    case usedBeyondQuota
  }

  /// A request as a handler sees it.
  struct Request {
    let message: Message
    let args: RequestArguments
    let ctx: Context
  }

  /// The table. Xen 4.17's flags, checked by `RequestTableTests`: privileged are CONTROL,
  /// INTRODUCE, RELEASE, IS_DOMAIN_INTRODUCED, RESUME and SET_TARGET; only WATCH and UNWATCH
  /// ignore the transaction id. WATCH_EVENT, ERROR and RESTRICT have no handler in Xen either;
  /// GET_FEATURE to SET_QUOTA (newer Xen) are not implemented.
  static let requests: [MessageType: RequestKind] = [
    .control: RequestKind(privileged: true, transaction: .used) { e, r throws(WireError) in try e.control(r.args) },
    .directory: RequestKind(privileged: false, transaction: .used) { e, r throws(WireError) in
      try e.directory(r.args, r.ctx)
    },
    .read: RequestKind(privileged: false, transaction: .used) { e, r throws(WireError) in try e.read(r.args, r.ctx) },
    .getPerms: RequestKind(privileged: false, transaction: .used) { e, r throws(WireError) in
      try e.getPermissions(r.args, r.ctx)
    },
    .watch: RequestKind(privileged: false, transaction: .ignored) { e, r throws(WireError) in try e.watch(r.args, r.ctx) },
    .unwatch: RequestKind(privileged: false, transaction: .ignored) { e, r throws(WireError) in
      try e.unwatch(r.args, r.ctx)
    },
    .transactionStart: RequestKind(privileged: false, transaction: .used) { e, r throws(WireError) in
      try e.transactionStart(r.message, r.ctx)
    },
    .transactionEnd: RequestKind(privileged: false, transaction: .usedBeyondQuota) { e, r throws(WireError) in
      try e.transactionEnd(r.args, r.ctx)
    },
    .introduce: RequestKind(privileged: true, transaction: .used) { e, r throws(WireError) in try e.introduce(r.args) },
    .release: RequestKind(privileged: true, transaction: .used) { e, r throws(WireError) in try e.release(r.args) },
    .getDomainPath: RequestKind(privileged: false, transaction: .used) { e, r throws(WireError) in
      try e.domainPath(r.args)
    },
    .write: RequestKind(privileged: false, transaction: .used) { e, r throws(WireError) in try e.write(r.args, r.ctx) },
    .mkdir: RequestKind(privileged: false, transaction: .used) { e, r throws(WireError) in try e.mkdir(r.args, r.ctx) },
    .rm: RequestKind(privileged: false, transaction: .used) { e, r throws(WireError) in try e.rm(r.args, r.ctx) },
    .setPerms: RequestKind(privileged: false, transaction: .used) { e, r throws(WireError) in
      try e.setPermissions(r.args, r.ctx)
    },
    .isDomainIntroduced: RequestKind(privileged: true, transaction: .used) { e, r throws(WireError) in
      try e.isDomainIntroduced(r.args)
    },
    .resume: RequestKind(privileged: true, transaction: .used) { e, r throws(WireError) in try e.resume(r.args) },
    .setTarget: RequestKind(privileged: true, transaction: .used) { e, r throws(WireError) in try e.setTarget(r.args) },
    .resetWatches: RequestKind(privileged: false, transaction: .used) { e, r throws(WireError) in
      e.resetWatches(r.ctx)
    },
    .directoryPart: RequestKind(privileged: false, transaction: .used) { e, r throws(WireError) in
      try e.directoryPart(r.args, r.ctx)
    },
  ]

  /// C's `process_message`: ENOSYS for a type without a row, EACCES for a privileged one from
  /// a domain, then the transaction (and its quota), then the handler.
  func dispatch(_ message: Message, _ conn: Connection) throws(WireError) -> [UInt8] {
    guard let kind = Self.requests[message.type] else { throw WireError(.ENOSYS) }
    if kind.privileged && !conn.isPrivileged { throw WireError(.EACCES) }
    var transaction: Transaction?
    if kind.transaction != .ignored && message.transactionID != 0 {
      guard let t = conn.transactions[message.transactionID] else { throw WireError(.ENOENT) }
      transaction = t
      if kind.transaction == .used && !conn.isPrivileged && t.touchedCount >= quotas.transactionNodes {
        throw WireError(.ENOSPC)
      }
    }
    let ctx = Context(conn: conn, transaction: transaction, store: store)
    return try kind.handle(self, Request(message: message, args: RequestArguments(payload: message.payload), ctx: ctx))
  }
}
