#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Synchronization

/// Confirmation by sd_notify: the daemon finds a datagram socket in `NOTIFY_SOCKET` and
/// sends newline-separated `KEY=VALUE` lines. `READY=1` confirms (the value is "READY=1");
/// `STATUS=` is progress; `ERRNO=` is a failure (a protocol failure carrying that errno);
/// `EXTEND_TIMEOUT_USEC=` moves the deadline to at least that far from now. Other keys are
/// ignored, as systemd does. Any process may send (systemd's NotifyAccess=all).
public struct SystemdNotifyReadiness: ReadinessSource {
  /// The socket's address: a path, or nil for a fresh abstract name ("@xl-spawn-...").
  public var socketPath: String?
  public init(socketPath: String? = nil) { self.socketPath = socketPath }

  public var awaiting: String { "READY=1 on NOTIFY_SOCKET" }

  private static let counter = Atomic<UInt64>(0)

  public func prepare(_ plan: inout LaunchPlan) throws(SpawnError) -> any ReadinessWait {
    let name =
      socketPath
      ?? "@xl-spawn-\(getpid())-\(SystemdNotifyReadiness.counter.add(1, ordering: .relaxed).newValue)-\(UInt32.random(in: 0...UInt32.max))"
    guard let address = UnixAddress(name) else {
      throw SpawnError(.invalidCommand, what: plan.what, detail: "NOTIFY_SOCKET path too long: \(name)")
    }
    let fd: Int32
    do { fd = try plan.system.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue)) } catch {
      throw SpawnError(.spawnFailed, what: plan.what, errno: error, detail: "socket")
    }
    if socketPath != nil { unlink(name) }
    let bound = address.withSockaddr { bind(fd, $0, $1) }
    guard bound == 0 else {
      let error = SystemErrno.current
      plan.system.close(fd)
      throw SpawnError(.spawnFailed, what: plan.what, errno: error, detail: "bind \(name)")
    }
    plan.environment["NOTIFY_SOCKET"] = name
    return Wait(fd: fd, path: socketPath, system: plan.system)
  }

  struct Wait: ReadinessWait {
    let fd: Int32
    let path: String?
    let system: SystemCalls

    func wait(_ context: ReadinessContext) async throws -> String {
      var datagram = [UInt8](repeating: 0, count: 4096)
      while true {
        _ = try await context.loop.wait(for: .readable, on: fd)
        while true {
          let n = recv(fd, &datagram, datagram.count, Int32(MSG_DONTWAIT))
          if n < 0 { break }  // EAGAIN: all read
          if let ready = try handle(String(decoding: datagram[0..<n], as: UTF8.self), context) { return ready }
        }
      }
    }

    /// One datagram: its lines in order; "READY=1" if it confirms.
    private func handle(_ datagram: String, _ context: ReadinessContext) throws -> String? {
      var ready = false
      for line in datagram.split(separator: "\n") {
        guard let equals = line.firstIndex(of: "=") else { continue }
        let key = line[..<equals]
        let value = String(line[line.index(after: equals)...])
        switch key {
        case "READY" where value == "1":
          ready = true
        case "STATUS":
          context.report(status: value)
        case "ERRNO":
          let number = Int32(value) ?? 0
          let error = SystemErrno(rawValue: number)
          throw SpawnError(
            .protocolFailed, what: context.what, errno: number > 0 ? error : nil,
            detail: "it reported ERRNO=\(value)" + (number > 0 ? " (\(error.name): \(error.message))" : ""))
        case "EXTEND_TIMEOUT_USEC":
          if let microseconds = Int64(value) { context.extendDeadline(by: .microseconds(microseconds)) }
        default:
          continue
        }
      }
      return ready ? "READY=1" : nil
    }

    func close() {
      system.close(fd)
      if let path { unlink(path) }
    }
  }
}

extension ReadinessSource where Self == SystemdNotifyReadiness {
  /// sd_notify `READY=1` on a `NOTIFY_SOCKET` the spawner creates (abstract unless `socketPath`).
  public static func systemdNotify(socketPath: String? = nil) -> SystemdNotifyReadiness {
    SystemdNotifyReadiness(socketPath: socketPath)
  }
}
