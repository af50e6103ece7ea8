#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import InteropSupport
import TestSupport
import XenStore

extension GuestSuites {
  /// `xl save` and `xl restore` on a real Linux guest: what the guest holds in memory and its
  /// uptime survive, it boots once, its console and monitor work afterwards; and every bad
  /// input with its exit code, its message and nothing left behind.
  @Suite(.serialized) struct SaveRestoreTests {
    static let peers: [Peer] = [.qemu, .linuxGuest]

    @Test(.enabled(if: TestEnvironment.shouldRun(peers)))
    func theGuestsMemoryAndUptimeOutliveItsProcess() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", bed.linuxGuest()]).status == 0)
      let before = try await GuestProbe.mark(bed, "linux")
      let file = bed.directory.appending("linux.save")

      // Save: the domain is gone, its state in the file.
      let saved = try await bed.xl(["save", "linux", file])
      #expect(saved.status == 0, "\(saved)")
      #expect(saved.stderr.hasPrefix("Saving to \(file) new xl format (info 0x80000000/0x0/"), "\(saved)")
      try await bed.expectNoLeftovers()

      // Restore: the same guest (no boot), its marker, its uptime gone on, its console.
      let restored = try await bed.xl(["restore", file])
      #expect(restored.status == 0, "\(restored)")
      #expect(restored.stderr.hasSuffix("Domain 1 (linux) restored from \(file)\n"), "\(restored)")
      #expect(try await bed.read("/libxl/1/run-state") == "running")
      let after = try await GuestProbe.check(bed, "linux")
      #expect(after.marker == before.marker)
      #expect(after.uptime > before.uptime, "uptime \(before.uptime) then \(after.uptime)")
      #expect(try GuestProbe.boots(bed, "linux") == 1)
      let monitor = try #require(try await bed.read("/libxl/1/monitor-identity").flatMap(ProcessIdentity.init))
      #expect(isAlive(monitor.pid))

      // A checkpoint (-c): the guest runs on; then -p leaves it paused.
      let checkpoint = bed.directory.appending("checkpoint.save")
      #expect(try await bed.xl(["save", "-c", "linux", checkpoint]).status == 0)
      #expect(try await bed.read("/libxl/1/run-state") == "running")
      let onward = try await GuestProbe.check(bed, "linux")
      #expect(onward.marker == before.marker && onward.uptime > after.uptime)
      #expect(try await bed.xl(["save", "-p", "linux", bed.directory.appending("paused.save")]).status == 0)
      #expect(try await bed.read("/libxl/1/run-state") == "paused")
      #expect(try await bed.xl(["destroy", "linux"]).status == 0)
      try await bed.expectNoLeftovers()

      // The checkpoint restored paused (-p), then unpaused; the monitor applies on_poweroff.
      #expect(try await bed.xl(["restore", "-p", checkpoint]).status == 0)
      #expect(try await bed.read("/libxl/1/run-state") == "paused")
      #expect(try await bed.xl(["unpause", "linux"]).status == 0)
      let fromCheckpoint = try await GuestProbe.check(bed, "linux")
      #expect(fromCheckpoint.marker == before.marker && fromCheckpoint.uptime > after.uptime)
      #expect(try GuestProbe.boots(bed, "linux") == 1)
      #expect(try await bed.xl(["shutdown", "-w", "linux"]).status == 0)
      try await bed.expectNoLeftovers()
      #expect(try readFile(bed.logDirectory + "/xl-linux.log").contains("Action for shutdown reason code 0 is destroy"))
    }

