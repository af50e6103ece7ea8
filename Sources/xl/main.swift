#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CReactor

// No async main: Swift's async main ends in dispatch_main, which on Linux parks the main
// thread in sigsuspend with every signal unblocked, so SIGINT/SIGTERM would kill xl before it
// could clean up. Instead the signals are blocked first (every later thread inherits that),
// the command runs in a detached task, and the main thread takes the signals itself.
Interrupts.block()

Task.detached {
  GlobalSettings.read(for: CommandLine.arguments.dropFirst())
  do {
    switch FastCommandLine(CommandLine.arguments.dropFirst()) {
    case .create(let request)?:
      try await request.execute()
    case .monitor(let domid)?:
      try await Monitor.watch(domid: domid, readyDescriptor: 3)
    case nil:
      var command = try XL.parseAsRoot()
      if let subcommand = command as? any XLSubcommand {
        try await subcommand.execute()
      } else {
        try command.run()
      }
    }
  } catch let status as ExitCode {
    // The message is out already; ArgumentParser's exit(withError:) would first build the
    // usage text of every command, to print none of it.
    end(status.rawValue)
  } catch {
    XL.exit(withError: error)
  }
  end(0)
}

/// Ends xl: output flushed, then `_exit`, without the atexit handlers nobody here needs
/// (0.3 to 0.4 ms of every `xl create`); a sanitized build runs them, as LeakSanitizer checks
/// for leaks there.
func end(_ status: Int32) -> Never {
  fflush(nil)
  if creactor_sanitized() != 0 { exit(status) }
  _exit(status)
}

Interrupts.takeSignals()
