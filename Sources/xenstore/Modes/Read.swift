import ArgumentParser
import XenStore

/// `xenstore read [-p] [-R] key...`: each value, escaped, one per line; several keys are read
/// in one transaction.
struct Read: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print the values of keys.")

  @Flag(name: .shortAndLong, help: "Print each key and ': ' before its value.")
  var prefix = false

  @Flag(name: [.customShort("R"), .long], help: "Print values as they are: no escaping, no newline.")
  var raw = false

  @OptionGroup var common: CommonOptions

  @Argument(help: "The keys to read.")
  var keys: [String] = []

  func validate() throws {
    if keys.isEmpty { throw ValidationError("Missing key.") }
  }

  func run() async throws {
    try await Session.run(inTransaction: keys.count > 1) { store, output in
      for key in keys {
        guard let value = try? await store.readBytes(key) else {
          Terminal.warn("couldn't read path \(key)")
          return 1
        }
        if prefix { output += Array("\(key): ".utf8) }
        output += raw ? value : ValueEscaping.escape(value) + [UInt8(ascii: "\n")]
      }
      return 0
    }
  }
}
