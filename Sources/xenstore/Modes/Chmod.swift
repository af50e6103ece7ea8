import ArgumentParser
import XenStore

/// `xenstore chmod [-u] [-r] key mode...`: sets a key's permissions (`n`, `r`, `w` or `b`
/// followed by a domid; the first is the owner and everyone's default), with `-u` also on
/// every ancestor, with `-r` on everything below.
struct Chmod: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Set the permissions of a key.")

  @Flag(name: .shortAndLong, help: "Apply the permissions to the key's ancestors too.")
  var upto = false

  @Flag(name: .shortAndLong, help: "Apply the permissions to everything below the key too.")
  var recurse = false

  @OptionGroup var common: CommonOptions

  @Argument(help: "The key.")
  var key: String

  @Argument(help: "Permissions: n|r|w|b followed by a domid, owner first.")
  var modes: [String] = []

  func run() async throws {
    try await Session.run(inTransaction: true) { store, _ in
      let permissions = try Self.parse(modes, for: key)
      try await apply(permissions, to: key, upto: upto, recurse: recurse, store)
      return 0
    }
  }

  /// The modes as xenstore-utils reads them: the letter, then `atoi` of the rest.
  static func parse(_ modes: [String], for key: String) throws -> Permissions {
    var entries: [Permission] = []
    for mode in modes {
      let bytes = Array(mode.utf8)
      let access: Access
      switch bytes.first {
      case UInt8(ascii: "n"): access = .none
      case UInt8(ascii: "r"): access = .read
      case UInt8(ascii: "w"): access = .write
      case UInt8(ascii: "b"): access = .both
      default:
        let letter = bytes.first.map { String(decoding: [$0], as: UTF8.self) } ?? "\u{0}"
        throw ToolExit(1, "Invalid permission specification: '\(letter)'")
      }
      entries.append(Permission(domain: UInt32(bitPattern: atoi(bytes.dropFirst())), access: access))
    }
    // No modes: the daemon refuses a SET_PERMS without permissions (EINVAL), as here.
    guard let permissions = Permissions(entries) else {
      throw ToolExit(1, "Error occurred setting permissions on '\(key)': Invalid argument")
    }
    return permissions
  }

  /// `do_chmod`: the key, then (`upto`) each ancestor by cutting at the last `/` until the
  /// path is empty, then (`recurse`) each child as `<path>/<name>`, cut to 255 bytes.
  private func apply(_ permissions: Permissions, to path: String, upto: Bool, recurse: Bool,
                     _ store: any XenStoreOperations) async throws {
    if path.isEmpty { return }
    do {
      try await store.setPermissions(path, permissions)
    } catch {
      throw ToolExit.failure("Error occurred setting permissions on '\(path)'", error)
    }
    if upto {
      guard let slash = path.lastIndex(of: "/") else {
        throw ToolExit(1, "Unable to locate path separator '/' in '\(path)'")
      }
      try await apply(permissions, to: String(path[..<slash]), upto: true, recurse: false, store)
    }
    if recurse, let children = try? await store.directory(path) {
      for child in children {
        let childPath = String(decoding: Array("\(path)/\(child)".utf8.prefix(255)), as: UTF8.self)
        try await apply(permissions, to: childPath, upto: false, recurse: true, store)
      }
    }
  }
}

/// C's `atoi`: optional white space and sign, then decimal digits up to the first other
/// character; out of range saturates as `strtol` does before the cast to `int`.
func atoi(_ text: some Collection<UInt8>) -> Int32 {
  var rest = text.drop { [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d].contains($0) }
  var negative = false
  if let sign = rest.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
    negative = sign == UInt8(ascii: "-")
    rest = rest.dropFirst()
  }
  var value: Int64 = 0
  for c in rest {
    guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) else { break }
    let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
    let (sum, overflow2) = times.addingReportingOverflow(Int64(c - UInt8(ascii: "0")))
    if overflow1 || overflow2 { value = negative ? Int64.min : Int64.max; negative = false; break }
    value = sum
  }
  return Int32(truncatingIfNeeded: negative ? -value : value)
}
