#if canImport(Glibc)
import Glibc
#endif
import Testing
import InteropSupport
import TestSupport

/// The package root, from this file's path (…/Tests/EndToEndTests/InstallTests.swift).
private let packageRoot: String = {
  var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
  parts.removeLast(3)
  return parts.joined(separator: "/")
}()

/// `scripts/install.sh` into a temporary prefix (the built commands, `--no-build`): what it
/// installs runs, its manual pages render, its units pass `systemd-analyze verify`, its
/// completion completes; and the manual keeps up with xl's subcommands.
@Suite(.serialized) struct InstallTests {
  /// Installs into a fresh prefix (DESTDIR empty, so the units name paths that exist).
  static func install(into prefix: String) async throws -> ProcessResult {
    try await run(
      ["/bin/bash", packageRoot + "/scripts/install.sh", "--no-build"],
      environment: ["PREFIX": prefix, "SYSCONFDIR": prefix + "/etc", "BUILD_DIR": BuiltProducts.directory], timeout: 120)
  }

  @Test(.enabled(if: TestEnvironment.shouldRun([.systemdAnalyze, .man])))
  func installsCommandsManualsUnitsAndCompletion() async throws {
    let directory = TemporaryDirectory("install")
    defer { directory.remove() }
    let prefix = directory.appending("usr")
    let installed = try await Self.install(into: prefix)
    #expect(installed.status == 0, "\(installed)")

    // The commands run.
    #expect(try await run([prefix + "/sbin/xl", "help", "uptime"]).stdout.hasPrefix("OVERVIEW: Print how long domains have been running."))
    #expect(try await run([prefix + "/sbin/xenstored", "--help"]).stdout.hasPrefix("OVERVIEW: Serve the xenstore wire protocol"))
    let read = try await run([prefix + "/bin/xenstore-read", "--help"])
    #expect(read.stdout.contains("USAGE: xenstore read"), "\(read)")

    // Every manual renders, without a warning.
    for page in ["man1/xl.1", "man1/xenstore.1", "man5/xl.cfg.5", "man8/xenstored.8"] {
      let rendered = try await run(["/usr/bin/man", "-l", prefix + "/share/man/" + page], environment: ["MANWIDTH": "80", "MAN_KEEP_FORMATTING": "0"])
      #expect(rendered.status == 0 && rendered.stderr == "", "\(page): \(rendered.stderr)")
      let file = page.split(separator: "/")[1]
      let title = file[..<file.lastIndex(of: ".")!].uppercased()
      #expect(rendered.stdout.hasPrefix(title + "("), "\(page): \(rendered.stdout.prefix(80))")
    }
    let cfg = try await run(["/bin/sh", "-c", "man -l \(prefix)/share/man/man5/xl.cfg.5 | col -b"], environment: ["MANWIDTH": "200"]).stdout
    for key in ["guest_ready_console", "guest_ready_timeout", "device_model_start_timeout", "dm_restrict", "on_watchdog", "maxvcpus"] {
      #expect(cfg.contains(key), "xl.cfg(5) has no \(key)")
    }

    // The units verify against the installed commands.
    let units = ["xenstored", "xendomains"].map { prefix + "/lib/systemd/system/\($0).service" }
    let verified = try await run([Peer.systemdAnalyze.path, "verify"] + units, environment: ["MANPATH": prefix + "/share/man"])
    #expect(verified.status == 0 && verified.stderr == "", "\(verified)")
    #expect(try readFile(units[0]).contains("Type=notify\nExecStartPre=/bin/mkdir -p /var/run/xenstored /var/lib/xen/xenstored /var/log/xen\nExecStart=\(prefix)/sbin/xenstored --no-fork"))
    #expect(try readFile(units[1]).contains("ExecStop=\(prefix)/lib/xen/bin/xendomains stop\n"))

    // The completion completes xl's subcommands.
    let completion = prefix + "/share/bash-completion/completions/xl"
    let completed = try await run([
      "/bin/bash", "-c",
      "_init_completion() { cur=${COMP_WORDS[COMP_CWORD]}; words=(\"${COMP_WORDS[@]}\"); cword=$COMP_CWORD; }; source \(completion); COMP_WORDS=(xl vcpu-); COMP_CWORD=1; _xl; echo \"${COMPREPLY[*]}\"",
    ])
    #expect(completed.stdout == "vcpu-list vcpu-pin\n", "\(completed)")

    // Configuration is installed once; an operator's edit survives a second install.
    let conf = prefix + "/etc/xen/xl.conf"
    #expect(access(conf, R_OK) == 0 && access(prefix + "/etc/default/xendomains", R_OK) == 0)
    _ = try await run(["/bin/sh", "-c", "echo '# mine' >> \(conf)"])
    #expect(try await Self.install(into: prefix).status == 0)
    #expect(try readFile(conf).hasSuffix("# mine\n"))
  }

