#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
@testable import XenLight

@Suite struct ToolstackPathsTests {
  private func write(_ path: String, _ text: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
    close(fd)
  }

  private func read(_ path: String) -> String? { try? FileIO.readText(path) }

  @Test func firstLogNeedsNoRotation() throws {
    let dir = TemporaryDirectory()
    defer { dir.remove() }
    let paths = ToolstackPaths(runDirectory: dir.appending("run"), logDirectory: dir.appending("log/xen"), libDirectory: dir.appending("lib"))
    #expect(try paths.rotatedDeviceModelLog(name: "g") == dir.appending("log/xen/qemu-dm-g.log"))
    #expect(access(dir.appending("log/xen"), W_OK) == 0)
  }

  @Test func logsRotateLikeLibxlKeepingTen() throws {
    let dir = TemporaryDirectory()
    defer { dir.remove() }
    let paths = ToolstackPaths(runDirectory: dir.path, logDirectory: dir.path, libDirectory: dir.path)
    let base = dir.appending("qemu-dm-g.log")
    for run in 1...12 {
      let log = try paths.rotatedDeviceModelLog(name: "g")
      #expect(log == base)
      write(log, "run \(run)")
    }
    #expect(read(base) == "run 12")
    #expect(read(base + ".1") == "run 11")
    #expect(read(base + ".10") == "run 2")
    #expect(read(base + ".11") == nil)
  }

  @Test func unwritableLogDirectoryIsAnIOError() {
    let paths = ToolstackPaths(runDirectory: "/tmp", logDirectory: "/proc/no/such", libDirectory: "/tmp")
    #expect(throws: XenLightError(.io, "cannot create /proc/no: No such file or directory", errno: ENOENT)) {
      _ = try paths.rotatedDeviceModelLog(name: "g")
    }
  }
}
