#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

// Exit codes follow xenstore-utils: 0 success, 1 for a failed request and for usage errors
// (ArgumentParser's default for those would be 64).
let arguments = XenstoreTool.arguments(invokedAs: programName, Array(CommandLine.arguments.dropFirst()))
do {
  var command = try XenstoreTool.parseAsRoot(arguments)
  if var asyncCommand = command as? AsyncParsableCommand {
    try await asyncCommand.runAsynchronously()
  } else {
    try command.run()
  }
  exit(0)
} catch let toolExit as ToolExit {
  if let message = toolExit.message { Terminal.warn(message) }
  exit(toolExit.status)
} catch {
  if XenstoreTool.exitCode(for: error) == .success { XenstoreTool.exit(withError: error) }
  Terminal.write(Array((XenstoreTool.fullMessage(for: error) + "\n").utf8), to: 2)
  exit(1)
}

extension AsyncParsableCommand {
  /// The async `run()`: called on an existential from top-level code, `run()` would resolve to
  /// the synchronous requirement.
  mutating func runAsynchronously() async throws { try await run() }
}
