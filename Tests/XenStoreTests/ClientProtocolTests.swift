#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Synchronization
import Testing
@testable import XenStore
import TestSupport

/// The client facing a daemon that breaks the protocol. No real daemon misbehaves on demand,
/// so a scripted one answers each request with bytes the test chooses.
@Suite struct ClientProtocolTests {
  @Test func replyOfTheWrongTypeFailsThatRequestOnly() async throws {
    try await withScriptedDaemon({ request in
      if request.type == .read, request.fields.first == Array("/odd".utf8) {
        return Message(type: .write, requestID: request.requestID, strings: ["OK"]).encoded()
      }
      return Message.reply(to: request, payload: Array("v".utf8)).encoded()
    }) { xs in
      let error = await #expect(throws: XenStoreError.self) { _ = try await xs.read("/odd") }
      #expect(error?.code == .protocolViolation)
      #expect(error?.message == "read /odd: xenstored answered READ with WRITE")
      let answer = try await xs.read("/fine")
      #expect(answer == "v")
    }
  }

  @Test func replyToARequestNeverSentEndsTheConnection() async throws {
    try await withScriptedDaemon({ request in
      Message(type: request.type, requestID: request.requestID &+ 1000, payload: []).encoded()
    }) { xs in
      let error = await #expect(throws: XenStoreError.self) { _ = try await xs.read("/a") }
      #expect(error?.code == .protocolViolation)
      #expect(error?.message.contains("which was never sent") == true)
      let later = await #expect(throws: XenStoreError.self) { _ = try await xs.read("/b") }
      #expect(later?.code == .protocolViolation)
    }
  }

  @Test func oversizedReplyEndsTheConnection() async throws {
    try await withScriptedDaemon({ request in
      var header = Message(type: request.type, requestID: request.requestID, payload: []).encoded()
      header.replaceSubrange(12..<16, with: withUnsafeBytes(of: UInt32(5000)) { Array($0) })
      return header
    }) { xs in
      let error = await #expect(throws: XenStoreError.self) { _ = try await xs.read("/a") }
      #expect(error?.code == .protocolViolation)
      #expect(error?.message.contains("message length 5000 exceeds 4096") == true)
    }
  }

  @Test func daemonClosingMidRequestIsConnectionLost() async throws {
    try await withScriptedDaemon({ _ in nil }) { xs in
      let error = await #expect(throws: XenStoreError.self) { _ = try await xs.read("/a") }
      #expect(error?.code == .connectionLost)
      #expect(error?.message.hasSuffix("lost: xenstored closed the connection") == true)
    }
  }

  @Test func malformedRepliesAreProtocolViolations() async throws {
    try await withScriptedDaemon({ request in
      let payload: String = switch request.type {
      case .transactionStart: "abc\0"
      case .isDomainIntroduced: "X\0"
      case .getPerms: "q1\0"
      default: "OK\0"
      }
      return Message.reply(to: request, payload: Array(payload.utf8)).encoded()
    }) { xs in
      let start = await #expect(throws: XenStoreError.self) { _ = try await xs.transactionStart() }
      #expect(start?.code == .protocolViolation)
      let introduced = await #expect(throws: XenStoreError.self) { _ = try await xs.isDomainIntroduced(1) }
      #expect(introduced?.code == .protocolViolation)
      let permissions = await #expect(throws: XenStoreError.self) { _ = try await xs.getPermissions("/a") }
      #expect(permissions?.code == .protocolViolation)
    }
  }

  @Test func strayAndMalformedWatchEventsAreIgnored() async throws {
    try await withScriptedDaemon({ request in
      Message(type: .watchEvent, strings: ["/x", "no-such-token"]).encoded()
        + Message(type: .watchEvent, strings: ["/only-a-path"]).encoded()
        + Message.reply(to: request, payload: Array("v".utf8)).encoded()
    }) { xs in
      let first = try await xs.read("/a")
      let second = try await xs.read("/b")
      #expect(first == "v" && second == "v")
    }
  }

