import ArgumentParser

// No async main: Swift's async main ends in dispatch_main, which on Linux parks the main
// thread in sigsuspend with every signal unblocked, so SIGINT/SIGTERM would kill xl before it
// could clean up. Instead the signals are blocked first (every later thread inherits that),
// the command runs in a detached task, and the main thread takes the signals itself.
Interrupts.block()

Task.detached {
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
  XL.exit()
}

Interrupts.takeSignals()