    /// A confined device model (its own uid, chroot, seccomp) saves into and loads from the
    /// descriptors xl hands it: no host path, no `exec:`. Restored, it is confined again.
    @Test(.enabled(if: TestEnvironment.shouldRun(peers)))
    func aConfinedGuestIsSavedAndRestoredConfined() async throws {
      let user = try await DeviceModelRestrictTests.TestUser("xldm-save18", uid: 231_181)
      defer { user.remove() }
      let bed = try XlTestbed()
      defer { bed.stop() }
      chmod(bed.directory.path, 0o755)
      try #require(try await bed.xl(["create", "-q", bed.linuxGuest("device_model_user = \"xldm-save18\"")]).status == 0)
      let before = try await GuestProbe.mark(bed, "linux")
      let file = bed.directory.appending("linux.save")
      let saved = try await bed.xl(["save", "linux", file])
      #expect(saved.status == 0, "\(saved)")
      try await bed.expectNoLeftovers()
      // An exited device model may still await its reaping by init (a zombie holds nothing).
      let listed = try await run(["/usr/bin/ps", "-u", "\(user.uid)", "-o", "stat=,pid=,args="]).stdout
      let left = listed.split(separator: "\n").filter { !$0.hasPrefix("Z") }
      #expect(left.isEmpty, "nothing of the user's left: \(left)")

      let restored = try await bed.xl(["restore", file])
      #expect(restored.status == 0, "\(restored)")
      let qemu = try #require(try await bed.read("/libxl/1/device-model-identity").flatMap(ProcessIdentity.init))
      let status = try readFile("/proc/\(qemu.pid)/status")
      #expect(status.contains("Uid:\t\(user.uid)\t\(user.uid)\t\(user.uid)\t\(user.uid)\n"), "\(status)")
      #expect(status.contains("Seccomp:\t2\n"))
      #expect(try await bed.read("/local/domain/1/image/device-model-kill-uid") == "\(user.uid)")
      let after = try await GuestProbe.check(bed, "linux")
      #expect(after.marker == before.marker && after.uptime > before.uptime, "\(before) then \(after)")
      #expect(try GuestProbe.boots(bed, "linux") == 1)
      #expect(try await bed.xl(["destroy", "linux"]).status == 0)
      try await bed.expectNoLeftovers()
    }

    /// A tiny (firmware-only) guest's save file, and the domain destroyed again.
    func savedTinyGuest(_ bed: XlTestbed, _ extra: String = "") async throws -> String {
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest("tiny", extra)]).status == 0)
      let file = bed.directory.appending("tiny.save")
      let saved = try await bed.xl(["save", "tiny", file])
      try #require(saved.status == 0, "\(saved)")
      try await bed.expectNoLeftovers()
      return file
    }

    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
    func badSaveFilesAreRefusedLeavingNothing() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      let good = try await savedTinyGuest(bed)
      let bytes = try readBytes(good)

      func refused(_ arguments: [String], status: Int32 = 1, _ message: String, sourceLocation: SourceLocation = #_sourceLocation)
        async throws
      {
        let result = try await bed.xl(["restore"] + arguments)
        #expect(result.status == status, "\(result)", sourceLocation: sourceLocation)
        #expect(result.stderr.hasSuffix("xl: " + message + "\n"), "\(result.stderr)", sourceLocation: sourceLocation)
        try await bed.expectNoLeftovers(sourceLocation: sourceLocation)
      }

      let config = bed.config("not a save file\n", name: "text")
      try await refused([config], "\(config): File has wrong magic number - corrupt or for a different tool? (not an xl save file)")
      let short = write(bed, "short.save", Array(bytes[0..<40]))
      try await refused([short], "\(short): truncated: the save file's header ends after 40 of 48 bytes")
      var swapped = bytes
      swapped.replaceSubrange(32..<36, with: [1, 2, 3, 4])
      let other = write(bed, "swapped.save", swapped)
      try await refused([other], "\(other): File has wrong byte order: it was written on a host of the other byte order")
      var xen = bytes
      xen.replaceSubrange(36..<40, with: [3, 0, 0, 0])
      let xenFile = write(bed, "xen.save", xen)
      try await refused(
        [xenFile],
        "\(xenFile): a save file of Xen's xl (its state is libxc's stream, flags 0x3): only a Xen host restores it; this toolstack restores QEMU's stream (the local target)")
      var newer = bytes
      newer.replaceSubrange(36..<40, with: [0, 0, 1, 0x80])
      let newerFile = write(bed, "newer.save", newer)
      try await refused([newerFile], "\(newerFile): Savefile has mandatory flag(s) 0x10000 which are not supported; need newer xl")
      // Cut inside the guest's RAM: QEMU's own refusal, quoted.
      let truncated = write(bed, "truncated.save", Array(bytes[0..<(bytes.count / 2)]))
      try await refused(
        [truncated],
        "\(truncated): the device model could not load the saved state: qemu-system-x86_64: error while loading state section id 2(ram); qemu-system-x86_64: load of migration failed: Input/output error")
      // A config for another machine.
      let bigger = bed.tinyGuest("tiny", "memory = 64\nmaxmem = 64")
      try await refused(
        [bigger, good],
        "\(bigger) does not match the domain saved in \(good): memory is 64 MiB here but 32 MiB in the save file; maxmem is 64 MiB here but 32 MiB in the save file")
      // Files that cannot be read.
      let missing = bed.directory.appending("missing.save")
      try await refused([missing], "cannot open \(missing): No such file or directory")
      try await refused([bed.directory.path], "\(bed.directory.path): cannot read the header: Is a directory")

      // Its name taken: refused, exit 4, the running domain untouched.
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest()]).status == 0)
      let running = try await bed.read("/libxl/1/device-model-identity")
      let taken = try await bed.xl(["restore", good])
      #expect(taken.status == 4, "\(taken)")
      #expect(taken.stderr.hasSuffix("xl: a domain named \"tiny\" already exists (domain 1)\n"), "\(taken)")
      #expect(try await bed.read("/libxl/1/device-model-identity") == running)
      #expect(try await bed.children("/local/domain") == ["0", "1"])

      // And the good file still restores (after the name is free).
      #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
      let restored = try await bed.xl(["restore", "-e", good])
      #expect(restored.status == 0, "\(restored)")
      #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
      try await bed.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
    func aSaveThatCannotWriteLeavesTheDomainRunning() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest()]).status == 0)
      let nowhere = bed.directory.appending("no/such/dir/tiny.save")
      let result = try await bed.xl(["save", "tiny", nowhere])
      #expect(result.status == 1, "\(result)")
      #expect(result.stderr == "xl: cannot open \(nowhere) for writing: No such file or directory\n", "\(result)")
      let missing = try await bed.xl(["save", "nosuch", bed.directory.appending("x.save")])
      #expect(missing.status == 1)
      #expect(missing.stderr == "xl: no domain \"nosuch\"\n", "\(missing)")
      #expect(try await bed.read("/libxl/1/run-state") == "running")
      #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
      try await bed.expectNoLeftovers()
    }

    func write(_ bed: XlTestbed, _ name: String, _ bytes: [UInt8]) -> String {
      let path = bed.directory.appending(name)
      let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
      _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      close(fd)
      return path
    }

    func readBytes(_ path: String) throws -> [UInt8] {
      let fd = open(path, O_RDONLY)
      try #require(fd >= 0)
      defer { close(fd) }
      var bytes: [UInt8] = []
      var chunk = [UInt8](repeating: 0, count: 1 << 20)
      while true {
        let n = read(fd, &chunk, chunk.count)
        if n <= 0 { return bytes }
        bytes += chunk[0..<n]
      }
    }
  }
}

