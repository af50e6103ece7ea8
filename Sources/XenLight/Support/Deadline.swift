/// `body`'s result, or nil if `limit` passes first (`body` is then cancelled). For the
/// bounded waits of the lifecycle verbs (an acknowledgement, a domain's end, a monitor's exit).
func first<T: Sendable>(within limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
  try await withThrowingTaskGroup(of: T?.self) { group in
    group.addTask { try await body() }
    group.addTask {
      try await Task.sleep(for: limit)
      return nil
    }
    defer { group.cancelAll() }
    return try await group.next()!
  }
}
