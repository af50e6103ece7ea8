#if canImport(Glibc)
import Glibc
#endif

/// A process's nice value: field 19 of /proc/<pid>/stat (nil if it is gone).
public func niceValue(_ pid: Int32) -> Int? {
  let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
  guard fd >= 0 else { return nil }
  defer { close(fd) }
  var buffer = [UInt8](repeating: 0, count: 4096)
  let n = read(fd, &buffer, buffer.count)
  guard n > 0 else { return nil }
  let text = String(decoding: buffer[..<n], as: UTF8.self)
  guard let paren = text.lastIndex(of: ")") else { return nil }
  let fields = text[text.index(after: paren)...].split(separator: " ")
  return fields.count > 16 ? Int(fields[16]) : nil
}
