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

  /// The domains of `store` whose recorded monitor is gone.
  public static func orphans(in store: DomainStore) async throws(XenLightError) -> [Orphan] {
    do {
      var found: [Orphan] = []
      for domid in try await store.guestDomids() {
        let libxl = try await store.read(["monitor-identity", "run-state"], under: "/libxl/\(domid)")
        let home = try await store.read(["name", "vm"], under: "/local/domain/\(domid)")
        guard let text = libxl["monitor-identity"], let lost = ProcessIdentity(text),
          let state = libxl["run-state"].flatMap(RunState.init), state != .dying,
          let name = home["name"], let vm = home["vm"], let uuid = DomainUUID(String(vm.dropFirst(4))),
          DomainDestroyer.liveness(of: lost) != .running
        else { continue }
        found.append(Orphan(domid: domid, uuid: uuid, name: name, lost: lost))
      }
      return found
    } catch let error as XenLightError {
      throw error
    } catch {
      throw XenStoreConnector.failure("cannot read the domains' monitors", error)
    }
  }
}
