import Logging
import XenStore

/// What the engine asks of the transport around it.
public enum EngineOutput {
  /// Send a reply or a watch event to a connection.
  case message(Message, to: ConnectionID)
  /// Close a connection (its domain was released). The engine has already forgotten it.
  case close(ConnectionID)
  /// A domain was introduced: make it reachable (the server opens its socket).
  case introduced(domid: UInt32)
  /// A domain was released: its socket goes away.
  case released(domid: UInt32)
}

/// The xenstore daemon's whole state machine: the tree, transactions, watches, permissions,
/// quotas and domains, driven by requests and producing replies and events through `output`.
///
/// Pure memory and no I/O, so it is tested without sockets. Single-threaded: confine it to
/// one thread (the server's event loop), as C xenstored confines its state to its main loop.
public final class XenStoreEngine {
  public let quotas: Quotas
  /// Receives replies, events and domain changes, synchronously, in order.
  public var output: (EngineOutput) -> Void = { _ in }
  public var logger: Logger

  let store = Store()
  var watches = WatchTable()
  var connections: [ConnectionID: Connection] = [:]
  /// Introduced domains (dom0 always), with their SET_TARGET.
  var domains: [UInt32: Domain] = [0: Domain()] {
    didSet { store.recorder?.domainsChanged = true }
  }
  /// Access lists of `@introduceDomain` and `@releaseDomain`, set with SET_PERMS.
  var specialPermissions: [String: Permissions] = [
    "@introduceDomain": Permissions(owner: 0), "@releaseDomain": Permissions(owner: 0),
  ] {
    didSet { store.recorder?.specialPermissionsChanged = true }
  }
  private var lastConnection: UInt64 = 0
  /// Messages that go out after the current reply (the first event of a new watch).
  var afterReply: [(Message, ConnectionID)] = []

  struct Domain {
    var target: UInt32?
  }

  /// One client connection's state.
  final class Connection {
    let id: ConnectionID
    let domid: UInt32
    var transactions: [UInt32: Transaction] = [:]
    var lastTransactionID: UInt32 = 0
    /// (canonical path, token) of each watch, in creation order.
    var watchKeys: [(path: String, token: String)] = []

    init(id: ConnectionID, domid: UInt32) {
      self.id = id
      self.domid = domid
    }

    /// Dom0 may do anything; every other domain is checked.
    var isPrivileged: Bool { domid == 0 }
  }

  public init(quotas: Quotas = .xenDefaults, logger: Logger = Logger(label: "xenstored")) {
    self.quotas = quotas
    self.logger = logger
  }

  // MARK: Connections and domains

  /// Registers a connection acting as `domid` (0: privileged).
  public func connect(domain domid: UInt32) -> ConnectionID {
    lastConnection += 1
    let id = ConnectionID(rawValue: lastConnection)
    connections[id] = Connection(id: id, domid: domid)
    return id
  }

  /// Forgets a connection: its watches and open transactions go with it.
  public func disconnect(_ id: ConnectionID) {
    guard let conn = connections.removeValue(forKey: id) else { return }
    watches.removeAll(id, paths: conn.watchKeys.map(\.path))
  }

  /// The domain a connection acts as.
  public func domain(of id: ConnectionID) -> UInt32? { connections[id]?.domid }

  /// Whether `domid` is introduced (dom0 always is).
  public func isIntroduced(_ domid: UInt32) -> Bool { domains[domid] != nil }

  /// Nodes in the tree.
  public var nodeCount: Int { store.count }

  // MARK: Requests

  /// Handles one request from `connection`: its events and reply go to `output`.
  public func handle(_ request: Message, from connection: ConnectionID) {
    guard let conn = connections[connection] else { return }
    var reply: Message
    do {
      reply = .reply(to: request, payload: try dispatch(request, conn))
    } catch {
      reply = .error(error.code, to: request)
    }
    // No client accepts more than XENSTORE_PAYLOAD_MAX: C xenstored answers E2BIG instead.
    if reply.payload.count > Message.payloadMax { reply = .error(.E2BIG, to: request) }
    output(.message(reply, to: connection))
    if !afterReply.isEmpty {
      let later = afterReply
      afterReply.removeAll()
      for (message, to) in later { output(.message(message, to: to)) }
    }
  }

  /// What a request works on: its connection, and its transaction's view or the live tree.
  struct Context {
    let conn: Connection
    let transaction: Transaction?
    var tree: NodeTree { transaction ?? store }
    private let store: Store
    init(conn: Connection, transaction: Transaction?, store: Store) {
      self.conn = conn
      self.transaction = transaction
      self.store = store
    }
  }

  static let ok = Array(nulTerminated: "OK")

  // MARK: Permission checks

  /// What `conn` may do on a node with `permissions`.
  func access(_ conn: Connection, _ permissions: Permissions) -> Access {
    conn.isPrivileged ? .both : permissions.access(for: conn.domid, target: domains[conn.domid]?.target)
  }

  /// The connections acting as `domid`: quotas count a domain's watches and transactions over
  /// all of them, so that opening more connections to its socket gains a domain nothing.
  func connections(of domid: UInt32) -> some Sequence<Connection> {
    connections.values.lazy.filter { $0.domid == domid }
  }

  /// Sends a watch event, unless it would exceed XENSTORE_PAYLOAD_MAX (C xenstored drops those).
  func send(event: Message, to id: ConnectionID, afterReply later: Bool = false) {
    guard event.payload.count <= Message.payloadMax else {
      logger.debug("dropping an oversized watch event", metadata: ["connection": "\(id)"])
      return
    }
    if later { afterReply.append((event, id)) } else { output(.message(event, to: id)) }
  }

  func isOwner(_ conn: Connection, _ permissions: Permissions) -> Bool {
    conn.isPrivileged || permissions.isOwner(conn.domid, target: domains[conn.domid]?.target)
  }
}
