import ArgumentParser

/// `xl`: create, destroy and list domains, after Xen's xl.
struct XL: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "xl",
    abstract: "Create, destroy and list domains whose device model is QEMU.",
    discussion: """
      xenstore is found as libxenstore finds it: $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, \
      else /var/run/xenstored/socket. When nobody answers there, `xl create` starts the \
      xenstored next to xl on that path (and says so once).

      QMP sockets go to $XEN_RUN_DIR (default /var/run/xen), device-model logs to \
      $XEN_LOG_DIR (default /var/log/xen), falling back to per-user directories.

      Exit codes:
        0    success
        1    the configuration or a file is invalid
        2    xenstore could not be reached, started or used
        3    the device model did not start (exec error, exit, signal, protocol)
        4    a domain with that name already exists
        9    the device model did not confirm within the timeout
        64   the command line is invalid
        130  interrupted (SIGINT or SIGTERM); nothing was left behind
      """,
    subcommands: [Create.self, Destroy.self, List.self])
}

/// A subcommand's work, called by main (ArgumentParser's async `run` is not reachable
/// through an existential without `@main`, which would run before signals are blocked).
protocol XLSubcommand: ParsableCommand {
  func execute() async throws
}
