#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Spawn
import XenLight

/// `xl restore [-p] [-e] [-d] [-V] [-c] [CONFIG] FILE`.
struct Restore: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Bring back a domain saved with xl save.",
    discussion: """
      The domain comes back under its name and uuid with a new domid, its devices, console \
      and monitor, confined again if it was, and running unless -p. CONFIG replaces the \
      config stored in the file; it must describe the same machine (memory, vCPUs, disks, \
      NICs, serial ports). A domain of that name already running: refused (exit 4), nothing \
      touched. A file that is not an xl save file, was cut short, or that the device model \
      refuses: exit 1, nothing left behind.
      """)

  @Flag(name: .customShort("p"), help: "Leave the domain paused.")
  var paused = false

  @Flag(name: .customShort("e"), help: "Start no domain monitor.")
  var noMonitor = false

  @Flag(name: .customShort("d"), help: "Print each step (debug).")
  var debug = false

  @Flag(name: .customShort("V"), help: "Print where the domain's VNC display listens.")
  var vncViewer = false

  @Flag(name: .customShort("c"), help: "Attach to the console once the domain runs (Ctrl-] leaves).")
  var console = false

  @Argument(help: "[CONFIG] FILE: an optional config to use instead of the file's, then the save file.")
  var arguments: [String] = []

  func validate() throws {
    guard (1...2).contains(arguments.count) else { throw ValidationError("Expected [CONFIG] FILE") }
  }

  func execute() async throws {
    let file = arguments.last!
    let configFile = arguments.count == 2 ? arguments[0] : nil
    let terminal = Terminal(quiet: false, verbose: debug)
    let toolstack = Toolstack.forXL()
    let fd = open(file, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      let e = errno
      throw ExitStatus.fail(XenLightError(.io, "cannot open \(file): \(String(cString: strerror(e)))", errno: e))
    }
    defer { close(fd) }
    let stream = DescriptorStream(fd: fd, source: file, loop: toolstack.spawner.loop)
    var restorer = DomainRestorer(toolstack: toolstack)
    restorer.paused = paused
    let paths = toolstack.paths
    if !noMonitor {
      let connector = toolstack.connector
      restorer.monitor = { domid, uuid, name throws(XenLightError) in
        try await Monitor.start(domid: domid, uuid: uuid, name: name, paths: paths, connector: connector)
      }
    }
    let events = CreateEvents(phase: { phase, detail in terminal.timeline("\(phase.rawValue): \(detail)") })
    let work = Task { () async throws(XenLightError) -> CreatedDomain in
      let preamble = try await DomainRestorer.readPreamble(stream, configFile: configFile)
      let h = preamble.header
      Terminal.error(
        "Loading new save file \(file) (new xl fmt info 0x\(String(h.mandatoryFlags.rawValue, radix: 16))/0x\(String(h.optionalFlags, radix: 16))/\(h.encoded.count - SaveFileHeader.fixedSize))")
      return try await restorer.restore(preamble, from: stream, events: events)
    }
    let result = await Interrupts.handling({ _ in work.cancel() }) { await work.result }
    do {
      let restored = try result.get()
      terminal.note("Domain \(restored.domid) (\(restored.name)) restored from \(file)\(paused ? ", paused" : "")")
      if vncViewer { terminal.note("its display: VNC as its config says (no viewer is started here)") }
      if console {
        guard let tty = restored.consoleTTY else {
          throw XenLightError(.invalidState, "domain \(restored.domid) (\(restored.name)) has no serial console (the config needs serial = \"pty\")")
        }
        try await Console.attach(tty)
      }
    } catch {
      throw ExitStatus.fail(error)
    }
  }
}
