import Spawn
import XenStore

/// Finds the domains whose monitor has died, for the next `xl` verb to start another (as the
/// next `xl` starts xenstored again): a domain create recorded running (or later), whose
/// recorded monitor is no longer the live process, and that is not being destroyed. A domain
/// created without a monitor (`xl create -e`) records none and is left alone. The new
/// monitor finishes what the dead one recorded it was doing (a restart).
public enum MonitorKeeper {
  /// A domain left without its monitor.
  public struct Orphan: Sendable, Hashable {
    public var domid: UInt32
    public var uuid: DomainUUID
    public var name: String
    /// The monitor that died.
    public var lost: ProcessIdentity
  }

  /// What the records say of a domain's monitor.
  public struct Domain: Sendable, Hashable {
    public var domid: UInt32
    public var uuid: DomainUUID
    public var name: String
    public var monitor: ProcessIdentity?
    public var runState: RunState?
  }

  /// The domains of `store` whose recorded monitor is gone.
  public static func orphans(in store: DomainStore) async throws(XenLightError) -> [Orphan] {
    try await domains(in: store) { domain in
      guard let monitor = domain.monitor, let state = domain.runState else { return false }
      return state != .dying && DomainDestroyer.liveness(of: monitor) != .running
    }.map { Orphan(domid: $0.domid, uuid: $0.uuid, name: $0.name, lost: $0.monitor!) }
  }

  /// The domains of `store` that `include` picks.
  static func domains(in store: DomainStore, where include: (Domain) -> Bool) async throws(XenLightError) -> [Domain] {
    do {
      var found: [Domain] = []
      for domid in try await store.guestDomids() {
        let libxl = try await store.read(["monitor-identity", "run-state"], under: "/libxl/\(domid)")
        let home = try await store.read(["name", "vm"], under: "/local/domain/\(domid)")
        guard let name = home["name"], let vm = home["vm"], let uuid = DomainUUID(String(vm.dropFirst(4))) else { continue }
        let domain = Domain(
          domid: domid, uuid: uuid, name: name, monitor: libxl["monitor-identity"].flatMap(ProcessIdentity.init),
          runState: libxl["run-state"].flatMap(RunState.init))
        if include(domain) { found.append(domain) }
      }
      return found
    } catch let error as XenLightError {
      throw error
    } catch {
      throw XenStoreConnector.failure("cannot read the domains' monitors", error)
    }
  }
}
