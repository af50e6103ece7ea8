import ArgumentParser

/// `xenstore`: xenstore-utils' commands in one tool, with their output and exit codes
/// (`xenstore read ...`, or `xenstore-read ...` through a link named so).
struct XenstoreTool: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "xenstore",
    abstract: "Read, write, list, remove, watch and change permissions of xenstore nodes.",
    discussion: """
      The daemon's socket is $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, else \
      /var/run/xenstored/socket, as for Xen's xenstore-utils. Values are shown and read with \
      C-style escapes (\\t \\n \\\\ \\xNN \\NNN) unless -R is given.
      """,
    subcommands: [Read.self, Write.self, Ls.self, List.self, Rm.self, Exists.self, Watch.self, Chmod.self])

  func run() async throws {
    throw ValidationError("Missing mode: one of read, write, ls, list, rm, exists, watch, chmod.")
  }

  /// The arguments to parse: `xenstore-<mode> args` (a link to this tool named after a
  /// mode, as Debian installs xenstore-utils) reads as `xenstore <mode> args`, and getopt's
  /// attached option value `-n5` as `-n 5`.
  static func arguments(invokedAs name: String, _ arguments: [String]) -> [String] {
    var result: [String] = []
    var optionsEnded = false
    for argument in arguments {
      if argument == "--" { optionsEnded = true }
      if !optionsEnded, argument.hasPrefix("-n"), argument.count > 2 {
        result += ["-n", String(argument.dropFirst(2))]
      } else {
        result.append(argument)
      }
    }
    return name.hasPrefix("xenstore-") ? [String(name.dropFirst("xenstore-".count))] + result : result
  }
}

/// Options every mode accepts.
struct CommonOptions: ParsableArguments {
  /// xenstore-utils' `-s` (socket only); it has no effect there either.
  @Flag(name: .customShort("s"), help: .hidden)
  var socketOnly = false
}
