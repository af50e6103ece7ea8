/// Confirmation by a caller-supplied async check, which returns the confirming value once
/// the daemon is ready (it may wait, poll, watch anything) and throws when it never will be.
public struct CheckReadiness: ReadinessSource, ReadinessWait {
  public var awaiting: String
  public var check: @Sendable (ReadinessContext) async throws -> String

  public init(awaiting: String, check: @escaping @Sendable (ReadinessContext) async throws -> String) {
    self.awaiting = awaiting
    self.check = check
  }

  public func wait(_ context: ReadinessContext) async throws -> String { try await check(context) }
}

extension ReadinessSource where Self == CheckReadiness {
  /// A caller's async check; `awaiting` names what it waits for, in messages.
  public static func check(
    awaiting: String, _ check: @escaping @Sendable (ReadinessContext) async throws -> String
  ) -> CheckReadiness {
    CheckReadiness(awaiting: awaiting, check: check)
  }
}
