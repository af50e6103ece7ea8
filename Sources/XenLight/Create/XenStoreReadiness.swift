import Spawn
import XenStore

/// Confirmation by xenstore: a node reaching a value, seen through a watch (libxl's
/// `libxl__xswait` on `/local/domain/0/device-model/<domid>/state` = `running`).
///
/// Event-driven: the watch's first event (sent at once by the daemon) covers a value written
/// before the wait began, and each later event re-reads the node. Other values are reported
/// as progress (`SpawnProgress.status`). A xenstore failure during the wait fails the spawn
/// with `.protocolFailed`, naming the path; `onXenStoreFailure` lets the caller tell that
/// apart from the daemon's own failure.
public struct XenStoreReadiness: ReadinessSource, ReadinessWait {
  public let path: String
  public let value: String
  public let xenstore: XenStoreClient
  let onXenStoreFailure: @Sendable (XenStoreError) -> Void

  public init(
    path: String, value: String = "running", xenstore: XenStoreClient,
    onXenStoreFailure: @escaping @Sendable (XenStoreError) -> Void = { _ in }
  ) {
    self.path = path
    self.value = value
    self.xenstore = xenstore
    self.onXenStoreFailure = onXenStoreFailure
  }

  public var awaiting: String { "\(path) = \(value)" }

  public func wait(_ context: ReadinessContext) async throws -> String {
    do {
      let watch = try await xenstore.watch(path)
      for try await _ in watch {
        guard let current = try await DomainStore.readOptional(xenstore, path) else { continue }
        if current == value { return "\(path) = \(current)" }
        context.report(status: "\(path) = \(current)")
      }
      // Only a closed client ends the watch quietly; then the other sources decide.
      try await Task.sleep(for: .seconds(86_400 * 365))
      throw CancellationError()
    } catch let error as XenStoreError where error.code != .cancelled {
      // A cancelled wait is the spawn deciding otherwise, not xenstore failing.
      onXenStoreFailure(error)
      throw SpawnError(.protocolFailed, what: context.what, detail: "xenstore failed while waiting for \(path): \(error)")
    }
  }
}
