#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// Confirmation by a line on a descriptor, as s6's `notification-fd`: the daemon gets the
/// write end of a pipe as descriptor `descriptor`, writes a line ending in "\n" when it is
/// ready, and closes it. The line (without "\n") is the confirming value. The end of the
/// stream before a newline is a protocol failure ("never ready").
public struct NotificationPipeReadiness: ReadinessSource {
  public var descriptor: Int32
  public init(descriptor: Int32) { self.descriptor = descriptor }

  public var awaiting: String { "a line on descriptor \(descriptor)" }

  public func prepare(_ plan: inout LaunchPlan) throws(SpawnError) -> any ReadinessWait {
    let ends: (read: Int32, write: Int32)
    do { ends = try plan.system.pipe() } catch {
      throw SpawnError(.spawnFailed, what: plan.what, errno: error, detail: "pipe")
    }
    _ = fcntl(ends.read, F_SETFL, fcntl(ends.read, F_GETFL) | O_NONBLOCK)
    plan.pass(ends.write, as: descriptor, closeAfterStart: true)
    return Wait(descriptor: descriptor, fd: ends.read, system: plan.system)
  }

  struct Wait: ReadinessWait {
    let descriptor: Int32
    let fd: Int32
    let system: SystemCalls

    func wait(_ context: ReadinessContext) async throws -> String {
      var line: [UInt8] = []
      var chunk = [UInt8](repeating: 0, count: 512)
      while true {
        _ = try await context.loop.wait(for: .readable, on: fd)
        while true {
          let n = read(fd, &chunk, chunk.count)
          if n > 0 {
            if let newline = chunk[0..<n].firstIndex(of: UInt8(ascii: "\n")) {
              line += chunk[0..<newline]
              return String(decoding: line, as: UTF8.self)
            }
            line += chunk[0..<n]
            continue
          }
          if n < 0 && (errno == EAGAIN || errno == EINTR) { break }
          let received = line.isEmpty ? "" : ", after \"\(String(decoding: line.prefix(200), as: UTF8.self))\""
          throw SpawnError(
            .protocolFailed, what: context.what,
            detail: "descriptor \(descriptor) was closed without a newline\(received)")
        }
      }
    }

    func close() { system.close(fd) }
  }
}

extension ReadinessSource where Self == NotificationPipeReadiness {
  /// A line on descriptor `descriptor` (s6 `notification-fd`).
  public static func notificationPipe(descriptor: Int32 = 3) -> NotificationPipeReadiness {
    NotificationPipeReadiness(descriptor: descriptor)
  }
}
