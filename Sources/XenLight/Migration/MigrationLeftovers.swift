#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Spawn
import XenStore

/// What the next `xl` does with a migration whose driving xl died (`MigrationProtocol`'s
/// table, last paragraph): every domain with a note in `/libxl/<domid>/migration` whose driver
/// is no longer alive is settled by the step it had reached.
public enum MigrationLeftovers {
  /// Settles every abandoned migration in `store`; says what it did through `log`.
  public static func resolve(_ store: DomainStore, toolstack: Toolstack, log: (String) -> Void) async {
    // Bounded as every read of a verb is: a xenstored that never answers fails the verb
    // after, not during, this settling.
    guard let domids = try? await toolstack.deadline.run(store.xenstore, "listing domains", { () async throws(XenLightError) in
      try await store.guestDomids()
    }) else { return }
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
          guard let rune = try? await DomainStore.readOptional(store.xenstore, MigrationProtocol.Note.runePath(domid)),
            let vm = try? await DomainStore.readOptional(store.xenstore, "/local/domain/\(domid)/vm"),
            let uuid = DomainUUID(String(vm.dropFirst(4)))
          else { continue }
          log("xl: domain \(domid): " + (await settleInDoubt(domid, uuid: uuid, name: note.name, wasRunning: note.wasRunning, rune: rune, toolstack: toolstack, log: log)))
        }
      } catch {
        log("xl: domain \(domid): settling its abandoned migration failed: \(error.message)")
      }
    }
  }

  /// `cont` on the domain's command QMP socket, then its run state recorded running.
  static func resume(_ domid: UInt32, _ store: DomainStore, loop: EventLoop) async throws(XenLightError) {
    let target = try await DomainControl(store: store, loop: loop).target("\(domid)")
    guard let socket = target.qmpSocket else {
      throw XenLightError(.deviceModelFailed, "domain \(domid) (\(target.name)) has no QMP socket recorded")
    }
    try await QMPClient.session(path: socket, loop: loop, what: "domain \(domid) device model") { qmp throws(XenLightError) in
      try await QEMUMigration.resume(qmp)
    }
    try await store.update(domid: domid, [XenStoreRecord(target.layout.runStatePath, RunState.running.rawValue)])
  }

  /// What the receiver's side says of a domain: it has it, or not, or cannot say yet.
  public enum Answer: String, Sendable {
    case here, absent, unsettled
  }

  /// A sender's copy whose hand-over is in doubt (`go` written, no report): asks the
  /// receiver's side through `rune` (`… --resolve <uuid>`) and destroys this copy if the
  /// domain is there, resumes it if it is not, or leaves it paused. Returns what it did.
  static func settleInDoubt(
    _ domid: UInt32, uuid: DomainUUID, name: String, wasRunning: Bool, rune: String, toolstack: Toolstack,
    log: (String) -> Void
  ) async -> String {
    let away = MigrationProtocol.awayName(name)
    let answer: Answer
    do throws(XenLightError) { answer = try await ask(rune: rune, uuid: uuid, toolstack: toolstack) } catch {
      return "the receiver's side could not be asked (\(error.message)): domain \(domid) stays paused here as \"\(away)\" until the next xl asks again"
    }
    do throws(XenLightError) {
      switch answer {
      case .here:
        _ = try await toolstack.destroy("\(domid)")
        return "the receiver has \"\(name)\": this side's copy (domain \(domid)) was destroyed"
      case .absent:
        let settled = try await toolstack.withStore { store throws(XenLightError) in
          try await store.rename(domid: domid, to: name)
          if wasRunning { try await resume(domid, store, loop: toolstack.spawner.loop) }
          await MigrationProtocol.Note.clear(domid, store)
        }
        guard settled != nil else { throw XenLightError(.xenstoreLost, "xenstored is gone") }
        return "the receiver does not have \"\(name)\": domain \(domid) is \(wasRunning ? "running" : "paused") here again under its name"
      case .unsettled:
        return "the receiver is still busy with \"\(name)\": domain \(domid) stays paused here as \"\(away)\" until the next xl asks again"
      }
    } catch {
      return "settling domain \(domid) failed (\(error.message)); it stays paused here as \"\(away)\""
    }
  }

  /// Runs `<rune> --resolve <uuid>` (its stdout one end of a socket pair) and reads its answer.
  static func ask(rune: String, uuid: DomainUUID, toolstack: Toolstack) async throws(XenLightError) -> Answer {
    let (ours, theirs) = try DescriptorStream.socketPair()
    defer { close(ours) }
    let stream = DescriptorStream(fd: ours, source: "migration receiver", loop: toolstack.spawner.loop)
    stream.makeNonBlocking()
    let command = SpawnCommand(
      what: "migration receiver query (\(rune))", executable: "/bin/sh",
      arguments: ["-c", "exec 0</dev/null 1>&3 2>&4 3>&- 4>&-\n\(rune) --resolve \(uuid)"], passedDescriptors: [3: theirs, 4: 2],
      timeout: .seconds(60))
    let readiness = CheckReadiness(awaiting: "the receiver's answer") { _ in
      var line: [UInt8] = []
      while let byte = try await stream.read(1, what: "answer").first, byte != UInt8(ascii: "\n") { line.append(byte) }
      return String(decoding: line, as: UTF8.self)
    }
    let said: String
    do {
      let daemon = try await toolstack.spawner.start(command, readiness: readiness)
      close(theirs)
      said = try await daemon.confirm().value
    } catch {
      close(theirs)
      throw XenLightError(.io, "\(error)")
    }
    guard let answer = Answer(rawValue: said) else { throw XenLightError(.io, "the receiver answered \"\(said)\"") }
    return answer
  }

  /// The receiver's side of `ask`: after settling its own leftovers, whether it has the
  /// domain `uuid` (`unsettled` while an xl still drives its migration).
  public static func answer(uuid: DomainUUID, _ store: DomainStore, toolstack: Toolstack) async throws(XenLightError) -> Answer {
    await resolve(store, toolstack: toolstack, log: { _ in })
    for domid in try await store.guestDomids() {
      guard (try? await DomainStore.readOptional(store.xenstore, "/local/domain/\(domid)/vm")) == "/vm/\(uuid)" else { continue }
      if let text = try? await DomainStore.readOptional(store.xenstore, MigrationProtocol.Note.path(domid)), let note = MigrationProtocol.Note(text),
        toolstack.spawner.isRunning(note.driver)
      {
        return .unsettled
      }
      return .here
    }
    return .absent
  }
}
