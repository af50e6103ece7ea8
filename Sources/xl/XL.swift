import ArgumentParser
import Spawn
import XenLight

/// `xl`: create, destroy and list domains, after Xen's xl.
struct XL: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "xl",
    abstract: "Create, destroy and list domains whose device model is QEMU.",
    discussion: """
      xenstore is found as libxenstore finds it: $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, \
      else /var/run/xenstored/socket. When nobody answers there, `xl create` starts the \
      xenstored next to xl on that path (and says so once), keeping its state in \
      $XEN_LIB_DIR/xenstored (default /var/lib/xen): if it dies, the next xl (list and \
      destroy too) starts it again with every record it had.

      QMP sockets go to $XEN_RUN_DIR (default /var/run/xen), device-model logs to \
      $XEN_LOG_DIR (default /var/log/xen), falling back to per-user directories.

      Exit codes:
        0    success
        1    the configuration or a file is invalid
        2    xenstore could not be reached, started or used
        3    the device model did not start (exec error, exit, signal, protocol)
        4    a domain with that name already exists
        9    the device model did not confirm within the timeout; a guest did not shut down within --timeout
        64   the command line is invalid
        130  interrupted (SIGINT or SIGTERM); nothing was left behind
      """,
    subcommands: [
      Create.self, Destroy.self, List.self, Shutdown.self, Reboot.self, Pause.self, Unpause.self, Console.self, Monitor.self,
      Save.self, Restore.self, Migrate.self, MigrateReceive.self,
      Info.self, Uptime.self, DomID.self, DomName.self, VMList.self, VCPUList.self, VCPUPin.self, Trigger.self, ButtonPress.self,
      Sysrq.self, QemuMonitorCommand.self, DumpCore.self, Rename.self, ConfigUpdate.self, VNCViewer.self, Top.self, Help.self,
      BlockAttach.self, BlockDetach.self, BlockList.self, CDInsert.self, CDEject.self, MemSet.self, MemMax.self, VcpuSet.self,
      NetworkAttach.self, NetworkDetach.self, NetworkList.self,
    ])
}

/// A subcommand's work, called by main (ArgumentParser's async `run` is not reachable
/// through an existential without `@main`, which would run before signals are blocked).
protocol XLSubcommand: ParsableCommand {
  func execute() async throws
}

extension XenStoreConnector {
  /// Tells the user that `list` or `destroy` brought xenstored back from its saved state.
  var noteRestart: @Sendable (SpawnConfirmation) -> Void {
    { [socketPath, xenstoredExecutable, paths] started in
      Terminal.error(
        "xl: no xenstored answered at \(socketPath); started \(xenstoredExecutable) [\(started.pid)] on its saved state in \(paths.xenstoredStateDirectory)")
    }
  }
}

extension Toolstack {
  /// The toolstack as `xl` runs it: paths from the environment, and a note on stderr when a
  /// verb brings xenstored back from its saved state.
  static func forXL(xenstoreTimeout seconds: Double = 10) -> Toolstack {
    var toolstack = Toolstack(xenstoreTimeout: .milliseconds(Int64(seconds * 1000)))
    toolstack.xenstoredStarted = toolstack.connector.noteRestart
    let (paths, connector) = (toolstack.paths, toolstack.connector)
    toolstack.replaceMonitor = { orphan, _ in
      do throws(XenLightError) {
        let started = try await Monitor.start(
          domid: orphan.domid, uuid: orphan.uuid, name: orphan.name, paths: paths, connector: connector)
        Terminal.error("xl: domain \(orphan.domid) (\(orphan.name)): its monitor [\(orphan.lost.pid)] had died; started another [\(started.pid)]")
      } catch {
        Terminal.error("xl: domain \(orphan.domid) (\(orphan.name)): its monitor [\(orphan.lost.pid)] had died; \(error.message)")
      }
    }
    return toolstack
  }

  /// Runs `verb` on the domain `reference` names; any failure is xl's error and exit code.
  func run<T: Sendable>(
    _ reference: String, onLoopThread: Bool = false, _ verb: (DomainControl, DomainControl.Target) async throws(XenLightError) -> T
  ) async throws -> T {
    do { return try await control(reference, onLoopThread: onLoopThread, verb) } catch { throw ExitStatus.fail(error) }
  }

  /// This `xl`'s absolute path (the domain monitor is this program too).
  static var executable: String { XenStoreConnector.currentExecutable ?? CommandLine.arguments[0] }
}
