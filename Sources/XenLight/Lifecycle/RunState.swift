/// What a domain is doing, kept in `/libxl/<domid>/run-state` by whoever changes it (create,
/// pause and unpause, the domain monitor, destroy), and shown by `xl list` as xl's letters.
public enum RunState: String, Hashable, Sendable, CaseIterable {
  case running, paused
  /// The guest shut down (powered off, rebooted) and `preserve` keeps it.
  case shutdown
  /// The guest crashed (panicked, or its device model died) and `preserve` keeps it.
  case crashed
  /// Being destroyed.
  case dying
  /// Being restarted by its monitor (`on_* = "restart"`, `"rename-restart"`): the intent,
  /// recorded before anything is undone, which the next monitor finishes if this one dies.
  case restarting
}
