#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Spawn
import XenLight
import XenStore

/// `xl create FILE [KEY=VALUE...]`.
struct Create: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Create a domain from an xl.cfg file and start its device model.",
    discussion: """
      KEY=VALUE arguments are more config lines, applied after the file: memory=512, \
      'name="other"', 'vif+=["bridge=br1"]'. Strings need quotes, as in the file.

      Where the device model runs is the config key device_model_target: "xen" builds \
      the qemu-xen command line libxl uses on a Xen host (-xen-domid, -machine xenfv); \
      "local" runs the guest in QEMU itself, under KVM when /dev/kvm works, else TCG; \
      "auto" (the default) is xen on a Xen dom0 (/proc/xen/capabilities exists), else local.

      xl waits for the device model to confirm (QMP answers, or the xenstore node \
      /local/domain/0/device-model/<domid>/state reads "running"), then leaves it running. \
      If it does not, xl stops it, removes every record of the domain, and says why.
      """)

  @Flag(name: [.customShort("n"), .customLong("dryrun")], help: "Print the device model command line and the xenstore records; start nothing.")
  var dryRun = false

  @Flag(name: .shortAndLong, help: "Print a timeline of the phases with their times.")
  var verbose = false

  @Flag(name: .shortAndLong, help: "Print nothing on success.")
  var quiet = false

  @Flag(name: .customShort("F"), help: "Stay in the foreground as the domain's monitor; return when the domain is gone.")
  var foreground = false

  @Flag(name: .customShort("e"), help: "Start no domain monitor: nothing applies on_poweroff/on_reboot/on_crash.")
  var noMonitor = false

  @Flag(name: .customShort("c"), help: "Attach to the console once the domain runs (Ctrl-] leaves).")
  var console = false

  @Flag(name: .customShort("p"), help: "Leave the domain paused (no instruction runs until xl unpause).")
  var paused = false

  @Flag(name: [.customShort("V"), .customLong("vncviewer")], help: "Run vncviewer on the domain's display once it runs.")
  var vncViewer = false

  @Flag(name: [.customShort("A"), .customLong("vncviewer-autopass")], help: "With -V: give vncviewer the password on its stdin.")
  var vncAutopass = false

  @Option(name: .long, help: "Seconds to wait for the device model to confirm (default: device_model_start_timeout, else 60).")
  var timeout: Double?

  @Option(name: .long, help: "Seconds xenstored may take over each step (libxenstore waits forever).")
  var xenstoreTimeout: Double = 10

  @Option(name: [.customShort("f"), .customLong("defconfig")], help: "The xl.cfg file (instead of the first argument).")
  var defconfig: String?

  @Argument(help: ArgumentHelp("The xl.cfg file, then more settings: KEY=VALUE or KEY+=VALUE.", valueName: "file-and-settings"))
  var arguments: [String] = []

  /// What was asked, in the form the fast path parses too.
  var request: CreateRequest {
    CreateRequest(
      dryRun: dryRun, verbose: verbose, quiet: quiet, foreground: foreground, noMonitor: noMonitor, console: console, paused: paused,
      vncViewer: vncViewer, vncAutopass: vncAutopass,
      timeout: timeout, xenstoreTimeout: xenstoreTimeout, defconfig: defconfig, arguments: arguments)
  }

  func validate() throws {
    if let problem = request.problem { throw ValidationError(problem) }
  }

  func execute() async throws { try await request.execute() }
}

/// `xl create` as asked: parsed by ArgumentParser (`Create`) or, for the usual command lines,
/// by `FastCommandLine`, which gives the same request without ArgumentParser's start-up cost.
struct CreateRequest: Equatable, Sendable {
  var dryRun = false
  var verbose = false
  var quiet = false
  var foreground = false
  var noMonitor = false
  var console = false
  var paused = false
  var vncViewer = false
  var vncAutopass = false
  var timeout: Double?
  var xenstoreTimeout: Double = 10
  var defconfig: String?
  var arguments: [String] = []

