/// What a domain may do with a node: `XS_PERM_READ` and `XS_PERM_WRITE`.
public struct Access: OptionSet, Hashable, Sendable, CustomStringConvertible {
  public let rawValue: UInt8
  public init(rawValue: UInt8) { self.rawValue = rawValue }

  public static let read = Access(rawValue: 1)
  public static let write = Access(rawValue: 2)
  /// `n`: neither.
  public static let none: Access = []
  /// `b`: both.
  public static let both: Access = [.read, .write]

  /// The wire letter: `r`, `w`, `b` or `n`.
  public var letter: Character {
    switch (contains(.read), contains(.write)) {
    case (true, true): "b"
    case (true, false): "r"
    case (false, true): "w"
    case (false, false): "n"
    }
  }

  /// Parses a wire letter.
  public init?(letter: UInt8) {
    switch letter {
    case UInt8(ascii: "r"): self = .read
    case UInt8(ascii: "w"): self = .write
    case UInt8(ascii: "b"): self = .both
    case UInt8(ascii: "n"): self = .none
    default: return nil
    }
  }

  public var description: String { String(letter) }
}

/// One entry of a node's access list: a domain and what it may do (`struct xs_permissions`).
public struct Permission: Hashable, Sendable, CustomStringConvertible {
  public var domain: UInt32
  public var access: Access

  public init(domain: UInt32, access: Access) {
    self.domain = domain
    self.access = access
  }

  /// Parses `r5`, `w0`, `b12`, `n3` (the domid as C's `strtol(…, 0)` reads it: decimal,
  /// `0x` hex or leading-`0` octal).
  public init?(_ text: some Collection<UInt8>) {
    guard let first = text.first, let access = Access(letter: first) else { return nil }
    guard let domid = Self.parseDomid(text.dropFirst()) else { return nil }
    self.init(domain: domid, access: access)
  }

  /// `r5`.
  public var description: String { "\(access.letter)\(domain)" }

  private static func parseDomid(_ digits: some Collection<UInt8>) -> UInt32? {
    var text = Substring(String(decoding: digits, as: UTF8.self))
    var negative = false
    if text.first == "-" || text.first == "+" { negative = text.first == "-"; text = text.dropFirst() }
    var radix = 10
    if text.hasPrefix("0x") || text.hasPrefix("0X") { radix = 16; text = text.dropFirst(2) }
    else if text.count > 1 && text.hasPrefix("0") { radix = 8; text = text.dropFirst() }
    guard !text.isEmpty, let value = Int64(text, radix: radix) else { return nil }
    return UInt32(truncatingIfNeeded: negative ? -value : value)
  }
}

/// A node's access list. The first entry names the owner (who may do anything) and the
/// access of every domain not listed; later entries grant listed domains their own access.
public struct Permissions: Hashable, Sendable, CustomStringConvertible {
  /// At least one entry; `entries[0]` is owner + default.
  public private(set) var entries: [Permission]

  /// Owner `owner`, everyone else `defaultAccess`, plus `grants`.
  public init(owner: UInt32, defaultAccess: Access = .none, grants: [Permission] = []) {
    entries = [Permission(domain: owner, access: defaultAccess)] + grants
  }

  /// An access list from entries; nil if empty.
  public init?(_ entries: [Permission]) {
    guard !entries.isEmpty else { return nil }
    self.entries = entries
  }

  /// Parses the wire strings (`["n0", "r5"]`); nil if any is malformed or there are none.
  public init?(strings: [some Collection<UInt8>]) {
    var entries: [Permission] = []
    entries.reserveCapacity(strings.count)
    for s in strings {
      guard let p = Permission(s) else { return nil }
      entries.append(p)
    }
    self.init(entries)
  }

  public var owner: UInt32 {
    get { entries[0].domain }
    set { entries[0].domain = newValue }
  }

  public var defaultAccess: Access { entries[0].access }

  /// What `domain` (also acting for `target`, as a device-model stub domain does) may do,
  /// for an unprivileged domain: owner → everything; else the first matching grant; else
  /// the default (C xenstored's `perm_for_conn`).
  public func access(for domain: UInt32, target: UInt32? = nil) -> Access {
    if entries[0].domain == domain || entries[0].domain == target { return .both }
    for p in entries.dropFirst() where p.domain == domain || p.domain == target {
      return p.access
    }
    return entries[0].access
  }

  /// Whether `domain` (or its `target`) owns the node.
  public func isOwner(_ domain: UInt32, target: UInt32? = nil) -> Bool {
    entries[0].domain == domain || entries[0].domain == target
  }

  /// The GET_PERMS payload: each entry followed by NUL.
  public var wire: [UInt8] {
    var out: [UInt8] = []
    for p in entries { out.append(contentsOf: p.description.utf8); out.append(0) }
    return out
  }

  /// `n0,r5`.
  public var description: String { entries.map(\.description).joined(separator: ",") }
}
