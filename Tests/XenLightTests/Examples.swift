/// The project's example configs (examples/ at the package root), found from this file's path.
enum Examples {
  static var directory: String {
    let file = #filePath
    // …/Tests/XenLightTests/Examples.swift → …/examples
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/") + "/examples"
  }

  static func path(_ name: String) -> String { directory + "/" + name }
}
