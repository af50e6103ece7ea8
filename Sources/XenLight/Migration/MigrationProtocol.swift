#if canImport(Glibc)
import Glibc
#endif
import Spawn
import XenStore

/// xl's migration protocol (tools/xl/xl_migrate.c), spoken over the transport's stdin and
/// stdout (`ssh <host> xl migrate-receive`, or with `-s ''` the host argument run as the
/// command), and who owns the guest at each step.
///
/// | step | sender (`xl migrate`) | receiver (`xl migrate-receive`) | the guest's owner, what a failure leaves |
/// | --- | --- | --- | --- |
/// | 1 banner | spawns the transport, reads `banner` | writes `banner` | sender, running. Transport or receiver gone: nothing was made there; the sender's guest runs on. |
/// | 2 preamble | writes the save-file header and config | reads them; refuses (exit 4, nothing made) if the name is taken; creates `<name>--incoming`, QEMU waiting (`-incoming defer`), records `incoming <its identity>` | sender, running. Receiver refuses or dies: the stream fails at the sender, which runs on; a copy left made is removed by the next xl there (its receiver is gone). |
/// | 3 stream | QEMU live pre-copy into the transport; QEMU stops the guest for the last pass | QEMU loads it, the copy stays paused | sender: its guest runs, then is stopped but whole. Any failure: QEMU resumes it (xl checks); the receiver's QEMU fails its load and the copy is removed. |
/// | 4 ready | reads `ready` | writes `ready` once loaded | sender, paused. Failure: the sender resumes; the receiver, finding the stream ended without `go`, destroys its copy. |
/// | 5 commit | renames to `<name>--migratedaway`, records `outgoing-go`, writes `go` | reads `go`, records `incoming-go` | the commit point is the write of `go`: before it the sender's, after it the receiver's. |
/// | 6 start | reads `report` and the status byte | renames to `<name>`, unpauses (unless `-p`), writes `report` and 0 | receiver. The sender destroys its copy on 0. On a failure byte the receiver destroys its copy and writes `go` back (xl's "permission to resume"), and the sender resumes. |
///
/// Where a process dies, its records say what the next `xl` on that side does
/// (`MigrationLeftovers.resolve`): an `incoming` copy whose receiver is gone never got `go`
/// and is destroyed; an `incoming-go` one is renamed and started (the sender gave it away);
/// an `outgoing` guest whose sender is gone never gave it away and is resumed under its
/// name. The one state no single side can decide alone is `outgoing-go` with the report
/// lost (the transport cut right after `go`): the sender's copy stays paused as
/// `<name>--migratedaway` and is never resumed by itself — at most one copy runs, the
/// receiver's if `go` reached it. That copy is settled by asking the receiver's side, through
/// the same transport, whether it has the domain (`xl migrate-receive --resolve <uuid>`, after
/// settling its own leftovers): there, this copy is destroyed; absent, it is resumed; no
/// answer, it stays paused until the next xl asks again (`xl migrate`, `xl migrate-receive`,
/// `xl list` each settle what they find).
public enum MigrationProtocol {
  /// Sent by the receiver first (without a terminating NUL, as xl).
  public static let banner = Array("xl migration receiver ready, send binary domain data.\n".utf8)
  /// The receiver has the whole state (xl sends these three with their NUL).
  public static let ready = Array("domain received, ready to unpause".utf8) + [0]
  /// The sender hands the guest over (and, after a failure report, the receiver hands it back).
  public static let go = Array("domain is yours, you are cleared to unpause".utf8) + [0]
  /// Before the receiver's status byte (0: started).
  public static let report = Array("my copy unpause results are as follows".utf8) + [0]

  /// The names a domain goes by while it is being migrated.
  public static func incomingName(_ name: String) -> String { name + "--incoming" }
  public static func awayName(_ name: String) -> String { name + "--migratedaway" }

  /// A side's note in `/libxl/<domid>/migration`: its role and step, and the xl process
  /// that drives it, so that the next xl knows whether anyone still does.
  public struct Note: Sendable, Hashable {
    public enum Step: String, Sendable {
      case outgoing, outgoingGo = "outgoing-go", incoming, incomingGo = "incoming-go"
    }
    public var step: Step
    public var driver: ProcessIdentity
    /// The name the domain has when the migration is over (or undone).
    public var name: String
    /// Whether the guest ran before (an undone outgoing migration resumes only a running one).
    public var wasRunning: Bool

    public init(step: Step, driver: ProcessIdentity, name: String, wasRunning: Bool) {
      self.step = step
      self.driver = driver
      self.name = name
      self.wasRunning = wasRunning
    }

    /// `<step> <identity> <running|paused> <name>` (the name last: it may hold spaces).
    public var text: String { "\(step.rawValue) \(driver) \(wasRunning ? "running" : "paused") \(name)" }

    public init?(_ text: String) {
      let parts = text.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
      guard parts.count == 4, let step = Step(rawValue: parts[0]), let driver = ProcessIdentity(parts[1]) else { return nil }
      self.init(step: step, driver: driver, name: parts[3], wasRunning: parts[2] == "running")
    }

    static func path(_ domid: UInt32) -> String { "/libxl/\(domid)/migration" }
    /// The sender's transport command, to ask the receiver later what became of the domain.
    static func runePath(_ domid: UInt32) -> String { "/libxl/\(domid)/migration-rune" }

    /// This process as a driver.
    static func me() throws(XenLightError) -> ProcessIdentity {
      do { return try ProcessIdentity.of(pid: getpid()) } catch {
        throw XenLightError(.io, "cannot read this process's identity: \(error)")
      }
    }

    func write(_ domid: UInt32, _ store: DomainStore) async throws(XenLightError) {
      _ = try await store.update(domid: domid, [XenStoreRecord(Self.path(domid), text)])
    }

    static func clear(_ domid: UInt32, _ store: DomainStore) async {
      _ = try? await store.xenstore.rm(path(domid))
      _ = try? await store.xenstore.rm(runePath(domid))
    }
  }

  /// Renames domain `domid` as `xl rename` does (its records and its saved config; refused if
  /// another domain has `name`).
  static func rename(_ domid: UInt32, to name: String, _ store: DomainStore, toolstack: Toolstack) async throws(XenLightError) {
    let control = DomainControl(store: store, loop: toolstack.spawner.loop)
    try await control.rename(try await control.target("\(domid)"), to: name, paths: toolstack.paths)
  }
}
