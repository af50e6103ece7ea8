/// Limits for unprivileged domains, with C xenstored 4.17's defaults
/// (`xenstore-control quota` on it lists the same names and numbers).
public struct Quotas: Sendable, Hashable {
  /// Nodes a domain may own.
  public var nodes = 1000
  /// Watches a domain may hold (over all its connections).
  public var watches = 128
  /// Transactions a domain may have open (over all its connections).
  public var transactions = 10
  /// Connections a domain may hold open to its socket at once (Xen gives a domain one ring;
  /// more connections must not multiply what a domain may hold).
  public var connections = 32
  /// Requests a connection may have waiting for their replies to be read; past it the
  /// daemon stops reading that connection until the client catches up.
  public var outstanding = 20
  /// Nodes one transaction may touch.
  public var transactionNodes = 1024
  /// Size of a node's record (value, children, permissions, header).
  public var nodeSize = 2048
  /// Entries in a node's access list.
  public var permissions = 5

  public init() {}

  /// Xen's defaults.
  public static let xenDefaults = Quotas()

  /// The `CONTROL quota` reply text, in C xenstored's layout.
  var report: String {
    func line(_ name: String, _ value: Int, _ what: String) -> String {
      let padded = name + String(repeating: " ", count: max(0, 17 - name.count))
      let number = String(value)
      return "\(padded): \(String(repeating: " ", count: max(0, 8 - number.count)))\(number) \(what)\n"
    }
    return "Quota settings:\n"
      + line("nodes", nodes, "Nodes per domain")
      + line("watches", watches, "Watches per domain")
      + line("transactions", transactions, "Transactions per domain")
      + line("outstanding", outstanding, "Outstanding requests per domain")
      + line("transaction-nodes", transactionNodes, "Max. number of accessed nodes per transaction")
      + line("node-size", nodeSize, "Max. size of a node")
      + line("path-max", 2048, "Max. length of a node path")
      + line("permissions", permissions, "Max. number of permissions per node")
  }
}