/// What a test guest holds in memory and how long it has run, through its serial console.
enum GuestProbe {
  struct Seen: Equatable {
    var marker: String
    var uptime: Double
  }

  /// Writes a marker into the guest's memory (a file on its RAM-backed root), then reads it
  /// back with the uptime.
  static func mark(_ bed: XlTestbed, _ domain: String) async throws -> Seen {
    _ = try await ConsoleSession.exchangeAwaiting(
      bed, domain: domain, send: "echo kept-$((6*7))-$$ > /marker; echo marked-$((3+3))\r", until: "marked-6")
    return try await check(bed, domain)
  }

  /// The marker and the uptime, as the guest reports them now.
  static func check(_ bed: XlTestbed, _ domain: String) async throws -> Seen {
    let seen = try await ConsoleSession.exchangeAwaiting(
      bed, domain: domain, send: "echo m=$(cat /marker)= u=$(cut -d' ' -f1 /proc/uptime)= end-$((2+2))\r", until: "end-4")
    return Seen(marker: value(after: "m=", in: seen), uptime: Double(value(after: "u=", in: seen)) ?? -1)
  }

  /// The text between the last `key` followed by something other than "$" and the next "=".
  static func value(after key: String, in text: String) -> String {
    var found = ""
    var rest = Substring(text)
    while let range = rest.firstRange(of: key) {
      let tail = rest[range.upperBound...]
      if let end = tail.firstIndex(of: "="), tail.first != "$" { found = String(tail[..<end]) }
      rest = tail
    }
    return found
  }

  /// How many times the guest booted, by its console log.
  static func boots(_ bed: XlTestbed, _ name: String) throws -> Int {
    try readFile(bed.logDirectory + "/console/guest-\(name).log").components(separatedBy: "xenlight-guest: booted").count - 1
  }
}