  @Test func directoryPartsRestartWhenTheGenerationChanges() async throws {
    let parts = PartCounter()
    try await withScriptedDaemon({ request in
      switch request.type {
      case .directory:
        return Message.error(.E2BIG, to: request).encoded()
      case .directoryPart:
        let offset = String(decoding: request.fields[1], as: UTF8.self)
        let payload: String = switch (parts.next(), offset) {
        case (1, "0"): "1\0a\0b\0"         // generation 1, more to come
        case (_, "4"): "2\0c\0"            // generation changed: start again
        default: "2\0a\0b\0c\0\0"          // the whole list, ended by an empty name
        }
        return Message.reply(to: request, payload: Array(payload.utf8)).encoded()
      default:
        return Message.error(.EINVAL, to: request).encoded()
      }
    }) { xs in
      let answer = try await xs.directory("/wide")
      #expect(answer == ["a", "b", "c"])
      #expect(parts.value == 3)
    }
  }

  @Test func directoryTooBigForADaemonWithoutDirectoryPart() async throws {
    try await withScriptedDaemon({ request in
      Message.error(request.type == .directory ? .E2BIG : .ENOSYS, to: request).encoded()
    }) { xs in
      let error = await #expect(throws: XenStoreError.self) { _ = try await xs.directory("/wide") }
      #expect(error?.code == .E2BIG)
    }
  }

  @Test func emptyDirectoryInParts() async throws {
    try await withScriptedDaemon({ request in
      request.type == .directory
        ? Message.error(.E2BIG, to: request).encoded()
        : Message.reply(to: request, payload: Array("7\0\0".utf8)).encoded()
    }) { xs in
      let answer = try await xs.directory("/empty")
      #expect(answer == [])
    }
  }
}

/// A counter for `@Sendable` closures.
final class PartCounter: Sendable {
  private let count = Mutex(0)
  var value: Int { count.withLock { $0 } }
  func next() -> Int { count.withLock { $0 += 1; return $0 } }
}

/// Serves one client on a fresh socket: every request it sends is answered with the bytes
/// `respond` returns, or the connection is closed when it returns nil. Runs `body` with a
/// client connected to it.
func withScriptedDaemon(_ respond: @escaping @Sendable (Message) -> [UInt8]?,
                        _ body: @Sendable (XenStoreClient) async throws -> Void) async throws {
  let directory = TemporaryDirectory("xsc")
  defer { directory.remove() }
  let path = directory.appending("socket")
  let listener = try listeningSocket(path)
  defer { close(listener) }
  let server = Task { try await serveOne(listener, respond) }
  defer { server.cancel() }
  let client = try await XenStoreClient.connect(to: path)
  defer { client.close() }
  try await body(client)
}

private func serveOne(_ listener: Int32, _ respond: @Sendable (Message) -> [UInt8]?) async throws {
  _ = try await EventLoop.shared.wait(for: .readable, on: listener)
  let fd = accept(listener, nil, nil)
  guard fd >= 0 else { return }
  _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
  defer { close(fd) }
  var decoder = MessageDecoder()
  var buffer = [UInt8](repeating: 0, count: 65536)
  while true {
    _ = try await EventLoop.shared.wait(for: .readable, on: fd)
    let n = read(fd, &buffer, buffer.count)
    if n == 0 { return }
    if n < 0 { if errno == EAGAIN { continue } else { return } }
    decoder.append(buffer[0..<n])
    while let request = try decoder.next() {
      guard let reply = respond(request) else { return }
      _ = reply.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
  }
}

private func listeningSocket(_ path: String) throws -> Int32 {
  let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
  var address = sockaddr_un()
  address.sun_family = sa_family_t(AF_UNIX)
  withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
  let bound = withUnsafePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
  }
  guard bound == 0, listen(fd, 4) == 0 else {
    close(fd)
    throw XenStoreError(.connectFailed, "cannot listen on \(path)", errno: errno)
  }
  return fd
}
