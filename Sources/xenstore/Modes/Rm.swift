import ArgumentParser
import XenStore

/// `xenstore rm [-t] key...`: removes the keys and what lies below them; with `-t` also each
/// parent left with an empty value and no children, up the tree.
struct Rm: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Remove keys and everything below them.")

  @Flag(name: .shortAndLong, help: "Also remove parents left empty (no value, no children).")
  var tidy = false

  @OptionGroup var common: CommonOptions

  @Argument(help: "The keys to remove.")
  var keys: [String] = []

  func validate() throws {
    if keys.isEmpty { throw ValidationError("Missing key.") }
  }

  func run() async throws {
    try await Session.run(inTransaction: true) { store, _ in
      for key in keys {
        var path = key
        while true {
          do {
            try await store.rm(path)
          } catch {
            Terminal.warn("could not remove path \(path)")
            return 1
          }
          guard tidy, let slash = path.lastIndex(of: "/") else { break }
          let parent = String(path[..<slash])
          guard let value = try? await store.readBytes(parent), value.isEmpty,
                let children = try? await store.directory(parent), children.isEmpty else { break }
          path = parent
        }
      }
      return 0
    }
  }
}