  /// The config file: `-f`, else the first argument.
  private var configFile: String { defconfig ?? arguments.first ?? "" }

  /// The KEY=VALUE arguments.
  private var settings: [String] { defconfig == nil ? Array(arguments.dropFirst()) : arguments }

  /// Why these options cannot run together (nil: they can).
  var problem: String? {
    if defconfig == nil && arguments.isEmpty { return "Missing the config file: xl create FILE [KEY=VALUE...]" }
    if let timeout, !(timeout > 0 && timeout <= 86400) { return "--timeout must be a number of seconds above 0" }
    if quiet && verbose { return "-q and -v contradict each other" }
    if foreground && noMonitor { return "-F and -e contradict each other" }
    if vncViewer && (console || foreground) { return "-V replaces xl with vncviewer: it cannot go with -c or -F" }
    if vncAutopass && !vncViewer { return "-A needs -V" }
    if !(xenstoreTimeout > 0) { return "--xenstore-timeout must be a number of seconds above 0" }
    return nil
  }

  func execute() async throws {
    let terminal = Terminal(quiet: quiet, verbose: verbose)
    terminal.note("Parsing config from \(configFile)")
    let domain: DomainConfiguration
    do {
      let file = try ConfigFile.read(contentsOf: configFile).applying(overrides: settings)
      domain = try DomainConfiguration(file, source: configFile)
    } catch {
      throw ExitStatus.fail(error)
    }
    for warning in domain.warnings { terminal.note(warning.description) }
    terminal.timeline("parsed \(configFile): domain \"\(domain.name)\" (\(domain.type.rawValue))")

    let paths = ToolstackPaths.current()
    let command = DeviceModelCommand.build(for: domain, domid: 0, runDirectory: paths.runDirectory)
    if let accelerator = command.accelerator, let why = command.acceleratorReason {
      terminal.timeline("accelerator \(accelerator.rawValue): \(why)")
    }
    if dryRun {
      await printDryRun(domain, paths: paths)
      return
    }

    var configured = Toolstack(paths: paths, xenstoreTimeout: .milliseconds(Int64(xenstoreTimeout * 1000)))
      .creator(timeout: timeout.map { .milliseconds(Int64($0 * 1000)) })
    configured.startsPaused = paused
    do { configured.configText = try SavedConfig.text(file: configFile, settings: settings) } catch { throw ExitStatus.fail(error) }
    if !noMonitor && !foreground {
      // Started beside the device model's confirmation: `xl create` returns once both are.
      let (connector, name) = (configured.connector, domain.name)
      configured.monitor = { domid, uuid throws(XenLightError) in
        try await Monitor.start(domid: domid, uuid: uuid, name: name, paths: paths, connector: connector)
      }
    }
    let creator = configured
    let events = CreateEvents(
      phase: { phase, detail in terminal.timeline("\(phase.rawValue): \(detail)") },
      xenstoredStarted: { started in
        terminal.note(
          "xl: no xenstored answered at \(creator.connector.socketPath); started \(creator.connector.xenstoredExecutable) [\(started.pid)]")
      },
      waiting: { progress in
        terminal.status("waiting \(progress.elapsed.readable) of \(timeoutText(domain)) for \(progress.what): \(progress.awaiting)")
      })

    let work = Task { () async throws(XenLightError) -> CreatedDomain in try await creator.create(domain, events: events) }
    let result = await Interrupts.handling({ _ in work.cancel() }) { await work.result }
    terminal.clearStatus()
    switch result {
    case .success(let created):
      terminal.timeline("confirmed by \(created.confirmedBy)")
      terminal.note(
        "Domain \(created.domid) (\(created.name)) created: device model [\(created.identity.pid)] confirmed (\(created.confirmedBy)) in \(created.confirmationTime.readable); log \(created.logPath)")
      if let monitor = created.monitor { terminal.timeline("monitor [\(monitor.pid)] confirmed watching") }
      if let guest = created.guest {
        terminal.timeline(
          "guest ready: console line \(guest.lineNumber) \(ConfigValue.quoted(guest.line)), \(guest.elapsed.readable) after the device model confirmed")
      }
      do {
        try await afterCreate(created, creator: creator, terminal: terminal)
      } catch {
        throw ExitStatus.fail(error)
      }
      if vncViewer { try await VNCViewer.run(domain: "\(created.domid)", autopass: vncAutopass) }
    case .failure(let error):
      throw ExitStatus.fail(error)
    }
  }

