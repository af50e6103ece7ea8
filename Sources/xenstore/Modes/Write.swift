import ArgumentParser
import XenStore

/// `xenstore write [-R] key value...`: values are unescaped unless `-R`; several pairs are
/// written in one transaction.
struct Write: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Write values to keys, creating them and their parents.")

  @Flag(name: [.customShort("R"), .long], help: "Write values as they are, without unescaping.")
  var raw = false

  @OptionGroup var common: CommonOptions

  @Argument(help: "Pairs of key and value.")
  var pairs: [String] = []

  func validate() throws {
    if pairs.isEmpty || pairs.count % 2 == 1 { throw ValidationError("Expected pairs of key and value.") }
  }

  func run() async throws {
    try await Session.run(inTransaction: pairs.count > 2) { store, _ in
      for index in stride(from: 0, to: pairs.count, by: 2) {
        let (key, text) = (pairs[index], pairs[index + 1])
        let value = raw ? Array(text.utf8) : ValueEscaping.unescape(Array(text.utf8))
        do {
          try await store.write(key, bytes: value)
        } catch {
          Terminal.warn("could not write path \(key)")
          return 1
        }
      }
      return 0
    }
  }
}