  @Test func theManualNamesEverySubcommand() async throws {
    let manual = try readFile(packageRoot + "/packaging/man/xl.1")
    let help = try await run([BuiltProducts.path("xl"), "--help"]).stdout
    // The SUBCOMMANDS section of `xl --help`: "  name    abstract".
    let names = help.split(separator: "\n", omittingEmptySubsequences: false).drop { $0 != "SUBCOMMANDS:" }.dropFirst()
      .prefix { !$0.isEmpty }
      .compactMap { line in line.hasPrefix("  ") && !line.hasPrefix("   ") ? line.split(separator: " ").first.map(String.init) : nil }
    #expect(names.count > 20, "\(help)")
    for name in names {
      #expect(manual.contains(".It Em \(name)\n"), "packaging/man/xl.1 has no \(name): run scripts/man-pages.sh")
    }
  }
}

extension GuestSuites {
  /// xendomains, installed, across a simulated host restart: `start` creates the guests in
  /// XENDOMAINS_AUTO (each confirmed booted by its console), `stop` saves every running
  /// guest, the next `start` restores it with its memory intact; without a save directory,
  /// `stop` shuts the guests down.
  @Suite(.serialized) struct XendomainsTests {
    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu, .linuxGuest])))
    func startStopAndStartAgain() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      let prefix = bed.directory.appending("usr")
      try #require(try await InstallTests.install(into: prefix).status == 0)
      let auto = bed.directory.appending("auto")
      let save = bed.directory.appending("save")
      mkdir(auto, 0o755)
      let config = bed.linuxGuest("guest_ready_console = \"^xenlight-guest: booted\"")
      _ = try await run(["/bin/cp", config, auto + "/linux.cfg"])
      let environment = [
        "XL": prefix + "/sbin/xl", "XENDOMAINS_CONFIG": prefix + "/etc/default/xendomains", "XENDOMAINS_AUTO": auto,
        "XENDOMAINS_SAVE": save, "XENDOMAINS_LOCKFILE": bed.directory.appending("xendomains.lock"), "XENDOMAINS_STOP_MAXWAIT": "60",
      ]
      let xendomains = prefix + "/lib/xen/bin/xendomains"
      func xendomainsRun(_ verb: String) async throws -> ProcessResult {
        try await InteropSupport.run([xendomains, verb], environment: bed.environment.merging(environment) { $1 }, timeout: 180)
      }

      let started = try await xendomainsRun("start")
      #expect(started.status == 0, "\(started)")
      #expect(started.stdout == "Starting auto Xen domains: linux.cfg\n")
      #expect(try await bed.read("/local/domain/1/name") == "linux")
      #expect(try await xendomainsRun("status").status == 0)
      #expect(try await xendomainsRun("start").stdout == "xendomains already running (lockfile \(environment["XENDOMAINS_LOCKFILE"]!) exists)\n")

      let before = try await GuestProbe.mark(bed, "linux")

      // The host goes down: the guest is saved (xl save), nothing of it left running.
      let stopped = try await xendomainsRun("stop")
      #expect(stopped.status == 0, "\(stopped)")
      #expect(stopped.stdout == "Shutting down Xen domains: linux(save)\n", "\(stopped)")
      try await bed.expectNoLeftovers()
      #expect(access(save + "/linux", R_OK) == 0)
      let status = try await xendomainsRun("status")
      #expect(status.status == 3)
      #expect(status.stdout.hasSuffix("Auto domain linux (linux.cfg) is not running\n"), "\(status)")

      // It comes back: restored with its memory (the marker), not booted again; the save
      // file removed; the auto config skipped, its guest being there.
      let again = try await xendomainsRun("start")
      #expect(again.status == 0, "\(again)")
      #expect(again.stdout == "Restoring Xen domains: linux\nStarting auto Xen domains: linux.cfg(skip)\n", "\(again)")
      #expect(access(save + "/linux", F_OK) != 0)
      let after = try await GuestProbe.check(bed, "linux")
      #expect(after.marker == before.marker && !before.marker.isEmpty, "\(before) then \(after)")
      #expect(after.uptime >= before.uptime)
      #expect(try GuestProbe.boots(bed, "linux") == 1)

      // Without a save directory, stop shuts the guest down (xl shutdown -w).
      var noSave = environment
      noSave["XENDOMAINS_SAVE"] = ""
      let shut = try await InteropSupport.run([xendomains, "stop"], environment: bed.environment.merging(noSave) { $1 }, timeout: 180)
      #expect(shut.status == 0, "\(shut)")
      #expect(shut.stdout == "Shutting down Xen domains: linux(shut)\n", "\(shut)")
      try await bed.expectNoLeftovers()
    }
  }
}
