#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import XenLight

/// `xl vncviewer [--autopass] DOMAIN`: the domain's display, found with QMP `query-vnc`.
struct VNCViewer: XLSubcommand {
  static let configuration = CommandConfiguration(
    commandName: "vncviewer", abstract: "Attach a VNC viewer to a domain's display.",
    discussion: "xl becomes the viewer: $VNCVIEWER, else vncviewer in $PATH, with HOST:DISPLAY as libxl gives it.")

  @Flag(name: [.customShort("a"), .customLong("autopass")], help: "Give the viewer the display's password on its stdin (-autopass).")
  var autopass = false

  @Argument(help: "The domain's name or id.") var domain: String

  func execute() async throws { try await Self.run(domain: domain, autopass: autopass) }

  /// Finds the display and replaces xl with the viewer; returns only by throwing.
  static func run(domain: String, autopass: Bool) async throws {
    let toolstack = Toolstack.forXL()
    let paths = toolstack.paths
    let display = try await toolstack.run(domain) { control, target throws(XenLightError) in
      try await control.vncDisplay(target, paths: paths)
    }
    let viewer = getenv("VNCVIEWER").map { String(cString: $0) } ?? "vncviewer"
    var arguments = [viewer]
    if autopass {
      arguments.append("-autopass")
      var ends: [Int32] = [0, 0]
      guard pipe(&ends) == 0 else { throw ExitStatus.fail(XenLightError(.io, "pipe: \(String(cString: strerror(errno)))")) }
      var password = (display.password ?? "") + "\n"
      password.withUTF8 { _ = write(ends[1], $0.baseAddress, $0.count) }
      close(ends[1])
      dup2(ends[0], 0)
      close(ends[0])
    }
    arguments.append("\(display.host):\(display.number)")
    fflush(nil)
    let argv = arguments.map { strdup($0) } + [nil]
    execvp(viewer, argv)
    let e = errno
    throw ExitStatus.fail(XenLightError(.io, "cannot run \(viewer): \(String(cString: strerror(e)))", errno: e))
  }
}
