import ArgumentParser
import XenStore

/// `xenstore watch [-n N] key...`: prints the path of each watch event as it comes (the first
/// of each key at once), stopping after N events if given.
struct Watch: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print the paths of changes below keys as they happen.")

  @Option(name: [.customShort("n"), .customLong("number")], parsing: .unconditional,
          help: "Stop after this many events (the first, immediate ones count); -1: never.")
  var number: Int = -1

  @OptionGroup var common: CommonOptions

  @Argument(help: "The keys to watch.")
  var keys: [String] = []

  func validate() throws {
    if keys.isEmpty { throw ValidationError("Missing key.") }
  }

  func run() async throws {
    let client = try await Session.connect()
    let watch: XenStoreWatch
    do {
      watch = try await client.watch(keys)
    } catch {
      // The keys are set in order; the error names the one refused.
      let refused = keys.first { error.message.hasPrefix("watch \($0): ") } ?? keys[0]
      throw ToolExit(1, "Unable to add watch on \(refused)\n")
    }
    var events = watch.makeAsyncIterator()
    var count = 0
    while number == -1 || count < number {
      do {
        guard let event = try await events.next() else { break }
        Terminal.write(Array((event.path + "\n").utf8))
      } catch {
        throw ToolExit(1, "\(error)")
      }
      count += 1
    }
    Session.finish([], status: 0)
  }
}
