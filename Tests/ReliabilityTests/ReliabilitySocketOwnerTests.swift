#if canImport(Glibc)
import Glibc
#endif
import Testing
import InteropSupport
import TestSupport
import XenStore

/// The daemon's sockets are reachable only by their owner: dom0's socket and every domain's
/// are mode 0600 and the domains' directory 0700, so another user is refused by the kernel
/// even where it may walk the path. Checked with a real process of user `nobody`.
@Suite(.serialized, .ownThread) struct ReliabilitySocketOwnerTests {
  @Test(.enabled(if: geteuid() == 0, "switching to user nobody needs root"))
  func anotherUserCannotConnectToAnySocket() async throws {
    let d = try DaemonProcess()
    defer { d.stop() }
    let dom0 = try StressClient(d.socketPath)
    #expect(dom0.call(.introduce, "5", "0", "0") == "OK|")
    // Let everyone walk to the sockets, so that only their own modes stand in the way.
    chmod(d.directory.path, 0o711)

    #expect(mode(d.socketPath) == 0o600)
    #expect(mode(d.socketPath + ".d") == 0o700)
    #expect(mode(d.domainSocketPath(5)) == 0o600)
    #expect(try await connectAsNobody(d.socketPath) == "EACCES")
    #expect(try await connectAsNobody(d.domainSocketPath(5)) == "EACCES")

    chmod(d.socketPath + ".d", 0o711)
    #expect(try await connectAsNobody(d.domainSocketPath(5)) == "EACCES", "the domain's socket refuses even then")
    #expect(try await connectAsNobody(d.directory.appending("missing")) == "ENOENT", "the probe itself works")
    #expect(dom0.call(.read, "/") == "", "the owner still gets in")
  }

  private func mode(_ path: String) -> mode_t? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return info.st_mode & 0o777
  }

  /// Connects to `path` as user nobody (uid 65534, via util-linux `setpriv`); the errno name
  /// of the failure, or "connected".
  private func connectAsNobody(_ path: String) async throws -> String {
    let probe = """
      import errno, socket, sys
      s = socket.socket(socket.AF_UNIX)
      try:
          s.connect(sys.argv[1]); print("connected")
      except OSError as e:
          print(errno.errorcode[e.errno])
      """
    let result = try await run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          "/usr/bin/python3", "-c", probe, path], timeout: 30)
    return result.stdout.trimmingSuffix("\n")
  }
}

extension String {
  fileprivate func trimmingSuffix(_ suffix: String) -> String {
    hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
  }
}
