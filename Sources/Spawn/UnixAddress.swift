#if canImport(Glibc)
import Glibc
#endif

/// A `sockaddr_un` for a path, or for an abstract name when it starts with "@".
struct UnixAddress {
  private var storage = sockaddr_un()
  private(set) var length: socklen_t = 0

  /// nil if the path does not fit `sun_path`.
  init?(_ path: String) {
    var bytes = Array(path.utf8)
    let abstract = bytes.first == UInt8(ascii: "@")
    if abstract { bytes[0] = 0 }
    let capacity = MemoryLayout.size(ofValue: storage.sun_path)
    guard !bytes.isEmpty, bytes.count + (abstract ? 0 : 1) <= capacity, !bytes.dropFirst().contains(0) else { return nil }
    storage.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &storage.sun_path) { $0.copyBytes(from: bytes) }
    // An abstract name is exactly its bytes; a path is NUL-terminated.
    length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
  }

  func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    withUnsafePointer(to: storage) { pointer in
      pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
    }
  }
}
