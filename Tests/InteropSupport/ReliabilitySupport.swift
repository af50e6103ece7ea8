#if canImport(Glibc)
import Glibc
#endif
import TestSupport
import XenStore

// Shared by the reliability suites (protocol fuzzing, load): the daemon as a process, blocking
// clients on their own threads, a seeded random source, and the daemon's memory.

/// The built `xenstored` executable, started for one suite in a fresh directory and confirmed
/// by its readiness newline; its pid is kept so the suites can check it is alive and read its
/// memory.
package final class DaemonProcess: Sendable {
  package let directory: TemporaryDirectory
  package let socketPath: String
  package let pid: pid_t

  /// `durable`: with a state directory of its own (`--state-dir`).
  package init(durable: Bool = false) throws {
    directory = TemporaryDirectory("xsr")
    socketPath = directory.appending("socket")
    let state = durable ? ["--state-dir", directory.appending("state")] : []
    pid = try spawnConfirmed(BuiltProducts.path("xenstored"), ["-N", "--socket", socketPath, "--ready-fd", "3"] + state,
                             log: directory.appending("stderr"))
  }

  /// The socket of introduced domain `domid`.
  package func domainSocketPath(_ domid: UInt32) -> String { socketPath + ".d/domain-\(domid)" }

  /// True while the process has not exited.
  package var isAlive: Bool {
    var status: Int32 = 0
    return waitpid(pid, &status, WNOHANG) == 0
  }

  /// Resident memory in KiB (`VmRSS` of /proc/<pid>/status).
  package var residentKiB: Int {
    let status = (try? readFile("/proc/\(pid)/status")) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
    return line.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") } ?? 0
  }

  /// Stops the daemon (SIGTERM, then SIGKILL after 10 s) and removes its directory.
  package func stop() {
    kill(pid, SIGTERM)
    reap(pid, seconds: 10)
    directory.remove()
  }

  /// What the daemon wrote to stderr.
  package var log: String { (try? readFile(directory.appending("stderr"))) ?? "" }
}

/// A blocking xenstore client for one thread: requests with ids of its own, replies matched
/// by id, watch events queued apart. Every wait has a deadline (`timeout` seconds), so a
/// daemon that stops answering fails the suite instead of hanging it.
package final class StressClient {
  package let fd: Int32
  private var decoder = MessageDecoder()
  private var buffer = [UInt8](repeating: 0, count: 1 << 16)
  package private(set) var events: [Message] = []
  /// Requests sent through `request`.
  package private(set) var requestCount = 0
  private var nextID: UInt32 = 0

  package init(_ path: String, timeout: Int = 10) throws {
    // The descriptor becomes `self.fd` only once connected: a class whose init throws after
    // all its properties are set runs its deinit, which would close it a second time (and,
    // with other threads opening descriptors, close one of theirs).
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    let rc = UnixAddress.withAddress(path) { connect(fd, $0, $1) }
    guard rc == 0 else {
      let err = errno
      close(fd)
      throw StartupError(description: "connect \(path): \(String(cString: strerror(err)))")
    }
    self.fd = fd
    setTimeout(seconds: timeout)
  }

  deinit { close(fd) }

  package func setTimeout(seconds: Int, microseconds: Int = 0) {
    var t = timeval(tv_sec: seconds, tv_usec: microseconds)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &t, socklen_t(MemoryLayout<timeval>.size))
  }

  /// Sends all of `bytes`; false if the daemon closed the connection.
  @discardableResult
  package func send(_ bytes: [UInt8]) -> Bool {
    var sent = 0
    while sent < bytes.count {
      let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { return false }
      sent += n
    }
    return true
  }

  /// The next message, or nil on close, error or timeout.
  package func receive() -> Message? {
    while true {
      if let m = try? decoder.next() { return m }
      let n = recv(fd, &buffer, buffer.count, 0)
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { return nil }
      decoder.append(buffer[0..<n])
    }
  }

  /// Sends a request and waits for its reply (events meanwhile are queued); nil if the
  /// connection ended or the reply did not come in time.
  package func request(_ type: MessageType, _ payload: [UInt8], tx: UInt32 = 0) -> Message? {
    nextID &+= 1
    requestCount += 1
    let id = nextID
    guard send(Message(type: type, requestID: id, transactionID: tx, payload: payload).encoded()) else { return nil }
    while let m = receive() {
      if m.type == .watchEvent { events.append(m); continue }
      return m.requestID == id ? m : nil
    }
    return nil
  }

  /// The reply as text: an errno name, else the payload with NULs as `|`; "closed" if none.
  package func call(_ type: MessageType, _ strings: String..., tx: UInt32 = 0) -> String {
    text(request(type, Array(strings.map { Array($0.utf8) + [0] }.joined()), tx: tx))
  }

  /// WRITE with a raw value (not NUL-terminated, as on the wire).
  package func write(_ path: String, _ value: String, tx: UInt32 = 0) -> String {
    text(request(.write, Array(path.utf8) + [0] + Array(value.utf8), tx: tx))
  }

  /// READ's value, or nil for an error.
  package func read(_ path: String, tx: UInt32 = 0) -> String? {
    guard let m = request(.read, Array(path.utf8) + [0], tx: tx), m.type == .read else { return nil }
    return String(decoding: m.payload, as: UTF8.self)
  }

  /// Takes the queued events.
  package func takeEvents() -> [Message] {
    defer { events.removeAll() }
    return events
  }

  package func text(_ m: Message?) -> String {
    guard let m else { return "closed" }
    if m.type == .error { return String(decoding: m.payload.dropLast(), as: UTF8.self) }
    return m.payloadDescription
  }

  /// True once the daemon has closed the connection: reads (and discards) until EOF or reset.
  package func isClosedByDaemon() -> Bool {
    while true {
      let n = recv(fd, &buffer, buffer.count, 0)
      if n == 0 { return true }
      if n < 0 { return errno == ECONNRESET || errno == EPIPE }
    }
  }
}

