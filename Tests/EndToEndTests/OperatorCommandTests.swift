#if canImport(Glibc)
import Glibc
#endif
import Testing
import InteropSupport
import TestSupport

extension GuestSuites {
  /// An operator's everyday commands on one real Linux guest (confirmed booted by its console)
  /// and a firmware-only neighbour: xl's output layouts and exit codes, what reaches the guest
  /// (an NMI, a SysRq key: the guest's kernel says so on its console), and bad input that
  /// changes nothing.
  @Suite(.serialized) struct OperatorCommandTests {
    static let peers: [Peer] = [.qemu, .linuxGuest]

    @Test(.enabled(if: TestEnvironment.shouldRun(peers)))
    func everydayCommandsOnARealGuest() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      let created = try await bed.xl([
        "create", "-q", bed.linuxGuest("vcpus = 2\nguest_ready_console = \"^xenlight-guest: booted\""),
      ])
      try #require(created.status == 0, "\(created)")
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest("neighbour")]).status == 0)
      let uuid = try #require(try await bed.read("/local/domain/1/vm")).dropFirst(4)

      // domid, domname, vm-list.
      #expect(try await bed.xl(["domid", "linux"]).stdout == "1\n")
      #expect(try await bed.xl(["domid", "Domain-0"]).stdout == "0\n")
      #expect(try await bed.xl(["domname", "2"]).stdout == "neighbour\n")
      let vms = try await bed.xl(["vm-list"])
      #expect(vms.stdout.hasPrefix("UUID                                  ID    name\n\(uuid)  1    linux                         \n"), "\(vms.stdout)")

      // uptime: Domain-0, then each guest, xl's columns.
      let uptime = try await bed.xl(["uptime"]).stdout.split(separator: "\n")
      #expect(uptime.first == "Name                                ID Uptime")
      #expect(uptime.dropFirst().map { $0.prefix(38) } == ["Domain-0                             0", "linux                                1", "neighbour                            2"])
      #expect(uptime.last?.hasSuffix(" 0:00:0") == true || uptime.last?.contains(" 0:00:") == true, "\(uptime)")
      let short = try await bed.xl(["uptime", "-s", "linux"]).stdout
      #expect(short.hasPrefix(" ") && short.contains(" up  0:0") && short.hasSuffix(", linux (1)\n"), "\(short)")

      // info: xl's field lines, and one value alone.
      let info = try await bed.xl(["info"])
      #expect(info.status == 0)
      #expect(info.stdout.contains("\nnr_cpus                : \(sysconf(Int32(_SC_NPROCESSORS_CONF)))\n"), "\(info.stdout)")
      #expect(info.stdout.contains("\ndevice_model_version   : 7."), "\(info.stdout)")
      #expect(info.stdout.hasSuffix("xend_config_format     : 4\n"))
      let memory = try await bed.xl(["info", "total_memory"]).stdout
      #expect(Int(memory.dropLast()) ?? 0 > 0, "\(memory)")

      // top: xentop's batch output, twice, 0.2 s apart.
      let top = try await bed.xl(["top", "-b", "-i", "2", "-d", "0.2"])
      let rows = top.stdout.split(separator: "\n")
      let header = "      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS NETTX(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID"
      #expect(rows.count == 6 && rows[0] == header && rows[3] == header, "\(top)")
      #expect(rows[1].hasPrefix("     linux ") && rows[2].hasPrefix(" neighbour "), "\(rows)")
      #expect(rows[4].split(separator: " ")[4] == "131072", "MEM(k) of 128 MiB: \(rows[4])")
      let refused = try await bed.xl(["top"])
      #expect(refused.status == 64 && refused.stderr.hasPrefix("Error: only batch mode is available: xl top -b\n"), "\(refused)")

      // qemu-monitor-command: QEMU's own words.
      #expect(try await bed.xl(["qemu-monitor-command", "linux", "info status"]).stdout == "VM status: running\n")

      // vcpu-list and vcpu-pin: the vCPU threads' affinity.
      let before = try await bed.xl(["vcpu-list", "linux"]).stdout.split(separator: "\n")
      #expect(before.first == "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)")
      #expect(before.count == 3 && before[1].hasPrefix("linux                                1     0") && before[2].hasPrefix("linux                                1     1"), "\(before)")
      #expect(before.dropFirst().allSatisfy { $0.hasSuffix("  all / all") }, "\(before)")
      #expect(try await bed.xl(["vcpu-pin", "linux", "1", "0"]).status == 0)
      let pinned = try await bed.xl(["vcpu-list", "linux"]).stdout.split(separator: "\n")
      #expect(pinned[1].hasSuffix("  all / all") && pinned[2].hasSuffix("  0 / all"), "\(pinned)")

      // trigger nmi and sysrq reach the guest's kernel, which says so on its console.
      #expect(try await bed.xl(["trigger", "linux", "nmi"]).status == 0)
      try await waitForConsole(bed, "linux", containing: "NMI received")
      #expect(try await bed.xl(["sysrq", "linux", "h"]).status == 0)
      try await waitForConsole(bed, "linux", containing: "sysrq: HELP")
      #expect(try await bed.read("/local/domain/1/control/sysrq") == "h")

      // dump-core: an ELF core of the guest's memory.
      let core = bed.directory.appending("linux.core")
      #expect(try await bed.xl(["dump-core", "linux", core]).status == 0)
      let fd = open(core, O_RDONLY)
      var magic = [UInt8](repeating: 0, count: 4)
      _ = read(fd, &magic, 4)
      close(fd)
      #expect(magic == [0x7f, 0x45, 0x4c, 0x46])

      // rename: the records and the config a restart uses.
      #expect(try await bed.xl(["rename", "linux", "penguin"]).status == 0)
      #expect(try await bed.read("/local/domain/1/name") == "penguin")
      #expect(try await bed.read("/vm/\(uuid)/name") == "penguin")
      #expect(try await bed.xl(["domid", "penguin"]).stdout == "1\n")

      // help.
      #expect(try await bed.xl(["help", "uptime"]).stdout.hasPrefix("OVERVIEW: Print how long domains have been running."))

      #expect(try await bed.xl(["destroy", "penguin"]).status == 0)
      #expect(try await bed.xl(["destroy", "neighbour"]).status == 0)
      try await bed.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
    func badInputIsRefusedAndChangesNothing() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest("one")]).status == 0)
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest("two")]).status == 0)
      let records = try await snapshot(bed)

      let cases: [([String], Int32, String)] = [
        (["domid", "nosuch"], 1, "Can't get domid of domain name 'nosuch', maybe this domain does not exist.\n"),
        (["domname", "9"], 1, "Can't get domain name of domain id '9', maybe this domain does not exist.\n"),
        (["domname", "x"], 1, "Invalid domain id.\n\n"),
        (["uptime", "nosuch"], 1, "xl: no domain \"nosuch\"\n"),
        (["vcpu-list", "nosuch"], 1, "xl: no domain \"nosuch\"\n"),
        (["trigger", "nosuch", "nmi"], 1, "xl: no domain \"nosuch\"\n"),
        (["trigger", "one", "bogus"], 1, "xl: invalid trigger \"bogus\" (expected power, sleep, nmi, init, reset, s3resume)\n"),
        (["trigger", "one", "init"], 1, "xl: domain 1 (one): trigger \"init\" needs the Xen hypervisor; QEMU has no way to send it\n"),
        (["button-press", "one", "eject"], 1, "WARNING: \"button-press\" is deprecated. Please use \"trigger\"\neject is an invalid button identifier\n"),
        (["sysrq", "one", "hh"], 1, "Invalid sysrq.\n\n"),
        (["sysrq", "one", "%"], 1, "xl: invalid sysrq key \"%\" (a letter or a digit)\n"),
        (["rename", "one", "two"], 4, "xl: cannot rename domain 1 (one) to \"two\": domain 2 has that name\n"),
        (["rename", "one", "a/b"], 1, "xl: cannot rename domain 1 (one): the domain name \"a/b\" must not contain \"/\": it names the domain's log, console and dump files\n"),
        (["rename", "nosuch", "three"], 1, "xl: no domain \"nosuch\"\n"),
        (["dump-core", "one", "/proc/no/core"], 1, "xl: cannot write the core of domain 1 (one) to /proc/no/core: No such file or directory\n"),
        (["dump-core", "nosuch", bed.directory.appending("core")], 1, "xl: no domain \"nosuch\"\n"),
        (["vcpu-pin", "one", "x", "0"], 1, "Error: Invalid argument x as VCPU.\n"),
        (["vcpu-pin", "one", "0", "99"], 1, "xl: invalid CPU list \"99\" (this host has CPUs 0-\(sysconf(Int32(_SC_NPROCESSORS_CONF)) - 1); e.g. all, 0-1, ^0)\n"),
        (["vcpu-pin", "one", "7", "0"], 1, "xl: domain 1 (one) has no vCPU 7 (it has 1)\n"),
        (["qemu-monitor-command", "nosuch", "info status"], 1, "xl: no domain \"nosuch\"\n"),
        (["help", "nosuch"], 64, "xl: no command \"nosuch\" (xl help lists them)\n"),
      ]
      for (arguments, status, message) in cases {
        let result = try await bed.xl(arguments)
        #expect(result.status == status, "\(arguments): \(result)")
        #expect(result.stderr == message, "\(arguments)")
        #expect(result.stdout == "", "\(arguments)")
      }
      #expect(access(bed.directory.appending("core"), F_OK) != 0)
      #expect(try await snapshot(bed) == records)
      #expect(try await bed.xl(["destroy", "one"]).status == 0)
      #expect(try await bed.xl(["destroy", "two"]).status == 0)
      try await bed.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
    func pausedCreateListColumnsAndTheVNCViewer() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      // create -p: QEMU's -S, so the guest has not run an instruction; unpause lets it.
      try #require(try await bed.xl(["create", "-q", "-p", bed.tinyGuest("still", "vnc = 1\nvnclisten = \"127.0.0.1\"\nvncunused = 1\ncpus = \"0\"\nvncpasswd = \"s3cret\"")]).status == 0)
      #expect(try await bed.read("/libxl/1/run-state") == "paused")
      #expect(try await bed.xl(["qemu-monitor-command", "still", "info status"]).stdout == "VM status: paused (prelaunch)\n")
      let list = try await bed.xl(["list", "-v", "-n"]).stdout.split(separator: "\n")
      #expect(list.first?.hasSuffix("Time(s)   UUID                                 Reason-Code  Security Label NODE Affinity") == true, "\(list)")
      let uuid = try #require(try await bed.read("/local/domain/1/vm")).dropFirst(4)
      #expect(list.dropFirst().first?.contains("--p---") == true && list.dropFirst().first?.hasSuffix(" \(uuid)        -                - all") == true, "\(list)")
      // cpus = "0": the vCPU thread's affinity from the start.
      let host = sysconf(Int32(_SC_NPROCESSORS_CONF))
      let vcpus = try await bed.xl(["vcpu-list", "still"]).stdout.split(separator: "\n")
      #expect(vcpus.count == 2 && vcpus[1].hasSuffix(host > 1 ? "  0 / all" : "  all / all"), "\(vcpus)")
      let badCPUs = try await bed.xl(["create", "-q", bed.tinyGuest("other", "cpus = \"\(host)\"")])
      #expect(badCPUs.status == 1)
      #expect(badCPUs.stderr.hasSuffix("cpus: invalid CPU list \"\(host)\" (this host has CPUs 0-\(host - 1); e.g. \"all\", \"0-1\", \"^0\")\n"), "\(badCPUs)")
      #expect(try await bed.xl(["unpause", "still"]).status == 0)
      #expect(try await bed.xl(["qemu-monitor-command", "still", "info status"]).stdout == "VM status: running\n")

      // vncviewer: xl becomes the viewer, with HOST:DISPLAY and (-a) the password on stdin.
      let seen = bed.directory.appending("viewer.out")
      let viewer = bed.config("#!/bin/sh\necho \"$@\" > \(seen)\ncat >> \(seen)\n", name: "viewer")
      chmod(viewer, 0o755)
      let ran = try await bed.xl(["vncviewer", "--autopass", "still"], environment: ["VNCVIEWER": viewer])
      #expect(ran.status == 0, "\(ran)")
      let handed = try readFile(seen)
      #expect(handed == "-autopass 127.0.0.1:0\ns3cret\n", "\(handed)")
      let missing = try await bed.xl(["vncviewer", "still"], environment: ["VNCVIEWER": "/nonexistent/viewer"])
      #expect(missing.status == 1)
      #expect(missing.stderr == "xl: cannot run /nonexistent/viewer: No such file or directory\n")
      #expect(try await bed.xl(["destroy", "still"]).status == 0)

      // A domain without a display, and console -e's bad escape.
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest("blind")]).status == 0)
      let blind = try await bed.xl(["vncviewer", "blind"])
      #expect(blind.status == 1)
      #expect(blind.stderr == "xl: domain 1 (blind) has no VNC display (the config needs vnc = 1)\n")
      let escape = try await bed.xl(["console", "-e", "^^^", "blind"])
      #expect(escape.status == 64)
      #expect(escape.stderr.hasPrefix("Error: -e takes ^X (Ctrl-X) or one character, not \"^^^\"\n"), "\(escape)")
      #expect(try await bed.xl(["destroy", "blind"]).status == 0)
      try await bed.expectNoLeftovers()
    }

    /// Both domains' names, as `xl list` shows them and xenstore keeps them.
    private func snapshot(_ bed: XlTestbed) async throws -> [String] {
      var names: [String] = []
      for domid in ["1", "2"] {
        names.append(try await bed.read("/local/domain/\(domid)/name") ?? "-")
        let vm = try await bed.read("/local/domain/\(domid)/vm") ?? "-"
        names.append(try await bed.read(vm + "/name") ?? "-")
      }
      return names
    }

    /// Waits, by inotify on the console log, until it holds `text` (90 s at most).
    private func waitForConsole(_ bed: XlTestbed, _ name: String, containing text: String) async throws {
      let log = bed.logDirectory + "/console/guest-\(name).log"
      let found = try await offPool { () -> Bool in
        let notify = inotify_init1(Int32(IN_CLOEXEC))
        defer { close(notify) }
        guard inotify_add_watch(notify, log, UInt32(IN_MODIFY)) >= 0 else { return false }
        let deadline = time(nil) + 90
        var events = [UInt8](repeating: 0, count: 4096)
        while true {
          if (try? readFile(log))?.contains(text) == true { return true }
          var fds = pollfd(fd: notify, events: Int16(POLLIN), revents: 0)
          guard time(nil) < deadline, poll(&fds, 1, Int32(max(0, deadline - time(nil))) * 1000) > 0 else { return false }
          _ = read(notify, &events, events.count)
        }
      }
      #expect(found, "\(log) never showed \"\(text)\"")
    }
  }
}