  /// The console, or the monitor in the foreground (`-F`).
  private func afterCreate(_ created: CreatedDomain, creator: DomainCreator, terminal: Terminal) async throws(XenLightError) {
    if console {
      guard let tty = created.consoleTTY else {
        throw XenLightError(.invalidState, "domain \(created.domid) (\(created.name)) has no serial console (the config needs serial = \"pty\")")
      }
      try await Console.attach(tty)
    }
    if foreground {
      let client = try await creator.connector.connect()
      defer { client.close() }
      if let me = try? ProcessIdentity.of(pid: getpid()) {
        try? await DomainStore(xenstore: client).write([XenStoreRecord(DomainLayout(domid: created.domid, uuid: created.uuid).monitorIdentityPath, me.description)])
      }
      let monitor = DomainMonitor(
        connector: creator.connector, paths: creator.paths, log: { Terminal.error($0) })
      try await monitor.run(domid: created.domid) {}
    }
  }

  private func timeoutText(_ domain: DomainConfiguration) -> String {
    let seconds = timeout ?? domain.deviceModel.startTimeoutSeconds
    return seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
  }

  /// `-n`: what create would do. The domid is the one a create would take now if a
  /// xenstored answers; else 1.
  private func printDryRun(_ domain: DomainConfiguration, paths: ToolstackPaths) async {
    let connector = XenStoreConnector(paths: paths, spawner: Spawner())
    var domid: UInt32 = 1
    var note = "no xenstored answers at \(connector.socketPath); create would start one"
    if let client = try? await connector.connectIfRunning() {
      defer { client.close() }
      let deadline = XenStoreDeadline(limit: .milliseconds(Int64(xenstoreTimeout * 1000)))
      let store = DomainStore(xenstore: client)
      if let used = try? await deadline.run(client, "reading domids", { () async throws(XenLightError) in try await store.guestDomids() }) {
        domid = DomainStore.domids.first { !used.contains($0) } ?? domid
        note = "xenstore at \(connector.socketPath)"
      } else {
        note = "xenstored at \(connector.socketPath) did not answer"
      }
    }
    let host = HostCapabilities.current
    let command = DeviceModelCommand.build(for: domain, domid: domid, runDirectory: paths.runDirectory, host: host)
    let layout = DomainLayout(domid: domid, uuid: domain.uuid)
    let log = paths.deviceModelLog(name: domain.name)
    var out = "# domain \"\(domain.name)\" as domain \(domid) (\(note))\n"
    let accel = command.target == .local ? (host.hasKVM ? ", KVM" : ", TCG") : ""
    out += "# device model (\(command.target.rawValue)\(accel)), output to \(log):\n"
    out += command.shellCommand + "\n"
    out += "# xenstore records, written in one transaction:\n"
    for record in layout.records(
      for: domain, deviceModel: command, logPath: log, startTime: "<now>", scriptDirectory: paths.scriptDirectory)
    {
      out += record.description + "\n"
    }
    out += "# once it runs:\n"
    out += XenStoreRecord(layout.deviceModelPIDPath, "<pid>").description + "\n"
    out += XenStoreRecord(layout.deviceModelIdentityPath, "<pid>:<start time>:<boot id>").description + "\n"
    if command.target == .local { out += XenStoreRecord(layout.deviceModelStatePath, "running").description + "\n" }
    Terminal.output(out)
  }
}
