#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import InteropSupport
import TestSupport
import XenStore

/// A restricted device model (`dm_restrict`, `device_model_user`) through `xl` only, with
/// real users this suite creates and removes (uids 231072…, names `xldm-…`): QEMU's
/// confinement as /proc shows it, kill by uid, refusals, passed files, a host file refused.
extension GuestSuites {
  @Suite(.serialized) struct DeviceModelRestrictTests {
    static let peers: [Peer] = [.qemu]

    /// A system user with its own group, removed by `remove()`.
    struct TestUser {
      let name: String
      let uid: UInt32
      let gid: UInt32

      init(_ name: String, uid: UInt32) async throws {
        _ = try await run(["/usr/sbin/userdel", name])
        let added = try await run(["/usr/sbin/useradd", "--system", "--uid", "\(uid)", "--user-group", "--no-create-home",
                             "--shell", "/usr/sbin/nologin", name])
        try #require(added.status == 0, "\(added)")
        self.name = name
        self.uid = uid
        let line = try await run(["/usr/bin/getent", "passwd", name]).stdout.split(separator: ":")
        gid = try #require(UInt32(line[3]))
      }

      func remove() { runInCleanup(["/usr/sbin/userdel", name]) }
    }

    /// A testbed whose run directory the device model's user can reach (chroot needs it).
    func testbed() throws -> XlTestbed {
      let bed = try XlTestbed()
      chmod(bed.directory.path, 0o755)
      return bed
    }

    func status(_ pid: Int32) throws -> [String: String] {
      var fields: [String: String] = [:]
      for line in try readFile("/proc/\(pid)/status").split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        fields[String(line[..<colon])] = String(line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " }.reversed())
      }
      return fields
    }

