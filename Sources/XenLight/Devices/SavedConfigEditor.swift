/// Edits a domain's saved config (libxl's userdata, `SavedConfig`) when its devices change
/// while it runs, so that a restart — `on_reboot = "restart"` — re-creates it with the
/// devices it has now.
enum SavedConfigEditor {
  /// `text` with the list setting `key` set to `items`: one line appended, since a later
  /// setting of a key wins in xl.cfg (the file's own lines, comments and all, stay as written).
  static func setting(_ key: String, to items: [String], in text: String) -> String {
    var edited = text
    if !edited.isEmpty && !edited.hasSuffix("\n") { edited += "\n" }
    edited += "\(key) = [" + items.map(ConfigValue.quoted).joined(separator: ", ") + "]\n"
    return edited
  }
}
