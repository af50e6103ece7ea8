import Reactor
import Synchronization
import XenStore

/// A limit on how long xenstored may take to answer.
///
/// libxenstore waits forever: a xenstored that accepts connections and never answers hangs
/// its clients. `xl` instead closes the connection when a step takes longer than the limit,
/// which fails the step's pending requests, and says that xenstored did not answer.
public struct XenStoreDeadline: Sendable {
  public var limit: Duration
  public var loop: EventLoop

  public init(limit: Duration = .seconds(10), loop: EventLoop = .shared) {
    self.limit = limit
    self.loop = loop
  }

  /// Runs `body`, closing `client` if it takes longer than the limit.
  public func run<T: Sendable>(
    _ client: XenStoreClient, _ what: String, _ body: @Sendable () async throws(XenLightError) -> T
  ) async throws(XenLightError) -> T {
    let expired = Expired()
    let loop = self.loop
    let nanoseconds = UInt64(limit.components.seconds) * 1_000_000_000 + UInt64(limit.components.attoseconds / 1_000_000_000)
    let timer = try? await loop.submit {
      loop.schedule(afterNanoseconds: nanoseconds) {
        expired.value.store(true, ordering: .relaxed)
        client.close()
      }
    }
    defer { if let timer { loop.execute { loop.cancel(timer) } } }
    do {
      return try await body()
    } catch where expired.value.load(ordering: .relaxed) {
      throw XenLightError(.xenstore, "xenstored at \(client.socketPath) did not answer within \(limit.readable) (\(what))")
    }
  }

  private final class Expired: Sendable {
    let value = Atomic<Bool>(false)
  }
}
