#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import InteropSupport
import TestSupport
import XenStore

/// Devices that change while a real Linux guest runs, through `xl` only: disks attached and
/// detached, a CD inserted, memory ballooned, a vCPU added; a restart that keeps them; the
/// same by descriptor under a confined device model; bad input refused with nothing changed.
///
/// The guest learns of a hot-added device from an ACPI notification it handles in its own
/// time, so the guest-side commands wait for the device node (or the balloon) themselves.
extension GuestSuites {
  @Suite(.serialized) struct GuestDeviceTests {
    static let peers: [Peer] = [.qemu, .linuxGuest, .xorriso]

    /// Runs `command` in the guest's shell; returns what the console showed up to the end marker.
    func guest(_ bed: XlTestbed, _ domain: String, _ command: String) async throws -> String {
      let output = try await ConsoleSession.exchangeAwaiting(bed, domain: domain, send: command + "; echo DO$((6*7))NE\r", until: "DO42NE")
      return output
    }

    /// The number after `label` in the guest's output (`label` printed by the command, not echoed).
    func number(after label: String, in output: String) -> Int? {
      guard let range = output.range(of: label) else { return nil }
      return Int(output[range.upperBound...].prefix { $0.isNumber })
    }

    /// A small ISO 9660 image holding hello.txt (Debian's xorriso).
    func iso(_ bed: XlTestbed) async throws -> String {
      let dir = bed.directory.appending("iso-root")
      mkdir(dir, 0o755)
      let fd = open(dir + "/hello.txt", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
      _ = write(fd, "hello from the cd\n", 18)
      close(fd)
      let path = bed.directory.appending("cd.iso")
      let made = try await run(["/usr/bin/xorriso", "-as", "mkisofs", "-quiet", "-o", path, dir])
      try #require(made.status == 0, "\(made)")
      return path
    }

    func image(_ path: String, bytes: Int) {
      let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
      ftruncate(fd, off_t(bytes))
      close(fd)
    }

    func head(_ path: String, _ count: Int) -> String {
      let fd = open(path, O_RDONLY)
      defer { close(fd) }
      var buffer = [UInt8](repeating: 0, count: count)
      let n = read(fd, &buffer, count)
      return String(decoding: buffer[..<max(0, n)], as: UTF8.self)
    }

    static let memoryKiB = "echo MEM$((1))K $(awk '/MemTotal/ {print $2}' /proc/meminfo)"
    static let waitForVda = "until [ -e /dev/vda ]; do sleep 0.1; done"

    func config(_ bed: XlTestbed, _ name: String, _ extra: String = "") -> String {
      bed.linuxGuest(name: name, """
        maxmem = 256
        vcpus = 1
        maxvcpus = 2
        on_reboot = "restart"
        disk = [ ',raw,hdc:cdrom,r' ]
        \(extra)
        """)
    }

    @Test(.enabled(if: TestEnvironment.shouldRun(peers)))
    func disksCDMemoryAndVcpusChangeWhileItRunsAndARestartKeepsThem() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      let disk = bed.directory.appending("data.img")
      image(disk, bytes: 16 << 20)
      let cd = try await iso(bed)
      let created = try await bed.xl(["create", "-q", config(bed, "devs")])
      try #require(created.status == 0, "\(created)")
      let header = "Vdev  BE  handle state evt-ch ring-ref BE-path                       \n"
      let cdLine = "5632  0   1      4     -1     -1       /local/domain/0/backend/vbd/1/5632\n"
      let diskLine = "51728 0   1      4     -1     -1       /local/domain/0/backend/vbd/1/51728\n"
      #expect(try await bed.xl(["block-list", "devs"]).stdout == header + cdLine)
      let booted = try await guest(bed, "devs", Self.memoryKiB)
      let bootMemory = try #require(number(after: "MEM1K ", in: booted), "\(booted)")

      // A disk attached: the guest sees it and what it writes reaches the host file.
      let attached = try await bed.xl(["block-attach", "devs", "\(disk),raw,xvdb,rw"])
      #expect(attached.status == 0 && attached.stderr == "", "\(attached)")
      #expect(try await bed.xl(["block-list", "devs"]).stdout == header + cdLine + diskLine)
      #expect(try await bed.read("/local/domain/0/backend/vbd/1/51728/params") == "raw:\(disk)")
      #expect(try await bed.read("/local/domain/1/device/vbd/51728/backend") == "/local/domain/0/backend/vbd/1/51728")
      let wrote = try await guest(bed, "devs", "\(Self.waitForVda); echo guest-wrote-$((6*7)) > /dev/vda; sync")
      #expect(head(disk, 15) == "guest-wrote-42\n", "\(wrote)")

      // Bad input: each refused with its message, nothing changed.
      let duplicate = try await bed.xl(["block-attach", "devs", "\(disk),raw,xvdb,rw"])
      #expect(duplicate.status == 1)
      #expect(duplicate.stderr == "xl: domain 1 (devs) already has a disk xvdb (devid 51728)\n", "\(duplicate)")
      let badSpec = try await bed.xl(["block-attach", "devs", "\(disk),bogus,xvdc"])
      #expect(badSpec.status == 1)
      #expect(badSpec.stderr == "xl: invalid disk spec \"\(disk),bogus,xvdc\": unknown disk format \"bogus\" (expected raw, qcow, qcow2, vhd, qed)\n")
      let missing = try await bed.xl(["block-attach", "devs", "\(disk).missing,raw,xvdc,rw"])
      #expect(missing.status == 1)
      #expect(missing.stderr == "xl: disk xvdc: cannot open \(disk).missing: No such file or directory\n", "\(missing)")
      let unknownDevice = try await bed.xl(["block-detach", "devs", "xvdz"])
      #expect(unknownDevice.status == 1)
      #expect(unknownDevice.stderr == "xl: domain 1 (devs): device xvdz not connected\n")
      let unknownDomain = try await bed.xl(["block-attach", "nosuch", "\(disk),raw,xvdc,rw"])
      #expect(unknownDomain.status == 1)
      #expect(unknownDomain.stderr == "xl: no domain \"nosuch\"\n")
      let overMemory = try await bed.xl(["mem-set", "devs", "300m"])
      #expect(overMemory.status == 1)
      #expect(overMemory.stderr == "xl: cannot set domain 1 (devs)'s memory to 300 MiB: more than its maximum, 256 MiB (maxmem; xl mem-max raises it)\n")
      let overVcpus = try await bed.xl(["vcpu-set", "devs", "3"])
      #expect(overVcpus.status == 1)
      #expect(overVcpus.stderr == "xl: cannot set domain 1 (devs) to 3 vCPUs: its maximum is 2 (maxvcpus)\n")
      #expect(try await bed.xl(["block-list", "devs"]).stdout == header + cdLine + diskLine)
      #expect(try await bed.xl(["list", "devs"]).stdout.contains(" 1   128     1 "))

      // A CD inserted is readable. The first command after a medium change gets the drive's
      // "medium may have changed" (as a real drive's): the dd takes it.
      let inserted = try await bed.xl(["cd-insert", "devs", "hdc", cd])
      #expect(inserted.status == 0, "\(inserted)")
      let read = try await guest(
        bed, "devs", "dd if=/dev/sr0 of=/dev/null bs=2048 count=1 2>/dev/null; mkdir -p /cd; mount -t iso9660 -o ro /dev/sr0 /cd && cat /cd/hello.txt; umount /cd")
      #expect(read.contains("hello from the cd"), "\(read)")

      // Memory lowered by the balloon, a vCPU added and brought online by the guest.
      #expect(try await bed.xl(["mem-set", "devs", "96m"]).status == 0)
      let ballooned = try await guest(
        bed, "devs", "while [ $(awk '/MemTotal/ {print $2}' /proc/meminfo) -ge \(bootMemory) ]; do sleep 0.1; done; \(Self.memoryKiB)")
      let lowered = try #require(number(after: "MEM1K ", in: ballooned), "\(ballooned)")
      #expect(lowered <= bootMemory - 30 * 1024, "\(bootMemory) KiB → \(lowered) KiB")
      #expect(try await bed.xl(["vcpu-set", "devs", "2"]).status == 0)
      let online = try await guest(
        bed, "devs",
        "until [ -e /sys/devices/system/cpu/cpu1/online ]; do sleep 0.1; done; echo 1 > /sys/devices/system/cpu/cpu1/online; echo CPUS$((1)) $(grep -c ^processor /proc/cpuinfo)")
      #expect(number(after: "CPUS1 ", in: online) == 2, "\(online)")
      #expect(try await bed.xl(["list", "devs"]).stdout.contains(" 1    96     2 "))

      // Maxima: mem-max within the room QEMU has and above the target; vCPUs kept under TCG.
      let roomless = try await bed.xl(["mem-max", "devs", "512m"])
      #expect(roomless.status == 1)
      #expect(roomless.stderr == "xl: cannot set domain 1 (devs)'s maximum memory to 512 MiB: its device model has room for 256 MiB (maxmem at create)\n")
      let belowTarget = try await bed.xl(["mem-max", "devs", "64m"])
      #expect(belowTarget.stderr == "xl: cannot set domain 1 (devs)'s maximum memory to 64 MiB: less than its memory, 96 MiB (xl mem-set lowers it)\n")
      #expect(try await bed.xl(["mem-max", "devs", "200m"]).status == 0)
      let overNewMaximum = try await bed.xl(["mem-set", "devs", "220"])
      #expect(overNewMaximum.stderr == "xl: cannot set domain 1 (devs)'s memory to 220 MiB: more than its maximum, 200 MiB (maxmem; xl mem-max raises it)\n")
      let badSize = try await bed.xl(["mem-set", "devs", "12q"])
      #expect(badSize.status == 1 && badSize.stderr == "xl: invalid memory size: 12q\n")
      let fewer = try await bed.xl(["vcpu-set", "devs", "1"])
      #expect(fewer.status == 1)
      #expect(
        fewer.stderr
          == "xl: cannot take domain 1 (devs) down to 1 vCPUs: QEMU under TCG cannot add a vCPU back once removed (it aborts), so xl does not remove them; the guest can take one offline (echo 0 > /sys/devices/system/cpu/cpuN/online)\n")
      #expect(try await bed.xl(["list", "devs"]).stdout.contains(" 1    96     2 "))

