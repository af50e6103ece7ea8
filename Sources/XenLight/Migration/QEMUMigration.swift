#if canImport(Glibc)
import Glibc
#endif
import Spawn

/// QEMU's migration driven over QMP (qapi/migration.json), through descriptors only: the
/// file or transport is opened by xl and handed to QEMU with `getfd` (SCM_RIGHTS), then
/// `migrate` / `migrate-incoming` to `fd:<name>`. A confined device model never opens a
/// host path, and no `exec:` runs a shell. The end is QEMU's `MIGRATION` event (the
/// `events` capability), never a poll of `query-migrate`.
public enum QEMUMigration {
  /// The name the descriptor goes by in QEMU (`getfd`).
  static let descriptorName = "xl-migration"

  /// What QEMU reports of a finished outgoing migration (`query-migrate`).
  public struct Totals: Sendable, Hashable {
    /// From `migrate` to completion.
    public var totalMilliseconds: Int64
    /// How long the guest was stopped at the end, as QEMU measured it.
    public var downtimeMilliseconds: Int64
    public var setupMilliseconds: Int64
    /// RAM bytes sent, and the guest's RAM.
    public var transferredBytes: Int64
    public var ramBytes: Int64
    /// Pages sent again because the guest dirtied them (pre-copy rounds).
    public var dirtySyncCount: Int64
    /// When QEMU stopped the guest for the last pass (its `STOP` event, CLOCK_REALTIME µs; 0 if
    /// it was stopped before the migration).
    public var stoppedAtMicroseconds: Int64 = 0

    init(_ reply: JSON) {
      totalMilliseconds = reply["total-time"]?.intValue ?? 0
      downtimeMilliseconds = reply["downtime"]?.intValue ?? 0
      setupMilliseconds = reply["setup-time"]?.intValue ?? 0
      transferredBytes = reply["ram"]?["transferred"]?.intValue ?? 0
      ramBytes = reply["ram"]?["total"]?.intValue ?? 0
      dirtySyncCount = reply["ram"]?["dirty-sync-count"]?.intValue ?? 0
    }

    public var description: String {
      "total \(totalMilliseconds) ms, downtime \(downtimeMilliseconds) ms, setup \(setupMilliseconds) ms, \(transferredBytes / 1024) KiB sent of \(ramBytes / 1024) KiB RAM in \(dirtySyncCount) passes"
    }
  }

  /// One QMP command for `together`.
  public struct Command: Sendable {
    public var name: String
    public var arguments: [(String, JSON)]
    public var descriptor: Int32?

    public init(_ name: String, _ arguments: [(String, JSON)] = [], passing descriptor: Int32? = nil) {
      self.name = name
      self.arguments = arguments
      self.descriptor = descriptor
    }
  }

  /// Sends `commands` at once and waits for every reply: one round trip's wait instead of one
  /// each. Their order among themselves must not matter. The first refusal is thrown.
  static func together(_ qmp: QMPClient, _ commands: [Command]) async throws(XenLightError) {
    let failures = await withTaskGroup(of: XenLightError?.self) { group in
      for command in commands {
        group.addTask {
          do throws(XenLightError) {
            try await qmp.execute(command.name, command.arguments, passing: command.descriptor)
            return nil
          } catch {
            return error
          }
        }
      }
      var failures: [XenLightError] = []
      for await failure in group { if let failure { failures.append(failure) } }
      return failures
    }
    if let first = failures.first { throw first }
  }

  /// The `MIGRATION` events on, and (`uncapped`) no bandwidth cap: QEMU's default of 32 MiB/s
  /// is meant for links shared with guests; a save or a local transport should go at full
  /// speed. INT64_MAX is what libvirt asks for "unlimited" (QEMU's bound is SIZE_MAX bytes/s).
  static func preparation(uncapped: Bool, descriptor: Int32) -> [Command] {
    var commands = [
      Command("migrate-set-capabilities", [("capabilities", .array([.object([("capability", .string("events")), ("state", .bool(true))])]))]),
      Command("getfd", [("fdname", .string(descriptorName))], passing: descriptor),
    ]
    if uncapped { commands.append(Command("migrate-set-parameters", [("max-bandwidth", .number(Int64.max))])) }
    return commands
  }

