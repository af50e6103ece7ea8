import Reactor
import Spawn
import XenStore

/// What the next `xl` does with a migration whose driving xl died (`MigrationProtocol`'s
/// table, last paragraph): every domain with a note in `/libxl/<domid>/migration` whose driver
/// is no longer alive is settled by the step it had reached.
public enum MigrationLeftovers {
  /// Settles every abandoned migration in `store`; says what it did through `log`.
  public static func resolve(_ store: DomainStore, toolstack: Toolstack, log: (String) -> Void) async {
    guard let domids = try? await store.guestDomids() else { return }
    for domid in domids {
      guard let text = try? await DomainStore.readOptional(store.xenstore, MigrationProtocol.Note.path(domid)),
        let note = MigrationProtocol.Note(text), !toolstack.spawner.isRunning(note.driver)
      else { continue }
      do throws(XenLightError) {
        switch note.step {
        case .outgoing:
          // Never given away: ours again, under its name, running if it ran.
          try await store.rename(domid: domid, to: note.name)
          if note.wasRunning { try await resume(domid, store, loop: toolstack.spawner.loop) }
          await MigrationProtocol.Note.clear(domid, store)
          log("xl: domain \(domid) (\(note.name)): its migration's sender [\(note.driver.pid)] died before handing it over; resumed here")
        case .incoming:
          // Never handed over: the sender still has it.
          var destroyer = DomainDestroyer(spawner: toolstack.spawner, deadline: toolstack.deadline, lockPath: toolstack.paths.domainsLock)
          destroyer.paths = toolstack.paths
          _ = try await destroyer.destroy(domid: domid, in: store)
          log("xl: domain \(domid): an incoming migration of \"\(note.name)\" whose receiver [\(note.driver.pid)] died before it was handed over; destroyed")
        case .incomingGo:
          // Handed over: ours, and to be started.
          try await store.rename(domid: domid, to: note.name)
          try await resume(domid, store, loop: toolstack.spawner.loop)
          await MigrationProtocol.Note.clear(domid, store)
          log("xl: domain \(domid) (\(note.name)): handed over here, its receiver [\(note.driver.pid)] died before starting it; started")
        case .outgoingGo:
          continue  // in doubt: stays paused, shown by xl list
        }
      } catch {
        log("xl: domain \(domid): settling its abandoned migration failed: \(error.message)")
      }
    }
  }

  /// `cont` on the domain's command QMP socket, then its run state recorded running.
  static func resume(_ domid: UInt32, _ store: DomainStore, loop: EventLoop) async throws(XenLightError) {
    let control = DomainControl(store: store, loop: loop)
    let target = try await control.target("\(domid)")
    try await control.qmp(target, "cont")
    try await store.update(domid: domid, [XenStoreRecord(target.layout.runStatePath, RunState.running.rawValue)])
  }
}
