/// The layout of `xenstore ls` lines, as xenstore-utils' `do_ls` prints them: the indented
/// name (or, flat, the whole path), ` = "value"` escaped and cut to the width with `\...`,
/// and with `-p` a dotted leader to column 60 and the permissions in parentheses.
///
/// The C code's width arithmetic mixes `int` and `size_t`; it is reproduced exactly, so a
/// negative remaining width means "no limit" as it does there.
struct ListingLayout {
  /// `max_width`: the terminal's columns minus 2, else 80; huge when flat.
  var maxWidth: Int32 = 80
  /// `desired_width`: where the permissions leader ends; 0 when flat.
  var desiredWidth: Int32 = 60
  var showWholePath = false
  var showPermissions = false

  /// `" = \"...\""`, whose length the C code reserves for the value.
  private static let tagLength = 8

  /// The layout for `-f` (flat: whole paths, no width limit, no leader).
  static func flat(showPermissions: Bool) -> ListingLayout {
    ListingLayout(maxWidth: Int32.max / 2, desiredWidth: 0, showWholePath: true, showPermissions: showPermissions)
  }

  /// The line of one node up to (not including) its permissions and newline. `value` is nil
  /// when it could not be read, which prints `:` and ends the line early, as the C code does.
  func entry(name: [UInt8], path: [UInt8], depth: Int, value: [UInt8]?) -> [UInt8] {
    var out: [UInt8] = []
    var width = 0
    if showWholePath {
      out += path
    } else {
      out += [UInt8](repeating: UInt8(ascii: " "), count: depth)
      width = depth
      let shown = limited(name, precision: remaining(after: width))
      out += shown
      width += shown.count
    }
    guard let value else {
      out += Array(":\n".utf8)
      return out
    }
    let escaped = ValueEscaping.escape(value)
    // `max_width < linewid + len + TAG_LEN`, compared as size_t (len is the raw length).
    let limit = UInt64(bitPattern: Int64(maxWidth))
    if limit < UInt64(width) + UInt64(value.count) + UInt64(Self.tagLength) {
      out += Array(" = \"".utf8) + limited(escaped, precision: remaining(after: width)) + Array("\\...\"".utf8)
      return out
    }
    let shown = Array(" = \"".utf8) + escaped + Array("\"".utf8)
    out += shown
    width += shown.count
    if showPermissions {
      out.append(UInt8(ascii: " "))
      width += 1
      while width < Int(min(desiredWidth, maxWidth)) {
        out.append(width & 1 == 1 ? UInt8(ascii: ".") : UInt8(ascii: " "))
        width += 1
      }
    }
    return out
  }

  /// `"  (n0,r5)"`.
  func permissions(_ entries: [String]) -> [UInt8] {
    Array("  (\(entries.joined(separator: ",")))".utf8)
  }

  /// `(int)(max_width - TAG_LEN - linewid)`: computed in size_t, truncated to int.
  private func remaining(after width: Int) -> Int32 {
    Int32(truncatingIfNeeded: Int64(maxWidth) - Int64(Self.tagLength) - Int64(width))
  }

  /// `printf("%.*s")`: a negative precision prints everything.
  private func limited(_ text: [UInt8], precision: Int32) -> [UInt8] {
    precision < 0 ? text : Array(text.prefix(Int(precision)))
  }
}
