import Spawn
import XenStore

/// The domains' records in xenstore: registering a new domain (claiming a domid, then
/// writing its records), finding domains, removing them.
public struct DomainStore: Sendable {
  public let xenstore: XenStoreClient

  /// Domids from 1 up to, not including, Xen's DOMID_FIRST_RESERVED.
  public static let domids: ClosedRange<UInt32> = 1...0x7FEF

  public init(xenstore: XenStoreClient) { self.xenstore = xenstore }

  /// Claims a domid for `name` in one small transaction (run again on EAGAIN): refuses a
  /// name already taken, takes the lowest domid ≥ 1 that no domain uses, and writes
  /// `roots(domid)` — the roots of the domain's subtrees and its name (`DomainLayout.isRoot`).
  /// Concurrent creates conflict only here, where a retry is cheap; `fill` then writes the
  /// rest inside the domain's own subtrees, where nobody else writes.
  /// With `killUID`, the restricted device model's uid for the domid: refused if another
  /// domain's device model already has it (its `image/device-model-kill-uid`).
  /// With `replacing` (a restart), the name passes from that domain to the new one in this
  /// same transaction — its records removed, or it renamed — so the name is never free.
  public func claim(
    name: String, replacing: DomainReplacement? = nil, killUID: (@Sendable (UInt32) -> (uid: UInt32, user: String))? = nil,
    roots: @Sendable (UInt32) -> [XenStoreRecord]
  ) async throws(XenLightError) -> UInt32 {
    do {
      return try await xenstore.transaction(maxAttempts: 1000) { tx in
        let used = try await Self.usedDomids(tx)
        var names = try await Self.names(of: used.filter { $0 != 0 }, tx)
        if let replacing {
          guard names[replacing.domid] == name else {
            throw XenLightError(.notFound, "domain \(replacing.domid) no longer holds the name \"\(name)\"; not restarted")
          }
          // `xl destroy` marked it dying: the user's destroy wins over the restart.
          if try await Self.readOptional(tx, replacing.layout.runStatePath) == RunState.dying.rawValue {
            throw XenLightError(.notFound, "domain \(replacing.domid) is being destroyed; not restarted")
          }
          names[replacing.domid] = nil
          try await replacing.handOver(tx)
        }
        if let taken = names.first(where: { $0.value == name }) {
          throw XenLightError(.duplicateName, "a domain named \"\(name)\" already exists (domain \(taken.key))")
        }
        guard let domid = Self.domids.first(where: { !used.contains($0) }) else {
          throw XenLightError(.xenstore, "no free domid: all of \(Self.domids) are in use")
        }
        if let killUID {
          let (uid, user) = killUID(domid)
          for other in used.sorted() where other != 0 {
            if let value = try await Self.readOptional(tx, "/local/domain/\(other)/image/device-model-kill-uid"),
              UInt32(value) == uid
            {
              throw XenLightError(
                .invalidConfig,
                "\(user): uid \(uid) already runs domain \(other)'s device model (\"\(names[other] ?? "?")\"); each domain's device model needs a uid of its own")
            }
          }
        }
        try await Self.write(roots(domid), tx)
        return domid
      }
    } catch let error as XenLightError {
      throw error
    } catch {
      throw XenStoreConnector.failure("cannot register domain \"\(name)\" in xenstore", error)
    }
  }

  /// Writes the rest of domain `domid`'s records in one transaction, as libxl's
  /// `libxl__domain_make` does. Nodes the domain itself is to own (`n<domid>`) are written
  /// owned by dom0: xenstored accepts an owner only once the domain exists, and `introduce`
  /// hands them over.
  public func fill(domid: UInt32, records: [XenStoreRecord]) async throws(XenLightError) {
    do {
      try await xenstore.transaction(maxAttempts: 1000) { tx in
        try await Self.write(records, tx) { $0.permissions?.owner == domid ? nil : $0.permissions }
      }
    } catch {
      throw XenStoreConnector.failure("cannot write domain \(domid)'s records to xenstore", error)
    }
  }

  /// Introduces domain `domid` to xenstored (`xs_introduce_domain`: it then exists, fires
  /// `@introduceDomain`, and can connect as itself), then gives it the nodes of `records`
  /// it is to own, in one transaction.
  public func introduce(domid: UInt32, records: [XenStoreRecord]) async throws(XenLightError) {
    do {
      // No ring or event channel without a hypervisor: xenstored reaches the domain by socket.
      try await xenstore.introduce(domain: domid, gfn: 0, eventChannel: 0)
      let owned = records.filter { $0.permissions?.owner == domid }
      try await xenstore.transaction(maxAttempts: 1000) { tx in
        try await withThrowingTaskGroup(of: Void.self) { group in
          for record in owned { group.addTask { try await tx.setPermissions(record.path, record.permissions!) } }
          try await group.waitForAll()
        }
      }
    } catch {
      throw XenStoreConnector.failure("cannot introduce domain \(domid) to xenstore", error)
    }
  }

