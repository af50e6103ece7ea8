#if canImport(Glibc)
import Glibc
#endif

/// Changes to xl's saved config of a running domain (libxl's userdata,
/// `ToolstackPaths.savedConfig`), so that a restart — and a later save/restore — re-creates
/// the domain with the devices, memory and vCPUs it has now, as libxl updates its stored
/// config on `block-attach`, `network-attach`, `mem-set`…
///
/// The edit appends one setting line at the end: in xl.cfg a later `KEY = VALUE` replaces
/// every earlier `=` and `+=` of that key, so the user's text above stays as they wrote it
/// (comments and all). A line this editor wrote before for the same key is dropped first, so
/// the file does not grow with each change.
public enum SavedConfigEditor {
  /// Marks the lines this editor writes.
  static let marker = "# set while running by xl"

  /// `text` with `key` set to the list `items` (each a string): `disk = [ "…", "…" ]`.
  public static func replacingList(_ key: String, with items: [String], in text: String) -> String {
    replacing(key, with: .list(items.map { .string($0) }), in: text)
  }

  /// `text` with `key` set to `value`.
  public static func replacing(_ key: String, with value: ConfigValue, in text: String) -> String {
    let ownLine = { (line: Substring) in
      line.hasSuffix(marker) && (line.hasPrefix(key + " =") || line.hasPrefix(key + "="))
    }
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).filter { !ownLine($0) }
    while lines.last?.isEmpty == true { lines.removeLast() }
    lines.append("\(key) = \(value)  \(marker)")
    return lines.joined(separator: "\n") + "\n"
  }

  /// Applies `edit` to the saved config at `path` (written whole, then renamed over it); a
  /// domain created without one (an embedder's) has none to edit.
  public static func update(_ path: String, _ edit: (String) throws(XenLightError) -> String) throws(XenLightError) {
    guard access(path, F_OK) == 0 else { return }
    try FileIO.writeText(try edit(try FileIO.readText(path)), to: path)
  }
}
