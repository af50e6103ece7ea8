import Spawn
import Synchronization
import XenStore

/// How `xl create` knows its device model started: the first of
/// - QMP: the greeting, `qmp_capabilities`, and `query-status` answering (spawn library), and
/// - the xenstore node `/local/domain/0/device-model/<domid>/state` becoming "running"
///   (what QEMU writes under Xen, and what libxl watches).
///
/// Watching xenstore during the wait also means a xenstored that dies meanwhile ends the
/// create at once, with that as the reason.
struct DeviceModelReadiness: ReadinessSource {
  let qmp: QMPReadiness
  let statePath: String
  let xenstore: XenStoreClient
  /// Set when the wait failed because xenstore did (rather than the device model).
  let xenstoreFailed = XenStoreFailure()

  final class XenStoreFailure: Sendable {
    let happened = Atomic<Bool>(false)
  }

  var awaiting: String { "\(qmp.awaiting) or \(statePath) = running" }

  func prepare(_ plan: inout LaunchPlan) throws(SpawnError) -> any ReadinessWait {
    let failure = xenstoreFailed
    let state = XenStoreReadiness(path: statePath, xenstore: xenstore) { _ in failure.happened.store(true, ordering: .relaxed) }
    return Wait(qmp: try qmp.prepare(&plan), state: state)
  }

  struct Wait: ReadinessWait {
    let qmp: any ReadinessWait
    let state: XenStoreReadiness

    func wait(_ context: ReadinessContext) async throws -> String {
      try await withThrowingTaskGroup(of: String.self) { group in
        group.addTask { try await qmp.wait(context) }
        group.addTask { try await state.wait(context) }
        defer { group.cancelAll() }
        return try await group.next()!
      }
    }

    func close() { qmp.close() }
  }
}
