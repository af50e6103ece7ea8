#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import XenStore
import TestSupport

/// Finding and reaching the daemon, and reading its errors, without a daemon.
@Suite struct ClientConnectTests {
  @Test func socketPathFollowsLibxenstore() {
    #expect(XenStoreSocketPath.resolve(environment: [:]) == "/var/run/xenstored/socket")
    #expect(XenStoreSocketPath.resolve(environment: ["XENSTORED_RUNDIR": "/run/xs"]) == "/run/xs/socket")
    #expect(XenStoreSocketPath.resolve(environment: ["XENSTORED_PATH": "/tmp/a.sock", "XENSTORED_RUNDIR": "/run/xs"]) == "/tmp/a.sock")
    // Set but empty still wins, as getenv() != NULL does in libxenstore.
    #expect(XenStoreSocketPath.resolve(environment: ["XENSTORED_PATH": "", "XENSTORED_RUNDIR": "/run/xs"]) == "")
  }

  @Test func missingSocketIsENOENTNamingThePath() async throws {
    let directory = TemporaryDirectory("xsc")
    defer { directory.remove() }
    let path = directory.appending("none.sock")
    let error = await #expect(throws: XenStoreError.self) { _ = try await XenStoreClient.connect(to: path) }
    #expect(error?.code == .connectFailed)
    #expect(error?.errno == ENOENT)
    #expect(error?.message == "cannot connect to xenstored: no socket at \(path) (No such file or directory); is xenstored running? XENSTORED_PATH selects another socket")
  }

  @Test func staleSocketIsECONNREFUSED() async throws {
    let directory = TemporaryDirectory("xsc")
    defer { directory.remove() }
    let path = directory.appending("stale.sock")
    let fd = try bindWithoutListening(path)
    defer { close(fd) }
    let error = await #expect(throws: XenStoreError.self) { _ = try await XenStoreClient.connect(to: path) }
    #expect(error?.code == .connectFailed)
    #expect(error?.errno == ECONNREFUSED)
    #expect(error?.message.contains("nothing listens on \(path)") == true)
  }

  @Test func regularFileIsRefusedToo() async throws {
    let directory = TemporaryDirectory("xsc")
    defer { directory.remove() }
    let path = directory.appending("file")
    close(open(path, O_CREAT | O_WRONLY, 0o600))
    let error = await #expect(throws: XenStoreError.self) { _ = try await XenStoreClient.connect(to: path) }
    #expect(error?.code == .connectFailed)
    #expect(error?.errno == ECONNREFUSED)
  }

  @Test func pathTooLongForSunPath() async throws {
    let path = "/tmp/" + String(repeating: "x", count: 120)
    let error = await #expect(throws: XenStoreError.self) { _ = try await XenStoreClient.connect(to: path) }
    #expect(error?.code == .connectFailed)
    #expect(error?.errno == ENAMETOOLONG)
    #expect(error?.message == "cannot connect to xenstored at \(path): File name too long")
  }

  @Test func wireErrorNamesBecomeCodesWithErrno() {
    let request = Message(type: .read, requestID: 3, strings: ["/a"])
    let error = XenStoreError(reply: .error(.EACCES, to: request), operation: "read /a")
    #expect(error.code == .EACCES)
    #expect(error.errno == EACCES)
    #expect(error.message == "read /a: Permission denied")
    #expect(error.description == "read /a: Permission denied (EACCES)")
    for name in XenStoreError.Code.wireNames {
      let code = XenStoreError.Code(name: name)!
      #expect(XenStoreError(reply: .error(code, to: request), operation: "x").code == code)
      #expect(code.errnoValue != nil)
    }
  }

  @Test func unknownWireErrorReadsAsEINVALLikeLibxenstore() {
    let reply = Message(type: .error, requestID: 1, payload: Array("EWHATEVER\0".utf8))
    let error = XenStoreError(reply: reply, operation: "write /a")
    #expect(error.code == .EINVAL)
    #expect(error.errno == EINVAL)
    #expect(error.message == "write /a: Invalid argument (xenstored sent unknown error \"EWHATEVER\")")
  }

  @Test func localCodesHaveNoErrno() {
    #expect(XenStoreError.Code.connectionLost.errnoValue == nil)
    #expect(XenStoreError.Code.protocolViolation.errnoValue == nil)
  }
}

/// A Unix socket bound at `path` that never listens: connecting to it is refused.
private func bindWithoutListening(_ path: String) throws -> Int32 {
  let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
  var address = sockaddr_un()
  address.sun_family = sa_family_t(AF_UNIX)
  withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
  let rc = withUnsafePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
  }
  guard rc == 0 else { close(fd); throw XenStoreError(.connectFailed, "bind \(path) failed", errno: errno) }
  return fd
}
