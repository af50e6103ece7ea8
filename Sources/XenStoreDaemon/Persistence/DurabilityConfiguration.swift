#if canImport(Glibc)
import Glibc
#endif
import XenStore

/// How a `XenstoredServer` keeps its state across crashes and restarts (see DURABILITY.md).
///
/// Every change (a write, a committed transaction, a domain introduced or released) is one
/// checksummed log record, durable before its reply or any watch event it causes is sent.
public struct DurabilityConfiguration: Sendable {
  /// The state directory (created with mode 0700 if missing; one daemon at a time).
  public var stateDirectory: String
  /// Log size after which the state is written as a snapshot and a new log begins (never
  /// below the last snapshot's size, so that compaction costs at most as much as logging).
  public var compactionBytes: Int
  /// Called on the server's loop when the state can no longer be made durable (a failed
  /// `write` or `fdatasync`). The default exits with status 74 (EX_IOERR): nothing more is
  /// acknowledged, and a restart recovers every change acknowledged before.
  public var onFailure: @Sendable (XenstoredError) -> Void
  /// Runs on the sync thread before each group's `fdatasync` (tests hold syncs back with it).
  var beforeSync: (@Sendable () -> Void)?

  public init(stateDirectory: String, compactionBytes: Int = 16 << 20,
              onFailure: @escaping @Sendable (XenstoredError) -> Void = { _ in exit(74) }) {
    self.stateDirectory = stateDirectory
    self.compactionBytes = compactionBytes
    self.onFailure = onFailure
  }
}
