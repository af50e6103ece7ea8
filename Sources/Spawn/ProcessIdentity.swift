#if canImport(Glibc)
import Glibc
#endif
import CSpawn

/// What recognises one process later, from any process: pid, start time and boot id.
///
/// A pid alone is reused. Together with the start time (clock ticks after boot,
/// `/proc/<pid>/stat` field 22) and the boot id (`/proc/sys/kernel/random/boot_id`) it names
/// one process only (start times count in clock ticks, 10 ms: two processes would have to
/// get the same pid within one tick to be confused). Its string form, `"<pid>:<start time>:<boot id>"`, is what `xl` keeps in
/// xenstore; `ProcessIdentity(_:)` rebuilds it.
public struct ProcessIdentity: Hashable, Sendable, Codable, LosslessStringConvertible {
  public var pid: Int32
  public var startTime: UInt64
  public var bootID: String

  public init(pid: Int32, startTime: UInt64, bootID: String) {
    self.pid = pid
    self.startTime = startTime
    self.bootID = bootID
  }

  /// The identity of the live process `pid`, read from /proc (ENOENT: no such process).
  public static func of(pid: Int32) throws(SystemErrno) -> ProcessIdentity {
    var startTime: UInt64 = 0
    guard cspawn_read_start_time(pid, &startTime) == 0 else { throw .current }
    return ProcessIdentity(pid: pid, startTime: startTime, bootID: try currentBootID())
  }

  /// This boot's id (`/proc/sys/kernel/random/boot_id`), read once.
  public static func currentBootID() throws(SystemErrno) -> String {
    if let bootID = cachedBootID { return bootID }
    throw .ENOENT
  }

  private static let cachedBootID: String? = {
    let fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 64)
    let n = read(fd, &buffer, buffer.count)
    guard n > 0 else { return nil }
    return String(decoding: buffer[0..<n], as: UTF8.self).trimmingTrailingWhitespace
  }()

  /// `"<pid>:<start time>:<boot id>"`.
  public var description: String { "\(pid):\(startTime):\(bootID)" }

  /// Parses the string form; nil if it is not one.
  public init?(_ description: String) {
    let parts = description.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
    guard parts.count == 3, let pid = Int32(parts[0]), pid > 0, let startTime = UInt64(parts[1]),
      !parts[2].isEmpty, !parts[2].contains(where: { $0.isWhitespace || $0 == ":" })
    else { return nil }
    self.init(pid: pid, startTime: startTime, bootID: String(parts[2]))
  }

  /// Encoded as its string form, one value.
  public init(from decoder: any Decoder) throws {
    let text = try decoder.singleValueContainer().decode(String.self)
    guard let identity = ProcessIdentity(text) else {
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a process identity: \(text)"))
    }
    self = identity
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(description)
  }
}

extension String {
  var trimmingTrailingWhitespace: String {
    var text = Substring(self)
    while let last = text.last, last.isWhitespace { text.removeLast() }
    return String(text)
  }
}
