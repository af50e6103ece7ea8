#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Spawn
import XenLight

/// `xl migrate [-s SSHCOMMAND] [-e] [-C CONFIG] [--debug] [-p] DOMAIN HOST`.
struct Migrate: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Move a running domain to another host (live), as xl does.",
    discussion: """
      The transport is `SSHCOMMAND HOST xl migrate-receive` (default ssh); with -s '' HOST \
      itself is run as the command (sh -c), which is how another toolstack on this machine \
      is reached. Storage must be shared: the same disk paths on both sides. The guest runs \
      while its memory is copied (QEMU's pre-copy) and is stopped only for the last pass. \
      If anything fails before the receiver is given the domain, it runs on here; the one \
      case left paused here is a report lost after the hand-over (see the message).
      """)

  @Option(name: .customShort("s"), help: "The command that reaches HOST (default ssh; '' runs HOST as the command).")
  var sshCommand: String = "ssh"

  @Flag(name: .customShort("e"), help: "Start no domain monitor at the receiver.")
  var noMonitor = false

  @Option(name: .customShort("C"), help: "Send this config instead of the domain's own.")
  var config: String?

  @Flag(name: .long, help: "Print each step, QEMU's totals and downtime, and the time the guest was stopped.")
  var debug = false

  @Flag(name: .customShort("p"), help: "Leave the domain paused at the receiver.")
  var pauseAfter = false

  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The host (or, with -s '', the command).") var host: String

  var rune: String {
    guard !sshCommand.isEmpty else { return host }
    return "exec \(sshCommand) \(host) xl migrate-receive" + (noMonitor ? " -e" : "") + (debug ? " -d" : "") + (pauseAfter ? " -p" : "")
  }

  func execute() async throws {
    signal(SIGPIPE, SIG_IGN)  // a receiver that goes away is an error to handle, not our end
    var sender = MigrationSender(toolstack: .forXL())
    let debug = self.debug
    sender.log = { line in if debug { Terminal.error(line) } }
    sender.fault = getenv("XL_MIGRATION_FAULT").map { String(cString: $0) }
    do {
      let migrated = try await sender.migrate(domain, rune: rune, configFile: config)
      if debug {
        Terminal.error("migration sender: QEMU: \(migrated.totals.description)")
        if let stopped = migrated.stoppedFor {
          Terminal.error("migration sender: the guest was stopped \(stopped.readable), from QEMU's last pass until the receiver reported it running")
        }
        Terminal.error("migration sender: \(migrated.elapsed.readable) from migrate to the receiver's report")
      }
      Terminal.error("Migration successful.")
    } catch {
      Terminal.error("xl: \(error)")
      throw ExitCode(error.code == .interrupted ? 130 : 1)
    }
  }
}

/// `xl migrate-receive [-d] [-e] [-p]`: the other end of `xl migrate`, on stdin and stdout.
struct MigrateReceive: XLSubcommand {
  static let configuration = CommandConfiguration(
    commandName: "migrate-receive",
    abstract: "Receive a domain from xl migrate on stdin/stdout (run by xl migrate through its transport).",
    shouldDisplay: false)

  @Flag(name: .customShort("d"), help: "Print each step.") var debug = false
  @Flag(name: .customShort("e"), help: "Start no domain monitor.") var noMonitor = false
  @Flag(name: .customShort("p"), help: "Leave the domain paused.") var pauseAfter = false
  @Option(name: .long, help: "Only say whether this side has the domain with this uuid (here, absent, unsettled), after settling abandoned migrations.")
  var resolve: String?

  func execute() async throws {
    signal(SIGPIPE, SIG_IGN)
    let toolstack = Toolstack.forXL()
    if let resolve {
      guard let uuid = DomainUUID(resolve) else { throw ExitStatus.fail(XenLightError(.invalidConfig, "--resolve: \"\(resolve)\" is not a uuid")) }
      do {
        let answer = try await toolstack.withStore { store throws(XenLightError) in
          try await MigrationLeftovers.answer(uuid: uuid, store, toolstack: toolstack)
        }
        Terminal.output((answer ?? .absent).rawValue + "\n")
      } catch {
        throw ExitStatus.fail(error)
      }
      return
    }
    var receiver = MigrationReceiver(toolstack: toolstack)
    receiver.pauseAfter = pauseAfter
    receiver.log = { Terminal.error($0) }
    receiver.fault = getenv("XL_MIGRATION_FAULT").map { String(cString: $0) }
    if !noMonitor {
      let (paths, connector) = (toolstack.paths, toolstack.connector)
      receiver.monitor = { domid, uuid, name throws(XenLightError) in
        try await Monitor.start(domid: domid, uuid: uuid, name: name, paths: paths, connector: connector)
      }
    }
    do {
      let received = try await receiver.receive()
      if debug { Terminal.error("migration target: domain \(received.domid) (\(received.name))") }
    } catch {
      throw ExitStatus.fail(error)
    }
  }
}