  /// The names of `domids` (`/local/domain/<domid>/name`), read concurrently.
  static func names(of domids: some Sequence<UInt32>, _ ops: some XenStoreOperations) async throws -> [UInt32: String] {
    try await withThrowingTaskGroup(of: (UInt32, String?).self) { group in
      for domid in domids {
        group.addTask { (domid, try await readOptional(ops, "/local/domain/\(domid)/name")) }
      }
      var names: [UInt32: String] = [:]
      for try await (domid, name) in group { names[domid] = name }
      return names
    }
  }

  /// Writes `records` (and the access lists `permissions` picks) pipelined: every request
  /// goes out at once, in order (a parent before its children, so they inherit its access
  /// list), matched to its reply by id; the first failure is thrown.
  static func write(
    _ records: [XenStoreRecord], _ ops: some XenStoreOperations,
    permissions: @escaping @Sendable (XenStoreRecord) -> Permissions? = { $0.permissions }
  ) async throws {
    let ordered = records.sorted { $0.path.utf8.count(where: { $0 == UInt8(ascii: "/") }) < $1.path.utf8.count(where: { $0 == UInt8(ascii: "/") }) }
    var requests: [XenStoreRequest] = []
    for record in ordered {
      requests.append(.write(record.path, record.value))
      if let access = permissions(record) { requests.append(.setPermissions(record.path, access)) }
    }
    do {
      try await ops.pipeline(requests)
    } catch let error as XenStoreBatchError {
      throw error.error
    }
  }

  /// Every domid with records anywhere: `/local/domain/*`, `/libxl/*` and
  /// `/local/domain/0/device-model/*` (a half-removed domain still holds its domid).
  static func usedDomids(_ ops: some XenStoreOperations) async throws -> Set<UInt32> {
    // Three directories in flight at once: one round trip.
    async let homes = directoryOrEmpty(ops, "/local/domain")
    async let libxl = directoryOrEmpty(ops, "/libxl")
    async let deviceModels = directoryOrEmpty(ops, "/local/domain/0/device-model")
    var used: Set<UInt32> = [0]
    for child in try await homes + libxl + deviceModels {
      if let domid = UInt32(child) { used.insert(domid) }
    }
    return used
  }

  static func directoryOrEmpty(_ ops: some XenStoreOperations, _ path: String) async throws -> [String] {
    do {
      return try await ops.directory(path)
    } catch let error as XenStoreError where error.code == .ENOENT {
      return []
    }
  }

  /// The value at `path`, or nil if there is no such node.
  public static func readOptional(_ ops: some XenStoreOperations, _ path: String) async throws -> String? {
    do {
      return try await ops.read(path)
    } catch let error as XenStoreError where error.code == .ENOENT {
      return nil
    }
  }

  /// Writes `records` in one transaction if domain `domid` still exists (its home has a
  /// name), so that a late update never re-creates nodes of a destroyed domain. Returns
  /// whether it wrote.
  @discardableResult
  public func update(domid: UInt32, _ records: [XenStoreRecord]) async throws(XenLightError) -> Bool {
    do {
      return try await xenstore.transaction(maxAttempts: 1000) { tx in
        guard try await Self.readOptional(tx, "/local/domain/\(domid)/name") != nil else { return false }
        try await Self.write(records, tx)
        return true
      }
    } catch {
      throw XenStoreConnector.failure("cannot update domain \(domid)'s records", error)
    }
  }

  /// Writes `records` in the order given, pipelined, without a transaction: one round trip
  /// (xenstored commits them together). Each write stands alone, so the last record is the
  /// one readers wait for: once they see it, the others are there.
  public func writeInOrder(_ records: [XenStoreRecord]) async throws(XenLightError) {
    do {
      try await xenstore.pipeline(records.map { .write($0.path, $0.value) })
    } catch let error as XenStoreBatchError {
      throw XenStoreConnector.failure("cannot write to xenstore", error.error)
    } catch {
      throw XenStoreConnector.failure("cannot write to xenstore", error)
    }
  }

  /// Writes `records` in one transaction.
  public func write(_ records: [XenStoreRecord]) async throws(XenLightError) {
    do {
      try await xenstore.transaction(maxAttempts: 1000) { tx in try await Self.write(records, tx) }
    } catch {
      throw XenStoreConnector.failure("cannot write to xenstore", error)
    }
  }

