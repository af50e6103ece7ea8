#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Spawn
import XenStore

/// `xl shutdown`, `reboot`, `pause`, `unpause` and the wait for a domain's end, over its
/// records and its device model's command QMP socket.
public struct DomainControl: Sendable {
  public let store: DomainStore
  public var loop: EventLoop

  public init(store: DomainStore, loop: EventLoop = .shared) {
    self.store = store
    self.loop = loop
  }

  /// What a shutdown or reboot request went through.
  public enum RequestPath: Sendable, Hashable {
    /// libxl's PV protocol: `control/shutdown` written, acknowledged by the guest.
    case paravirtual
    /// The ACPI power button (`system_powerdown`), or a reset for a reboot (`system_reset`).
    case acpi
  }

  public enum Request: String, Sendable {
    case poweroff, reboot
  }

  /// A domain as the verbs need it.
  public struct Target: Sendable {
    public let domid: UInt32
    public let name: String
    public let layout: DomainLayout
    public let deviceModelTarget: DeviceModelTarget?
    public let qmpSocket: String?
    public let runState: RunState?
  }

  /// The domain `reference` names (a name or a domid), or `.notFound`.
  public func target(_ reference: String) async throws(XenLightError) -> Target {
    guard let domid = try await store.find(reference) else { throw XenLightError(.notFound, "no domain \"\(reference)\"") }
    do {
      let home = try await store.read(["name", "vm"], under: "/local/domain/\(domid)")
      let notes = try await store.read(["dm-target", "qmp-path", "run-state"], under: "/libxl/\(domid)")
      let uuid = home["vm"].flatMap { DomainUUID(String($0.dropFirst(4))) } ?? DomainUUID("00000000-0000-0000-0000-000000000000")!
      return Target(
        domid: domid, name: home["name"] ?? "(unnamed)", layout: DomainLayout(domid: domid, uuid: uuid),
        deviceModelTarget: notes["dm-target"].flatMap(DeviceModelTarget.init), qmpSocket: notes["qmp-path"],
        runState: notes["run-state"].flatMap(RunState.init))
    } catch {
      throw XenStoreConnector.failure("cannot read domain \(domid)'s records", error)
    }
  }

  /// Runs `command` on the device model's command QMP socket, in a session of its own, and
  /// returns its `return` value.
  @discardableResult
  func qmp(_ target: Target, _ command: String, _ arguments: [(String, JSON)] = []) async throws(XenLightError) -> JSON {
    try await session(target) { client throws(XenLightError) in try await client.execute(command, arguments) }
  }

  /// Runs `body` in a session on the device model's command QMP socket, then ends it.
  func session<T: Sendable>(_ target: Target, _ body: (QMPClient) async throws(XenLightError) -> T) async throws(XenLightError) -> T {
    guard let path = target.qmpSocket else {
      throw XenLightError(.deviceModelFailed, "domain \(target.domid) (\(target.name)) has no QMP socket recorded")
    }
    let client: QMPClient
    do throws(XenLightError) {
      client = try await QMPClient.connect(path: path, loop: loop, what: "domain \(target.domid) device model")
    } catch {
      throw XenLightError(
        .deviceModelFailed, "domain \(target.domid) (\(target.name)): its device model does not answer on \(path) (\(error.message))")
    }
    let result: Result<T, XenLightError>
    do throws(XenLightError) { result = .success(try await body(client)) } catch { result = .failure(error) }
    await client.finish()
    return try result.get()
  }

  /// Refuses a verb for a domain that is not running as it needs.
  func require(_ target: Target, _ verb: String, allowed: Set<RunState>) throws(XenLightError) {
    let state = target.runState ?? .running
    guard allowed.contains(state) else {
      var message = "cannot \(verb) domain \(target.domid) (\(target.name)): it is \(state.rawValue)"
      if state == .paused { message += "; a paused guest cannot act on it: unpause it first (xl unpause \(target.name))" }
      throw XenLightError(.invalidState, message)
    }
  }

  /// `xl pause`: QMP `stop`.
  public func pause(_ target: Target) async throws(XenLightError) {
    try require(target, "pause", allowed: [.running, .paused])
    try await command(target, "stop", then: .paused)
  }

