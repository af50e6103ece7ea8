import ArgumentParser

// Before any thread exists, so that every thread inherits it: SIGINT and SIGTERM are taken
// by one waiting thread (Interrupts), which cancels the work in progress for a clean stop.
Interrupts.blockInAllThreads()

do {
  var command = try XL.parseAsRoot()
  if let subcommand = command as? any XLSubcommand {
    try await subcommand.execute()
  } else {
    try command.run()
  }
} catch {
  XL.exit(withError: error)
}
