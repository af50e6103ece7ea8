/// Xenstore path rules, as Xen 4.17's C xenstored applies them (`canonicalize`,
/// `is_valid_nodename`): pure functions, shared by the daemon and the client.
///
/// - An absolute path starts with `/`; anything else (except a special `@name`) is relative
///   to the connection's domain home, `/local/domain/<domid>`.
/// - Allowed characters: `[A-Za-z0-9-/_@]`; no `//`; no trailing `/` except the root itself.
/// - Length: at most `relativeMax` bytes, not counting a leading `/local/domain/<domid>/`.
public enum XenStorePath {
  /// `XENSTORE_ABS_PATH_MAX`: the longest absolute path a client may send.
  public static let absoluteMax = 3072
  /// `XENSTORE_REL_PATH_MAX`: the longest path below a domain's home (or anywhere else).
  public static let relativeMax = 2048

  /// `/local/domain/<domid>`, the home of a domain and the base of its relative paths.
  public static func domainPath(_ domid: UInt32) -> String { "/local/domain/\(domid)" }

  /// True for `@introduceDomain`-style special watch names.
  public static func isSpecial(_ path: String) -> Bool { path.utf8.first == UInt8(ascii: "@") }

  /// True if `path` is relative: neither absolute nor special.
  public static func isRelative(_ path: String) -> Bool {
    guard let first = path.utf8.first else { return true }
    return first != UInt8(ascii: "/") && first != UInt8(ascii: "@")
  }

  /// Resolves a relative path against `/local/domain/<domid>`; absolute and special paths
  /// are returned unchanged (C xenstored's `canonicalize`).
  public static func canonicalize(_ path: String, domain domid: UInt32) -> String {
    isRelative(path) ? domainPath(domid) + "/" + path : path
  }

  /// Whether `path` (already canonical) names a node: C xenstored's `is_valid_nodename`.
  public static func isValidNode(_ path: String) -> Bool {
    let bytes = path.utf8
    guard bytes.first == UInt8(ascii: "/") else { return false }
    guard bytes.count - homePrefixLength(path) <= relativeMax else { return false }
    var previous: UInt8 = 0
    for b in bytes {
      guard isAllowed(b) else { return false }
      if b == UInt8(ascii: "/") && previous == UInt8(ascii: "/") { return false }
      previous = b
    }
    return previous != UInt8(ascii: "/") || bytes.count == 1
  }

  /// Whether `path` is a valid watch path: a valid node path, or any special `@name`
  /// no longer than `relativeMax`.
  public static func isValidWatch(_ path: String) -> Bool {
    isSpecial(path) ? path.utf8.count <= relativeMax : isValidNode(path)
  }

  /// The allowed characters `[A-Za-z0-9-/_@]`.
  public static func isAllowed(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
         UInt8(ascii: "0")...UInt8(ascii: "9"),
         UInt8(ascii: "-"), UInt8(ascii: "/"), UInt8(ascii: "_"), UInt8(ascii: "@"):
      return true
    default:
      return false
    }
  }

  /// The parent of a canonical node path (`/` for a top-level node and for `/` itself).
  public static func parent(of path: String) -> String {
    guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.utf8.startIndex else {
      return "/"
    }
    return String(path[..<slash])
  }

  /// The last component of a canonical node path (empty for `/`).
  public static func basename(of path: String) -> String {
    guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return path }
    return String(path[path.utf8.index(after: slash)...])
  }

  /// `base/name`, without doubling the root's slash.
  public static func child(_ name: String, of base: String) -> String {
    base == "/" ? "/" + name : base + "/" + name
  }

  /// True if `path` is `ancestor` or lies below it (every path lies below `/`).
  public static func isDescendant(_ path: String, of ancestor: String) -> Bool {
    if ancestor == "/" { return isSpecial(path) == false }
    guard path.hasPrefix(ancestor) else { return false }
    let rest = path.utf8.dropFirst(ancestor.utf8.count)
    return rest.isEmpty || rest.first == UInt8(ascii: "/")
  }

  /// How many components `path` lies below `ancestor` (0 for the path itself).
  public static func depth(of path: String, below ancestor: String) -> Int {
    let rest = path.utf8.dropFirst(ancestor == "/" ? 0 : ancestor.utf8.count)
    return rest.lazy.filter { $0 == UInt8(ascii: "/") }.count
  }

  /// Length of a leading `/local/domain/<domid>/` (C's `sscanf("/local/domain/%5u/%n")`),
  /// which does not count toward `relativeMax`; 0 if there is none.
  static func homePrefixLength(_ path: String) -> Int {
    let prefix = "/local/domain/".utf8
    let bytes = Array(path.utf8.prefix(prefix.count + 6))
    guard bytes.starts(with: prefix) else { return 0 }
    var i = prefix.count
    while i < bytes.count, i - prefix.count < 5, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
    guard i > prefix.count, i < bytes.count, bytes[i] == UInt8(ascii: "/") else { return 0 }
    return i + 1
  }
}