      // A restart (the guest reboots, on_reboot = "restart") comes back with all of it.
      let first = try await bed.read("/libxl/1/device-model-identity")
      _ = try await ConsoleSession.exchangeAwaiting(bed, domain: "devs", send: "reboot -f\r", until: "reboot: Restarting")
      try await bed.waitUntil("/libxl/1/device-model-identity") { $0 != nil && $0 != first }
      try await bed.waitUntil("/libxl/1/run-state", is: "running")
      #expect(try await bed.xl(["block-list", "devs"]).stdout == header + cdLine + diskLine)
      let again = try await guest(
        bed, "devs",
        "\(Self.waitForVda); head -c 15 /dev/vda; \(Self.memoryKiB); echo CPUS$((1)) $(grep -c ^processor /proc/cpuinfo); mkdir -p /cd; mount -t iso9660 -o ro /dev/sr0 /cd && cat /cd/hello.txt")
      #expect(again.contains("guest-wrote-42"), "\(again)")
      #expect(again.contains("hello from the cd"), "\(again)")
      #expect(number(after: "CPUS1 ", in: again) == 2, "\(again)")
      #expect((number(after: "MEM1K ", in: again) ?? .max) <= bootMemory - 30 * 1024, "\(again)")

      // A detach the guest does not complete (paused): the timeout, then a clear error; the
      // disk stays. Once the guest has let go, a second detach finishes.
      #expect(try await bed.xl(["pause", "devs"]).status == 0)
      let stuck = try await bed.xl(["block-detach", "devs", "xvdb"])
      #expect(stuck.status == 9)
      #expect(
        stuck.stderr
          == "xl: domain 1 (devs) did not release xvdb within 10 s; it stays attached. The guest must eject it (ACPI PCI hotplug); run xl block-detach again once it has, or xl block-detach -f to drop it from the records now\n")
      #expect(try await bed.xl(["block-list", "devs"]).stdout == header + cdLine + diskLine)
      #expect(try await bed.xl(["unpause", "devs"]).status == 0)
      let detached = try await bed.xl(["block-detach", "devs", "xvdb"])
      #expect(detached.status == 0, "\(detached)")
      #expect(try await bed.xl(["block-list", "devs"]).stdout == header + cdLine)
      let gone = try await guest(bed, "devs", "ls /dev/vda")
      #expect(gone.contains("No such file or directory"), "\(gone)")
      #expect(try await bed.read("/local/domain/0/backend/vbd/1/51728") == nil)

