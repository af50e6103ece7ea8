import ArgumentParser
import XenLight

/// `xl qemu-monitor-command DOMAIN COMMAND`.
struct QemuMonitorCommand: XLSubcommand {
  static let configuration = CommandConfiguration(
    commandName: "qemu-monitor-command", abstract: "Run a QEMU human monitor command (\"info status\") and print its output.")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The monitor command, one argument.") var command: String

  func execute() async throws {
    let output = try await Toolstack.forXL().run(domain) { control, target throws(XenLightError) in
      try await control.monitorCommand(command, on: target)
    }
    // HMP ends its lines with CR LF.
    let lines = output.split(separator: "\r\n", omittingEmptySubsequences: false).joined(separator: "\n")
    Terminal.output(lines.hasSuffix("\n") ? lines : lines + "\n")
  }
}
