import Synchronization

/// A request that the domain monitor stop (SIGTERM to `xl monitor`). It is taken between
/// events, never inside an action: an action stopped halfway would leave the domain neither
/// in its old state nor in the one its `on_*` names. A monitor that stops leaves its domain
/// unmonitored; the next `xl` verb starts another (`MonitorKeeper`).
public final class MonitorStop: Sendable {
  private struct State {
    var requested = false
    var sink: (@Sendable () -> Void)?
  }
  private let state = Mutex(State())

  public init() {}

  /// Asks the monitor to stop once its current action, if any, is done.
  public func request() {
    let sink = state.withLock { state -> (@Sendable () -> Void)? in
      state.requested = true
      return state.sink
    }
    sink?()
  }

  /// `deliver` runs once a stop is requested (at once if it was already).
  func deliver(to sink: @escaping @Sendable () -> Void) {
    let requested = state.withLock { state -> Bool in
      state.sink = sink
      return state.requested
    }
    if requested { sink() }
  }
}
