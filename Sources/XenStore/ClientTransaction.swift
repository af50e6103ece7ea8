/// An open xenstore transaction: node operations on it see a snapshot and take effect
/// together at commit. Obtained from `XenStoreClient.transactionStart()` or inside
/// `XenStoreClient.transaction(_:)`.
public struct XenStoreTransaction: XenStoreOperations {
  public let client: XenStoreClient
  /// The daemon's id for this transaction (`xs_transaction_t`), sent as each request's tx_id.
  public let transactionID: UInt32
}

extension XenStoreClient {
  /// Starts a transaction (`xs_transaction_start`, TRANSACTION_START). End it with
  /// `transactionEnd(_:commit:)`. If the task is cancelled while waiting, a transaction the
  /// daemon opened anyway is aborted when its reply arrives.
  public func transactionStart() async throws(XenStoreError) -> XenStoreTransaction {
    let reply = try await request(.transactionStart, strings: [""], operation: "start transaction") { reply, connection in
      if reply.type == .transactionStart, let id = UInt32(reply.replyText) {
        connection.sendDetached(Message(type: .transactionEnd, transactionID: id, strings: ["F"]))
      }
    }
    guard let id = UInt32(reply.replyText), id != 0 else {
      throw XenStoreError(.protocolViolation, "start transaction: xenstored answered \"\(reply.payloadDescription)\", not a transaction id")
    }
    return XenStoreTransaction(client: self, transactionID: id)
  }

  /// Commits (`commit: true`) or aborts a transaction (`xs_transaction_end`, TRANSACTION_END).
  /// A commit throws `.EAGAIN` when something the transaction read or wrote changed
  /// meanwhile: nothing was applied, and the caller should run it again.
  public func transactionEnd(_ transaction: XenStoreTransaction, commit: Bool) async throws(XenStoreError) {
    _ = try await request(.transactionEnd, transaction: transaction.transactionID, strings: [commit ? "T" : "F"],
                          operation: commit ? "commit transaction \(transaction.transactionID)" : "abort transaction \(transaction.transactionID)")
  }

  /// Runs `body` in a transaction and commits it, running it again in a fresh transaction
  /// when the commit meets a conflict (`.EAGAIN`), at most `maxAttempts` times in all; then
  /// the last `.EAGAIN` is thrown. If `body` throws, the transaction is aborted and the error
  /// rethrown. `body` may run more than once: keep its side effects inside the transaction.
  public func transaction<T>(maxAttempts: Int = 16, _ body: (XenStoreTransaction) async throws -> T) async throws -> T {
    var attempt = 1
    while true {
      let transaction = try await transactionStart()
      let result: T
      do {
        result = try await body(transaction)
      } catch {
        // Not awaited: the abort must go out even when `error` is a cancellation.
        sendDetached(Message(type: .transactionEnd, transactionID: transaction.transactionID, strings: ["F"]))
        throw error
      }
      do throws(XenStoreError) {
        try await transactionEnd(transaction, commit: true)
        return result
      } catch {
        guard error.code == .EAGAIN && attempt < maxAttempts else { throw error }
        attempt += 1
      }
    }
  }
}
