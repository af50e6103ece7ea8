import ArgumentParser
import XenStore

/// `xenstore list [-p] key...`: the children's names, one per line.
struct List: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print the names of keys' children.")

  @Flag(name: .shortAndLong, help: "Print each child's whole path.")
  var prefix = false

  @OptionGroup var common: CommonOptions

  @Argument(help: "The keys to list.")
  var keys: [String] = []

  func validate() throws {
    if keys.isEmpty { throw ValidationError("Missing key.") }
  }

  func run() async throws {
    try await Session.run(inTransaction: true) { store, output in
      for key in keys {
        guard let names = try? await store.directory(key) else {
          Terminal.warn("could not list path \(key)")
          return 1
        }
        // 4.17 prints `//name` for the root: no special case for "/".
        for name in names {
          output += Array(((prefix ? key + "/" : "") + name + "\n").utf8)
        }
      }
      return 0
    }
  }
}
