#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import TestSupport
import XenStore

/// One fault test's world: an `XlTestbed` whose xenstored is the built executable, started by
/// the test (so its pid and descriptors can be watched), plus the device models and the
/// process checks the fault tests share.
package final class FaultBed: @unchecked Sendable {
  package let bed: XlTestbed
  package private(set) var xenstored: pid_t

  package init() async throws {
    bed = try XlTestbed(xenstored: false)
    xenstored = try Self.startXenstored(bed)
    try await settle()
  }

  /// One client come and gone, so that xenstored's descriptor count is its resting one: the
  /// same for 250 ms (xenstored may not have seen that client's end yet when `xl` exits).
  private func settle() async throws {
    _ = try await bed.xl(["list"])
    var last = xenstoredDescriptors
    var unchanged = 0
    for _ in 0..<500 where unchanged < 25 {
      try await Task.sleep(for: .milliseconds(10))
      let now = xenstoredDescriptors
      unchanged = now == last ? unchanged + 1 : 0
      last = now
    }
  }

  package static func startXenstored(_ bed: XlTestbed) throws -> pid_t {
    try spawnConfirmed(
      BuiltProducts.path("xenstored"), ["-N", "--socket", bed.socketPath, "--ready-fd", "3"],
      log: bed.directory.appending("xenstored.err"))
  }

  /// Starts a fresh xenstored at the same socket (after the test killed the first).
  package func restartXenstored() async throws {
    await waitForExit(xenstored, seconds: 10)
    xenstored = try Self.startXenstored(bed)
    try await settle()
  }

  package func stop() {
    kill(xenstored, SIGTERM)
    reap(xenstored, seconds: 10)
    bed.stop()
  }

  /// The open descriptors of xenstored.
  package var xenstoredDescriptors: Int { descriptorCount(xenstored) }

  /// Real QEMU (`device_model_override`) whose QMP socket is moved where xl does not look, so
  /// it runs and never confirms: the create stays in its wait as long as the test needs.
  package func unconfirmedQEMU() -> String {
    let path = bed.directory.appending("hidden-qmp-qemu")
    _ = bed.config(
      """
      #!/bin/sh
      # Real QEMU whose QMP socket xl never finds.
      for arg in "$@"; do
        shift
        case "$arg" in socket,id=libxl-cmd,fd=*) arg="socket,id=libxl-cmd,path=\(bed.directory.path)/hidden-qmp,server=on,wait=off" ;; esac
        set -- "$@" "$arg"
      done
      exec /usr/bin/qemu-system-x86_64 "$@"

      """, name: "hidden-qmp-qemu")
    chmod(path, 0o755)
    return path
  }

  /// QEMU's QMP socket under `unconfirmedQEMU`: it exists once QEMU is really up.
  package var hiddenQMPSocket: String { bed.directory.appending("hidden-qmp") }

  /// A device model that confirms at once through xenstore (as QEMU does under Xen) and then
  /// sleeps, named after this test's directory so the process scan finds it.
  package func fastDeviceModel() -> String {
    let path = bed.directory.appending("fast-dm")
    _ = bed.config(
      """
      #!/bin/bash
      # Confirms through /local/domain/0/device-model/<domid>/state, then waits to be stopped.
      # The domain is the one whose vm is this -uuid.
      while [ $# -gt 0 ]; do [ "$1" = -uuid ] && uuid=$2; shift; done
      for d in $(/usr/bin/xenstore-list /local/domain); do
        [ "$(/usr/bin/xenstore-read /local/domain/$d/vm 2>/dev/null)" = "/vm/$uuid" ] && domid=$d
      done
      /usr/bin/xenstore-write "/local/domain/0/device-model/$domid/state" running || exit 1
      exec -a "$0" sleep 600

      """, name: "fast-dm")
    chmod(path, 0o755)
    return path
  }

  /// Starts `xl ARGUMENTS` in the background; its stderr goes to the returned path.
  package func startXL(_ arguments: [String]) throws -> (pid: pid_t, stderr: String) {
    let output = bed.directory.appending("xl.out")
    let pid = try spawnBackground([BuiltProducts.path("xl")] + arguments, environment: bed.environment, output: output)
    return (pid, output + ".err")
  }

  /// Live processes (not zombies) other than xenstored whose command line mentions this
  /// test's directory: `xl` and its startup monitor (the config path), QEMU (its QMP path),
  /// the scripted device models.
  package func strayProcesses() -> [pid_t] {
    processes(mentioning: bed.directory.path + "/").filter { $0 != xenstored }
  }

  /// Waits (60 s at most) until `strayProcesses()` is empty: killing a caller reaches its
  /// device model through the monitor, which takes a moment. Returns what is left.
  package func waitForNoStrayProcesses() async -> [String] {
    for _ in 0..<6000 {
      if strayProcesses().isEmpty { return [] }
      try? await Task.sleep(for: .milliseconds(10))
    }
    return strayProcesses().map { "[\($0)] " + ((try? readFile("/proc/\($0)/cmdline")) ?? "").replacing("\0", with: " ") }
  }

  /// The domids with records under /local/domain (dom0 aside).
  package func domains() async throws -> [String] {
    try await bed.children("/local/domain").filter { $0 != "0" }.sorted()
  }
}

/// Waits (`seconds` at most) until `file` has a line containing `text`; whether it did.
package func waitForLine(in file: String, containing text: String, seconds: Int = 120) async -> Bool {
  for _ in 0..<(seconds * 1000) {
    if let content = try? readFile(file), content.contains(text) { return true }
    try? await Task.sleep(for: .milliseconds(1))
  }
  return false
}

/// Polls `condition` every millisecond (`seconds` at most); whether it came true.
package func eventually(seconds: Int = 120, _ condition: () async throws -> Bool) async rethrows -> Bool {
  for _ in 0..<(seconds * 1000) {
    if try await condition() { return true }
    try? await Task.sleep(for: .milliseconds(1))
  }
  return false
}

/// Live (non-zombie) processes, this one excluded, whose `/proc/<pid>/cmdline` contains `text`.
package func processes(mentioning text: String) -> [pid_t] {
  guard let dir = opendir("/proc") else { return [] }
  defer { closedir(dir) }
  var found: [pid_t] = []
  while let entry = readdir(dir) {
    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    // The command line, or the environment (QEMU's QMP sockets are descriptors now, and a
    // domain monitor's arguments are a domid: both inherit the testbed's XEN_* variables).
    guard let pid = pid_t(name), pid != getpid(),
      ((try? readFile("/proc/\(pid)/cmdline"))?.contains(text) == true
        || (try? readFile("/proc/\(pid)/environ"))?.contains(text) == true),
      isAlive(pid)
    else { continue }
    found.append(pid)
  }
  return found.sorted()
}

/// The entries of `/proc/<pid>/fd`.
package func descriptorCount(_ pid: pid_t) -> Int {
  guard let dir = opendir("/proc/\(pid)/fd") else { return -1 }
  defer { closedir(dir) }
  var count = 0
  while let entry = readdir(dir) {
    if entry.pointee.d_name.0 != CChar(UInt8(ascii: ".")) { count += 1 }
  }
  return count
}

/// The files in `directory`, sorted.
package func files(in directory: String) -> [String] {
  guard let dir = opendir(directory) else { return [] }
  defer { closedir(dir) }
  var found: [String] = []
  while let entry = readdir(dir) {
    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    if name != ".", name != ".." { found.append(name) }
  }
  return found.sorted()
}