package enum UnixAddress {
  /// Calls `body` with a `sockaddr_un` for `path`.
  package static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8.prefix(107))
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
    return withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
  }
}

/// Runs `body(0..<count)` on `count` threads of their own (blocking sockets belong there, not
/// on Swift's cooperative pool) and returns when all have finished.
package func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
  final class Box: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
  }
  var threads: [pthread_t] = []
  for i in 0..<count {
    let box = Unmanaged.passRetained(Box { body(i) }).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { arg in
      let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
      box.run()
      return nil
    }, box)
    precondition(rc == 0, "pthread_create: \(rc)")
    threads.append(thread)
  }
  for t in threads { pthread_join(t, nil) }
}

/// Seconds since an arbitrary start (CLOCK_MONOTONIC).
package func monotonicSeconds() -> Double {
  var t = timespec()
  clock_gettime(CLOCK_MONOTONIC, &t)
  return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// A seconds setting from the environment (the scripts' long runs), else `fallback`.
package func secondsSetting(_ name: String, default fallback: Double) -> Double {
  getenv(name).flatMap { Double(String(cString: $0)) } ?? fallback
}

/// SplitMix64: small, fast, and reproducible from the seed a failing run prints.
package struct SeededRandom: RandomNumberGenerator {
  private var state: UInt64
  package init(seed: UInt64) { state = seed }
  package mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// The seed of a run: `XS_STRESS_SEED` if set (to replay a failure), else a fresh one.
package func stressSeed() -> UInt64 {
  getenv("XS_STRESS_SEED").flatMap { UInt64(String(cString: $0)) } ?? UInt64.random(in: 1...UInt64.max)
}

/// Counters and failure notes that the threads of a suite share.
///
/// Locked with a pthread mutex rather than `Synchronization.Mutex`: ThreadSanitizer does not
/// see the futex-based `Mutex` of Swift 6.3 on Linux synchronise, and reports races under it.
package final class StressLedger: @unchecked Sendable {
  private let lock: UnsafeMutablePointer<pthread_mutex_t>
  private var storedCounts: [String: Int] = [:]
  private var storedFailures: [String] = []

  package init() {
    lock = .allocate(capacity: 1)
    pthread_mutex_init(lock, nil)
  }

  deinit {
    pthread_mutex_destroy(lock)
    lock.deallocate()
  }

  private func locked<T>(_ body: () -> T) -> T {
    pthread_mutex_lock(lock)
    defer { pthread_mutex_unlock(lock) }
    return body()
  }

  package func add(_ name: String, _ n: Int = 1) { locked { storedCounts[name, default: 0] += n } }
  package func count(_ name: String) -> Int { locked { storedCounts[name] ?? 0 } }
  package var counts: [String: Int] { locked { storedCounts } }

  /// Records a failure (the first 20 are kept word for word).
  package func fail(_ note: String) {
    locked {
      if storedFailures.count < 20 { storedFailures.append(note) }
      storedCounts["failures", default: 0] += 1
    }
  }
  package var failures: [String] { locked { storedFailures } }
}