  /// Sends the device model's state into `descriptor` and returns QEMU's totals once the
  /// migration completed. Live (the guest runs while its memory is copied, pre-copy) unless
  /// the caller stopped it first. A failure throws with QEMU's reason; the source is left as
  /// QEMU leaves it (stopped at the end of a live migration only if it completed).
  /// `handedOver` runs once QEMU holds its own copy of the descriptor (a pipe or socket's
  /// writer must close ours for the reader to see the end).
  /// `alongside` go with the preparation (a `stop` for a save). Without `totals`, QEMU is not
  /// asked for them (one round trip less) and they are zero.
  public static func send(
    _ qmp: QMPClient, into descriptor: Int32, uncapped: Bool = true, alongside: [Command] = [], totals wanted: Bool = true,
    handedOver: () -> Void = {}
  ) async throws(XenLightError) -> Totals {
    try await together(qmp, preparation(uncapped: uncapped, descriptor: descriptor) + alongside)
    handedOver()
    try await qmp.execute("migrate", [("uri", .string("fd:" + descriptorName))])
    let (status, stoppedAt) = try await finalStatus(qmp)
    guard status == "completed" else {
      let reply = try? await qmp.execute("query-migrate")
      let reason = reply?["error-desc"]?.stringValue ?? "status \(status)"
      throw XenLightError(.deviceModelFailed, "the device model's migration failed: \(reason)")
    }
    var totals = Totals(wanted ? try await qmp.execute("query-migrate") : .null)
    totals.stoppedAtMicroseconds = stoppedAt
    return totals
  }

  /// Feeds `descriptor` (positioned at the start of QEMU's stream) to a device model started
  /// with `-incoming defer`, and waits until it has loaded it. QEMU 7.2 exits when a load
  /// fails; the caller turns that into its log's last lines (`LoadFailure`).
  public static func receive(_ qmp: QMPClient, from descriptor: Int32) async throws(XenLightError) {
    try await together(qmp, preparation(uncapped: false, descriptor: descriptor))
    try await qmp.execute("migrate-incoming", [("uri", .string("fd:" + descriptorName))])
    let (status, _) = try await finalStatus(qmp)
    guard status == "completed" else {
      let reply = try? await qmp.execute("query-migrate")
      throw XenLightError(.deviceModelFailed, reply?["error-desc"]?.stringValue ?? "the migration ended with status \(status)")
    }
  }

  /// `cont` on a device model whose migration may just have completed. QEMU announces
  /// `completed` a moment before it leaves `finish-migrate` for `postmigrate`, and says nothing
  /// when it does; until then it refuses `cont` ("Migration is not finalized yet"). That one
  /// refusal is retried each millisecond for at most 5 s: the only wait here with no event to
  /// wait on (QEMU 7.2).
  public static func resume(_ qmp: QMPClient) async throws(XenLightError) {
    var attempts = 0
    while true {
      do throws(XenLightError) {
        try await qmp.execute("cont")
        return
      } catch where error.message.hasSuffix("Migration is not finalized yet") && attempts < 5000 {
        attempts += 1
        try? await Task.sleep(for: .milliseconds(1))
      }
    }
  }

  /// The first final `MIGRATION` status: completed, failed or cancelled, and when the guest
  /// was stopped on the way (`STOP`). The session closing first (QEMU exited) throws.
  static func finalStatus(_ qmp: QMPClient) async throws(XenLightError) -> (String, Int64) {
    var stoppedAt: Int64 = 0
    for await event in qmp.events {
      if event.name == "STOP" { stoppedAt = event.timestampMicroseconds }
      guard event.name == "MIGRATION" else { continue }
      let status = event.data["status"]?.stringValue ?? ""
      if ["completed", "failed", "cancelled"].contains(status) { return (status, stoppedAt) }
    }
    throw XenLightError(.deviceModelFailed, "the device model exited during the migration")
  }
}
