#if canImport(Glibc)
import Glibc
#endif
import Spawn
import Testing
import TestSupport
import XenStore

/// One test's world for `xl`: a private directory with the xenstore socket, run directory
/// log directory and lib directory (`XENSTORED_PATH`, `XEN_RUN_DIR`, `XEN_LOG_DIR`,
/// `XEN_LIB_DIR`: the state of a xenstored that `xl` starts), an optional
/// in-process xenstored, and the checks that nothing was left behind.
package final class XlTestbed: @unchecked Sendable {
  package let directory: TemporaryDirectory
  package let socketPath: String
  package let xenstored: XenstoredUnderTest?

  package var runDirectory: String { directory.appending("run") }
  package var logDirectory: String { directory.appending("log") }
  package var libDirectory: String { directory.appending("lib") }
  package var xenstoredStateDirectory: String { libDirectory + "/xenstored" }

  package var environment: [String: String] {
    [
      "XENSTORED_PATH": socketPath, "XEN_RUN_DIR": runDirectory, "XEN_LOG_DIR": logDirectory, "XEN_LIB_DIR": libDirectory,
    ]
  }

  /// With `xenstored`, a daemon runs in this process; without, `xl` has to start its own.
  package init(xenstored: Bool = true) throws {
    directory = TemporaryDirectory("xl")
    if xenstored {
      let daemon = try XenstoredUnderTest.start()
      self.xenstored = daemon
      socketPath = daemon.socketPath
    } else {
      self.xenstored = nil
      socketPath = directory.appending("xs.sock")
    }
  }

  package func stop() {
    xenstored?.stop()
    // The xenstored `xl` started on this testbed's socket outlives xl by design: end it here.
    for pid in processes(mentioning: socketPath) {
      let argv = ((try? readFile("/proc/\(pid)/cmdline")) ?? "").split(separator: "\0")
      if argv.first?.hasSuffix("/xenstored") == true, argv.contains(Substring(socketPath)) {
        kill(pid, SIGTERM)
        _ = awaitExitInCleanup(pid, seconds: 10)
      }
    }
    // Whatever a failed test left running (a domain's QEMU and monitor, which wait for a
    // xenstored that is gone; a helper of the test's): never past the test. Tests that pass
    // prove they leave nothing with `expectNoLeftovers` before this.
    let leftovers = processes(mentioning: directory.path + "/")
    for pid in leftovers { kill(pid, SIGKILL) }
    for pid in leftovers { _ = awaitExitInCleanup(pid, seconds: 10) }
    directory.remove()
  }

  /// Writes `text` as a config file in the test's directory and returns its path.
  package func config(_ text: String, name: String = "guest.cfg") -> String {
    let path = directory.appending(name)
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    var bytes = text
    bytes.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
    close(fd)
    return path
  }

  /// A tiny local guest named `name`, plus `extra` lines.
  package func tinyGuest(_ name: String = "tiny", _ extra: String = "") -> String {
    config(
      """
      name = "\(name)"
      type = "hvm"
      memory = 32
      vnc = 0
      nographic = 1
      device_model_target = "local"
      \(extra)
      """, name: "\(name).cfg")
  }

  /// A device model that never confirms: a script that sleeps (its pid is the sleep's).
  package func neverConfirmingDeviceModel() -> String {
    let path = directory.appending("never-ready")
    _ = config("#!/bin/sh\nexec sleep 600\n", name: "never-ready")
    chmod(path, 0o755)
    return path
  }

  /// Runs the built `xl` with this testbed's environment (awaited, holding no thread).
  package func xl(_ arguments: [String], environment extra: [String: String] = [:], timeout: Int = 120) async throws
    -> ProcessResult
  {
    try await run([BuiltProducts.path("xl")] + arguments, environment: environment.merging(extra) { $1 }, timeout: timeout)
  }

  package func client() async throws -> XenStoreClient { try await XenStoreClient.connect(to: socketPath) }

  /// The children of `path`, or [] if it does not exist.
  package func children(_ path: String) async throws -> [String] {
    let client = try await client()
    defer { client.close() }
    do { return try await client.directory(path) } catch let error as XenStoreError where error.code == .ENOENT { return [] }
  }

  package func read(_ path: String) async throws -> String? {
    let client = try await client()
    defer { client.close() }
    do { return try await client.read(path) } catch let error as XenStoreError where error.code == .ENOENT { return nil }
  }

  /// No domain records, no domain sockets, no QMP sockets: what a failed create and a
  /// destroy must leave.
  package func expectNoLeftovers(sourceLocation: SourceLocation = #_sourceLocation) async throws {
    #expect(try await children("/local/domain").filter { $0 != "0" } == [], sourceLocation: sourceLocation)
    #expect(try await children("/local/domain/0/device-model") == [], sourceLocation: sourceLocation)
    #expect(try await children("/libxl") == [], sourceLocation: sourceLocation)
    #expect(try await children("/vm") == [], sourceLocation: sourceLocation)
    #expect(sockets(in: runDirectory) == [], sourceLocation: sourceLocation)
    #expect(sockets(in: socketPath + ".d") == [], sourceLocation: sourceLocation)
  }

  /// The Unix sockets in `directory`.
  package func sockets(in directory: String) -> [String] {
    guard let dir = opendir(directory) else { return [] }
    defer { closedir(dir) }
    var found: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
      var info = stat()
      if lstat(directory + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK { found.append(name) }
    }
    return found.sorted()
  }
}

/// Whether `pid` is a live process (not gone, not a zombie awaiting its reaper).
package func isAlive(_ pid: Int32) -> Bool {
  guard let stat = try? readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return false }
  return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
}

/// The pid in the first "[1234]" of `text`.
package func bracketedPID(_ text: String) -> Int32? {
  guard let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") else { return nil }
  return Int32(text[text.index(after: open)..<close])
}

/// `text` with pids ("[1234]") and times ("after 23 ms", "within 500 ms") made stable.
package func normalized(_ text: String) -> String {
  var out = ""
  var rest = Substring(text)
  while let open = rest.firstIndex(of: "[") {
    out += rest[...open]
    rest = rest[rest.index(after: open)...]
    let digits = rest.prefix { $0.isNumber }
    if !digits.isEmpty, rest.dropFirst(digits.count).first == "]" {
      out += "PID"
      rest = rest.dropFirst(digits.count)
    }
  }
  out += rest
  for word in ["after ", "within ", " in "] {
    var result = ""
    var remaining = Substring(out)
    while let found = remaining.firstRange(of: word) {
      result += remaining[..<found.upperBound]
      remaining = remaining[found.upperBound...]
      let number = remaining.prefix { $0.isNumber || $0 == "." }
      let rest = remaining.dropFirst(number.count)
      if !number.isEmpty, let unit = [" ms", " s"].first(where: { rest.hasPrefix($0) }) {
        result += "T"
        remaining = rest.dropFirst(unit.count)
      }
    }
    out = result + remaining
  }
  return out
}