  /// Releases domain `domid` (`xs_release_domain`, if it was introduced) and removes every
  /// record of it: its home, its `/vm/<uuid>` (found through `/local/domain/<domid>/vm`), its
  /// device-model node and `/libxl/<domid>`. The removals go out as one pipelined batch
  /// beside the release (xenstored commits them together), the home last: its disappearance
  /// is what waiters take for "destroyed". Removing what is already gone is fine; a removal
  /// cut short leaves the domid in use, and a second one finishes it.
  /// `vm`: the domain's `/vm/<uuid>` when the caller knows it (create's own cleanup), which
  /// spares reading it first.
  public func remove(domid: UInt32, vm known: String? = nil) async throws(XenLightError) {
    do {
      async let released: Void = {
        do {
          try await xenstore.release(domain: domid)
        } catch let error as XenStoreError where error.code == .ENOENT {
          // never introduced
        }
      }()
      let home = "/local/domain/\(domid)"
      var subtrees = ["/local/domain/0/device-model/\(domid)", "/libxl/\(domid)"]
      subtrees += DomainLayout.backendPaths(of: domid)
      var vm = known
      if vm == nil { vm = try await Self.readOptional(xenstore, home + "/vm") }
      if let vm, vm.hasPrefix("/vm/") { subtrees.append(vm) }
      subtrees.append(home)
      for result in try await xenstore.pipelineResults(subtrees.map { .rm($0) }) {
        if case .failure(let error) = result, error.code != .ENOENT { throw error }  // ENOENT: gone already
      }
      try await released
    } catch {
      throw XenStoreConnector.failure("cannot remove domain \(domid)'s records from xenstore", error)
    }
  }

  /// The domain `reference` names: a domid with records, or a domain name. nil if none.
  public func find(_ reference: String) async throws(XenLightError) -> UInt32? {
    do {
      let used = try await Self.usedDomids(xenstore)
      if let domid = UInt32(reference), reference.allSatisfy(\.isNumber) {
        return domid != 0 && used.contains(domid) ? domid : nil
      }
      let names = try await Self.names(of: used.filter { $0 != 0 }, xenstore)
      return names.filter { $0.value == reference }.keys.min()
    } catch {
      throw XenLightError(.xenstore, "cannot read domains from xenstore: \(XenStoreConnector.describe(error))", cause: .init(error))
    }
  }

  /// All guest domids with records, ascending.
  public func guestDomids() async throws(XenLightError) -> [UInt32] {
    do {
      return try await Self.usedDomids(xenstore).filter { $0 != 0 }.sorted()
    } catch {
      throw XenLightError(.xenstore, "cannot read domains from xenstore: \(XenStoreConnector.describe(error))", cause: .init(error))
    }
  }

  /// The values under `path`'s direct children that `names` lists (missing ones absent).
  /// Pipelined: one batch of reads.
  func read(_ names: [String], under path: String) async throws -> [String: String] {
    let results = try await xenstore.pipelineResults(names.map { .read(path + "/" + $0) })
    var values: [String: String] = [:]
    for (name, result) in zip(names, results) {
      switch result {
      case .success(let bytes): values[name] = String(decoding: bytes, as: UTF8.self)
      case .failure(let error) where error.code == .ENOENT: continue
      case .failure(let error): throw error
      }
    }
    return values
  }
}

/// The domain a restart replaces: in the new domain's claim it gives up its name — its
/// records removed (`restart`), or itself renamed and kept (`rename-restart`).
public struct DomainReplacement: Sendable {
  public var domid: UInt32
  public var layout: DomainLayout
  /// The name it keeps, for `rename-restart`; nil: its records go.
  public var renamedTo: String?
  /// Its run state once renamed (`shutdown` or `crashed`).
  public var keptRunState: RunState
  /// The monitor doing the restart: recorded as the new domain's from its claim on, so that
  /// the next `xl` knows whether it still lives (`MonitorKeeper`).
  public var monitor: ProcessIdentity?
  /// The saved config the restart re-creates from, recorded with the new domain until it has
  /// its own (a monitor killed before it is written still finds it).
  public var config: String?

  public init(
    domid: UInt32, layout: DomainLayout, renamedTo: String? = nil, keptRunState: RunState = .shutdown,
    monitor: ProcessIdentity? = nil, config: String? = nil
  ) {
    self.domid = domid
    self.layout = layout
    self.renamedTo = renamedTo
    self.keptRunState = keptRunState
    self.monitor = monitor
    self.config = config
  }

  /// Inside the claim's transaction: the old domain's name is no longer `name`.
  func handOver(_ tx: some XenStoreOperations) async throws {
    if let renamedTo {
      try await DomainStore.write(
        [
          XenStoreRecord(layout.domainPath + "/name", renamedTo), XenStoreRecord(layout.vmPath + "/name", renamedTo),
          XenStoreRecord(layout.runStatePath, keptRunState.rawValue),
        ], tx)
      for note in [layout.restartAsPath, layout.restartKeptPath, layout.monitorIdentityPath] { try await tx.rm(note) }
    } else {
      for subtree in layout.subtrees { try await tx.rm(subtree) }
      // Its devices' backend records (a domain without devices has none: ENOENT, ignored).
      for backend in DomainLayout.backendPaths(of: layout.domid) { _ = try? await tx.rm(backend) }
    }
  }
}