    func link(_ path: String) -> String {
      var buffer = [CChar](repeating: 0, count: 4096)
      let n = readlink(path, &buffer, buffer.count - 1)
      return n < 0 ? "" : String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Starts `argv` in the background as uid/gid (setpriv), returning its pid (our child).
    func background(as uid: UInt32, _ gid: UInt32, _ argv: [String]) throws -> pid_t {
      let full = ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups"] + argv
      var pid: pid_t = 0
      let cArgs = full.map { strdup($0) } + [nil]
      defer { for a in cArgs { free(a) } }
      let rc = posix_spawn(&pid, full[0], nil, nil, cArgs, environ)
      try #require(rc == 0)
      return pid
    }

    @Test(.enabled(if: TestEnvironment.shouldRun(peers)))
    func confinedAsProcShowsItAndKilledByUID() async throws {
      let user = try await TestUser("xldm-a", uid: 231_101)
      defer { user.remove() }
      let other = try await TestUser("xldm-b", uid: 231_102)
      defer { other.remove() }
      let bed = try testbed()
      defer { bed.stop() }
      let created = try await bed.xl(["create", "-q", bed.tinyGuest("tiny", "device_model_user = \"xldm-a\"")])
      try #require(created.status == 0, "\(created)")
      let qemu = try #require(try await bed.read("/libxl/1/device-model-identity").flatMap(ProcessIdentity.init))
      #expect(try await bed.read("/local/domain/1/image/device-model-kill-uid") == "231101")

      let fields = try status(qemu.pid)
      #expect(fields["Uid"] == "231101\t231101\t231101\t231101")
      #expect(fields["Gid"] == "\(user.gid)\t\(user.gid)\t\(user.gid)\t\(user.gid)")
      #expect(fields["Groups"] == "\(user.gid)")
      #expect(fields["CapEff"] == "0000000000000000")
      #expect(fields["CapPrm"] == "0000000000000000")
      #expect(fields["Seccomp"] == "2")
      let root = bed.runDirectory + "/qemu-root-1"
      #expect(link("/proc/\(qemu.pid)/root") == root)
      var info = stat()
      #expect(stat(root, &info) == 0 && info.st_mode & 0o7777 == 0o001 && info.st_uid == 0)
      for ns in ["mnt", "ipc"] {
        #expect(link("/proc/\(qemu.pid)/ns/\(ns)") != link("/proc/self/ns/\(ns)"), "\(ns)")
      }
      let limits = try readFile("/proc/\(qemu.pid)/limits")
      for (name, value) in [("Max file size", "262144"), ("Max core file size", "0"), ("Max locked memory", "0"),
                            ("Max file locks", "0"), ("Max msgqueue size", "0")] {
        let line = limits.split(separator: "\n").first { $0.hasPrefix(name) }.map(String.init) ?? ""
        let words = line.dropFirst(name.count).split(separator: " ")
        #expect(words.prefix(2) == [Substring(value), Substring(value)], "\(line)")
      }

      // A stray process of the device model's uid dies with the domain; another uid's lives.
      let stray = try background(as: user.uid, user.gid, ["/bin/sleep", "600"])
      let bystander = try background(as: other.uid, other.gid, ["/bin/sleep", "600"])
      defer {
        kill(bystander, SIGKILL)
        var status: Int32 = 0
        waitpid(bystander, &status, 0)
      }
      try await Task.sleep(for: .milliseconds(100))  // setpriv has exec'd sleep
      let destroyed = try await bed.xl(["destroy", "tiny"])
      #expect(destroyed.status == 0, "\(destroyed)")
      var status: Int32 = 0
      #expect(waitpid(stray, &status, 0) == stray)
      #expect(status & 0x7f == SIGKILL, "stray ended with status \(status)")
      #expect(isAlive(bystander))
      #expect(!isAlive(qemu.pid))
      #expect(access(root, F_OK) != 0)
      try await bed.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun(peers)))
    func missingUsersAndRootRefused() async throws {
      let bed = try testbed()
      defer { bed.stop() }
      let missing = try await bed.xl(["create", "-q", bed.tinyGuest("tiny", "device_model_user = \"xldm-nobody-here\"")])
      #expect(missing.status == 1)
      #expect(missing.stderr == "xl: device_model_user: no user \"xldm-nobody-here\" in /etc/passwd to run the device model as; create it with: adduser --system --group --no-create-home xldm-nobody-here\n", "\(missing)")
      let root = try await bed.xl(["create", "-q", bed.tinyGuest("tiny", "device_model_user = \"root\"")])
      #expect(root.status == 1)
      #expect(root.stderr == "xl: device_model_user: \"root\" has uid 0; the device model must not run as root\n", "\(root)")
      if (try? await run(["/usr/bin/getent", "passwd", "xen-qemuuser-range-base"]))?.status != 0 {
        let range = try await bed.xl(["create", "-q", bed.tinyGuest("tiny", "dm_restrict = 1")])
        #expect(range.status == 1)
        #expect(range.stderr == "xl: dm_restrict: no user \"xen-qemuuser-range-base\" in /etc/passwd to run the device model as (domain N runs as its uid + N); create it with: adduser --system --uid 131072 --group --no-create-home xen-qemuuser-range-base\n", "\(range)")
      }
      try await bed.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun(peers)))
    func rangeUserAndUIDCollisionRefused() async throws {
      // The range's base user exists only for this test (if the host has one, skip).
      guard (try? await run(["/usr/bin/getent", "passwd", "xen-qemuuser-range-base"]))?.status != 0 else { return }
      let base = try await TestUser("xen-qemuuser-range-base", uid: 231_200)
      defer { base.remove() }
      let named = try await TestUser("xldm-c", uid: 231_202)
      defer { named.remove() }
      let bed = try testbed()
      defer { bed.stop() }
      let first = try await bed.xl(["create", "-q", bed.tinyGuest("one", "dm_restrict = 1")])
      try #require(first.status == 0, "\(first)")
      #expect(try await bed.read("/local/domain/1/image/device-model-kill-uid") == "231201")
      // Domain 2 would run as 231202 too: the named user's uid is taken by the range.
      _ = try await bed.xl(["create", "-q", bed.tinyGuest("two", "device_model_user = \"xldm-c\"")])
      let clash = try await bed.xl(["create", "-q", bed.tinyGuest("three", "dm_restrict = 1\ndevice_model_user = \"xldm-c\"")])
      #expect(clash.status == 1)
      #expect(clash.stderr == "xl: device_model_user \"xldm-c\": uid 231202 already runs domain 2's device model (\"two\"); each domain's device model needs a uid of its own\n", "\(clash)")
      #expect(try await bed.xl(["destroy", "two"]).status == 0)
      #expect(try await bed.xl(["destroy", "one"]).status == 0)
      try await bed.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun(peers)))
    func passedDiskUsedAndHostFileRefusedInQEMUsWords() async throws {
      let user = try await TestUser("xldm-d", uid: 231_301)
      defer { user.remove() }
      let bed = try testbed()
      defer { bed.stop() }
      // Only root may open either file: the device model gets the disk passed in.
      let secret = bed.directory.appending("secret")
      mkdir(secret, 0o700)
      let disk = secret + "/disk.img"
      let fd = open(disk, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
      ftruncate(fd, 128 * 1024)
      close(fd)
      let config = bed.tinyGuest("tiny", "device_model_user = \"xldm-d\"\ndisk = [ \"\(disk),raw,hda,w\" ]")
      let created = try await bed.xl(["create", "-q", config])
      try #require(created.status == 0, "\(created)")
      let qemu = try #require(try await bed.read("/libxl/1/device-model-identity").flatMap(ProcessIdentity.init))
      let arguments = try readFile("/proc/\(qemu.pid)/cmdline").split(separator: "\0")
      #expect(arguments.contains("driver=raw,node-name=xl-hda-5,read-only=off,file.driver=file,file.filename=/dev/fdset/5"), "\(arguments)")
      let fds = (0..<64).map { link("/proc/\(qemu.pid)/fd/\($0)") }
      #expect(fds.contains(disk), "\(fds)")
      #expect(try await bed.xl(["destroy", "tiny"]).status == 0)

      // A big writable disk is refused before QEMU runs: it could not write past 256 KiB.
      let big = secret + "/big.img"
      let bigFD = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
      ftruncate(bigFD, 1 << 20)
      close(bigFD)
      let refused = try await bed.xl(["create", "-q", bed.tinyGuest("tiny", "device_model_user = \"xldm-d\"\ndisk = [ \"\(big),raw,hda,w\" ]")])
      #expect(refused.status == 1)
      #expect(refused.stderr == "xl: disk hda: \(big) is writable and 1048576 bytes; a restricted device model may not write past 256 KiB of a file (RLIMIT_FSIZE, as libxl): make the disk read-only or use a block device\n", "\(refused)")

      // A host file named in device_model_args: QEMU opens it as its user, and says no.
      let host = try await bed.xl(["create", "-q", bed.tinyGuest("tiny", "device_model_user = \"xldm-d\"\ndevice_model_args = [ \"-drive\", \"file=\(disk),format=raw,if=virtio\" ]")])
      #expect(host.status == 3, "\(host)")
      #expect(host.stderr.contains("Could not open '\(disk)': Permission denied"), "\(host)")
      try await bed.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun(GuestSuites.GuestLifecycleTests.linuxPeers)))
    func restrictedLinuxGuestBootsAndShutsDown() async throws {
      let user = try await TestUser("xldm-e", uid: 231_401)
      defer { user.remove() }
      let bed = try testbed()
      defer { bed.stop() }
      let config = bed.linuxGuest("device_model_user = \"xldm-e\"")
      let created = try await bed.xl(["create", "-q", config])
      try #require(created.status == 0, "\(created)")
      let answer = try await ConsoleSession.exchangeAwaiting(bed, domain: "linux", send: "echo hello-$((6*7))\r", until: "hello-42")
      #expect(answer.contains("hello-42"), "\(answer)")
      #expect(try await bed.xl(["pause", "linux"]).status == 0)
      #expect(try await bed.xl(["unpause", "linux"]).status == 0)
      let shutdown = try await bed.xl(["shutdown", "-w", "linux"])
      #expect(shutdown.status == 0, "\(shutdown)")
      try await bed.expectNoLeftovers()
      #expect(access(bed.runDirectory + "/qemu-root-1", F_OK) != 0)
    }

    /// The monitor's actions on a confined guest: a reboot re-creates it confined (the old uid
    /// free again, its chroot fresh), and a panic with on_crash destroy leaves nothing.
    @Test(.enabled(if: TestEnvironment.shouldRun(GuestSuites.GuestLifecycleTests.linuxPeers)))
    func restrictedLinuxGuestRebootsAndItsPanicIsDestroyed() async throws {
      let user = try await TestUser("xldm-f", uid: 231_402)
      defer { user.remove() }
      let bed = try testbed()
      defer { bed.stop() }
      let config = bed.linuxGuest("device_model_user = \"xldm-f\"\non_crash = \"destroy\"")
      try #require(try await bed.xl(["create", "-q", config]).status == 0)
      let first = try await bed.read("/libxl/1/device-model-identity")
      _ = try await ConsoleSession.exchangeAwaiting(bed, domain: "linux", send: "echo one-$((0+1))\r", until: "one-1")
      #expect(try await bed.xl(["reboot", "linux"]).status == 0)
      try await bed.waitUntil("/libxl/2/run-state", is: "running")
      let again = try #require(try await bed.read("/libxl/2/device-model-identity").flatMap(ProcessIdentity.init))
      #expect(again.description != first)
      #expect(try readFile("/proc/\(again.pid)/status").contains("Uid:\t231402"), "the new device model is confined too")
      let second = try await ConsoleSession.exchangeAwaiting(bed, domain: "linux", send: "echo two-$((1+1))\r", until: "two-2")
      #expect(second.contains("two-2"), "\(second)")
      // More console output than the device model may write to a file (RLIMIT_FSIZE, 256 KiB):
      // the log stops growing there, and the device model lives on.
      let chatty = try await ConsoleSession.exchangeAwaiting(
        bed, domain: "linux", send: "seq 1 50000; echo done-$((40+2))\r", until: "done-42")
      #expect(chatty.contains("done-42"))
      #expect(isAlive(again.pid), "the device model outlived its console log's limit")
      var info = stat()
      #expect(stat(bed.logDirectory + "/console/guest-linux.log", &info) == 0 && info.st_size == 256 * 1024, "\(info.st_size)")
      _ = try await ConsoleSession.exchangeAwaiting(bed, domain: "linux", send: "echo c > /proc/sysrq-trigger\r", until: "Kernel panic")
      try await bed.waitUntil("/local/domain/2/name", is: nil)
      try await bed.expectNoLeftovers()
      #expect(access(bed.runDirectory + "/qemu-root-1", F_OK) != 0)
      #expect(access(bed.runDirectory + "/qemu-root-2", F_OK) != 0)
      let log = try readFile(bed.logDirectory + "/xl-linux.log")
      #expect(log.contains("Action for shutdown reason code 1 is restart"), "\(log)")
      #expect(log.contains("Action for shutdown reason code 3 is destroy"), "\(log)")
    }
  }
}
