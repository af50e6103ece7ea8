import ArgumentParser
import XenStore

/// `xenstore exists key...`: status 0 if every key can be read, else 1, silently.
struct Exists: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Exit 0 if the keys exist, 1 if not.")

  @OptionGroup var common: CommonOptions

  @Argument(help: "The keys to look for.")
  var keys: [String] = []

  func validate() throws {
    if keys.isEmpty { throw ValidationError("Missing key.") }
  }

  func run() async throws {
    try await Session.run(inTransaction: true) { store, _ in
      for key in keys {
        guard (try? await store.readBytes(key)) != nil else { return 1 }
      }
      return 0
    }
  }
}