      // The CD ejected: the drive is empty.
      #expect(try await bed.xl(["cd-eject", "devs", "hdc"]).status == 0)
      #expect(try await bed.read("/local/domain/0/backend/vbd/1/5632/params") == "empty:")
      #expect(try await bed.xl(["destroy", "devs"]).status == 0)
      #expect(try await bed.children("/local/domain/0/backend/vbd") == [])
      try await bed.expectNoLeftovers()
    }

    @Test(.enabled(if: TestEnvironment.shouldRun(peers)))
    func aConfinedDeviceModelGetsEveryImageByDescriptor() async throws {
      let user = try await DeviceModelRestrictTests.TestUser("xldm-i17", uid: 231_117)
      defer { user.remove() }
      let bed = try XlTestbed()
      defer { bed.stop() }
      chmod(bed.directory.path, 0o755)
      // Only root may open the images: the device model gets them passed.
      let secret = bed.directory.appending("secret")
      mkdir(secret, 0o700)
      let disk = secret + "/small.img"
      image(disk, bytes: 128 * 1024)
      let cd = try await iso(bed)
      rename(cd, secret + "/cd.iso")
      let created = try await bed.xl(["create", "-q", config(bed, "confined", "device_model_user = \"xldm-i17\"")])
      try #require(created.status == 0, "\(created)")
      let qemu = try #require(try await bed.read("/libxl/1/device-model-identity").flatMap(ProcessIdentity.init))

      let attached = try await bed.xl(["block-attach", "confined", "\(disk),raw,xvdb,rw"])
      #expect(attached.status == 0, "\(attached)")
      let wrote = try await guest(bed, "confined", "\(Self.waitForVda); echo confined-$((6*7)) > /dev/vda; sync")
      #expect(head(disk, 12) == "confined-42\n", "\(wrote)")

      let big = secret + "/big.img"
      image(big, bytes: 1 << 20)
      let refused = try await bed.xl(["block-attach", "confined", "\(big),raw,xvdc,rw"])
      #expect(refused.status == 1)
      #expect(
        refused.stderr
          == "xl: disk xvdc: \(big) is writable and 1048576 bytes; a restricted device model may not write past 256 KiB of a file (RLIMIT_FSIZE, as libxl): make the disk read-only or use a block device\n")
      let fds = (0..<64).map { fd -> String in
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/\(qemu.pid)/fd/\(fd)", &buffer, buffer.count - 1)
        return n < 0 ? "" : String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
      }
      #expect(fds.contains(disk) && !fds.contains(big), "\(fds)")

      #expect(try await bed.xl(["cd-insert", "confined", "hdc", secret + "/cd.iso"]).status == 0)
      let read = try await guest(
        bed, "confined", "dd if=/dev/sr0 of=/dev/null bs=2048 count=1 2>/dev/null; mkdir -p /cd; mount -t iso9660 -o ro /dev/sr0 /cd && cat /cd/hello.txt")
      #expect(read.contains("hello from the cd"), "\(read)")
      #expect(try await bed.xl(["mem-set", "confined", "100m"]).status == 0)
      #expect(try await bed.xl(["vcpu-set", "confined", "2"]).status == 0)
      let online = try await guest(
        bed, "confined",
        "until [ -e /sys/devices/system/cpu/cpu1/online ]; do sleep 0.1; done; echo 1 > /sys/devices/system/cpu/cpu1/online; echo CPUS$((1)) $(grep -c ^processor /proc/cpuinfo)")
      #expect(number(after: "CPUS1 ", in: online) == 2, "\(online)")
      // Forced: the records go at once; the guest lets go in its own time.
      let forced = try await bed.xl(["block-detach", "-f", "confined", "xvdb"])
      #expect(forced.status == 0, "\(forced)")
      #expect(try await bed.read("/local/domain/0/backend/vbd/1/51728") == nil)
      let released = try await guest(bed, "confined", "while [ -e /dev/vda ]; do sleep 0.1; done; echo VDA$((1))GONE")
      #expect(released.contains("VDA1GONE"), "\(released)")
      #expect(try await bed.xl(["destroy", "confined"]).status == 0)
      try await bed.expectNoLeftovers()
    }
  
    /// QEMU's IDE bus takes no hotplug: an HVM guest's boot disk `hda` cannot leave while it
    /// runs, in QEMU's words, and nothing changes.
    @Test(.enabled(if: TestEnvironment.shouldRun([.qemu])))
    func anIDEDiskStaysWhileTheGuestRuns() async throws {
      let bed = try XlTestbed()
      defer { bed.stop() }
      let disk = bed.directory.appending("ide.img")
      image(disk, bytes: 1 << 20)
      try #require(try await bed.xl(["create", "-q", bed.tinyGuest("tiny", "disk = [ '\(disk),raw,hda,rw' ]")]).status == 0)
      let refused = try await bed.xl(["block-detach", "tiny", "hda"])
      #expect(refused.status == 3)
      #expect(refused.stderr == "xl: hda: QEMU refused: Bus 'ide.0' does not support hotplugging\n", "\(refused)")
      #expect(try await bed.read("/local/domain/0/backend/vbd/1/768/params") == "raw:\(disk)")
      #expect(try await bed.xl(["destroy", "tiny"]).status == 0)
    }
}
}