  /// `xl unpause`: QMP `cont`.
  public func unpause(_ target: Target) async throws(XenLightError) {
    try require(target, "unpause", allowed: [.running, .paused])
    try await command(target, "cont", then: .running)
  }

  private func command(_ target: Target, _ name: String, then state: RunState) async throws(XenLightError) {
    try await qmp(target, name)
    try await store.update(domid: target.domid, [XenStoreRecord(target.layout.runStatePath, state.rawValue)])
  }

  /// Asks the guest to power off or reboot, as libxl does: through `control/shutdown` when
  /// the guest advertises `control/feature-poweroff` / `feature-reboot`, else — on the local
  /// target, or with `fallback` (`-F`) — the ACPI power button or a reset.
  public func request(_ request: Request, _ target: Target, fallback: Bool, acknowledgement: Duration = .seconds(10))
    async throws(XenLightError) -> RequestPath
  {
    try require(target, request == .poweroff ? "shut down" : "reboot", allowed: [.running])
    let feature = target.layout.domainPath + "/control/feature-" + request.rawValue
    let advertised = (try? await DomainStore.readOptional(store.xenstore, feature)) == "1"
    if advertised {
      try await paravirtualRequest(request, target, within: acknowledgement)
      return .paravirtual
    }
    guard target.deviceModelTarget == .local || fallback else {
      throw XenLightError(
        .noParavirt,
        "PV control interface not available: external graceful shutdown not possible.\nUse \"-F\" to fallback to ACPI power event.")
    }
    try await qmp(target, request == .poweroff ? "system_powerdown" : "system_reset")
    return .acpi
  }

  /// Writes `control/shutdown` and waits until the guest clears it (its acknowledgement).
  private func paravirtualRequest(_ request: Request, _ target: Target, within limit: Duration) async throws(XenLightError) {
    let node = target.layout.domainPath + "/control/shutdown"
    let xenstore = store.xenstore
    do {
      let watch = try await xenstore.watch(node)
      defer { Task { try? await watch.unwatch() } }
      try await xenstore.write(node, request.rawValue)
      let acknowledged = try await first(within: limit) {
        for try await _ in watch where (try? await DomainStore.readOptional(xenstore, node)) ?? "" == "" { return true }
        return false
      }
      guard acknowledged == true else {
        throw XenLightError(
          .timedOut, "domain \(target.domid) (\(target.name)) did not acknowledge \(request.rawValue) on \(node) within \(limit.readable)")
      }
    } catch let error as XenLightError {
      throw error
    } catch {
      throw XenStoreConnector.failure("cannot ask domain \(target.domid) to \(request.rawValue)", error)
    }
  }

  /// How `wait` ended for a domain.
  public enum End: Sendable, Hashable {
    case destroyed
    /// Shut down or crashed, and preserved (`-w` only).
    case shutDown(RunState)
  }

  /// Waits, by watch, until domain `domid` is destroyed — or, unless `deathOnly`, preserved
  /// as shut down or crashed. Throws `.timedOut` after `limit`.
  public func wait(for domid: UInt32, deathOnly: Bool, limit: Duration) async throws(XenLightError) -> End {
    let xenstore = store.xenstore
    let name = "/local/domain/\(domid)/name"
    let state = "/libxl/\(domid)/run-state"
    let end: End??
    do {
      let watch = try await xenstore.watch([name, state])
      defer { Task { try? await watch.unwatch() } }
      end = try await first(within: limit) { () async throws -> End? in
        for try await _ in watch {
          if try await DomainStore.readOptional(xenstore, name) == nil { return .destroyed }
          if !deathOnly, let now = try await DomainStore.readOptional(xenstore, state).flatMap(RunState.init),
            now == .shutdown || now == .crashed
          {
            return .shutDown(now)
          }
        }
        throw XenLightError(.xenstoreLost, "the xenstore connection closed while waiting for domain \(domid)")
      }
    } catch let error as XenLightError {
      throw error
    } catch {
      throw XenStoreConnector.failure("cannot wait for domain \(domid)", error)
    }
    guard let end, let end else {
      throw XenLightError(.timedOut, "domain \(domid) did not shut down within \(limit.readable)")
    }
    return end
  }
}
