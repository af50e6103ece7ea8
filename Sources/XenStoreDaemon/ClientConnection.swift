#if canImport(Glibc)
import Glibc
#endif
import XenStore

/// One accepted socket: its decoder and its bounded queue of outgoing bytes.
/// Confined to the server's event loop.
final class ClientConnection: @unchecked Sendable {
  let fd: Int32
  let id: ConnectionID
  let domid: UInt32
  var decoder = MessageDecoder()

  private var out: [UInt8] = []
  private var outStart = 0
  /// Total bytes ever queued and written; reply ends are positions in that stream.
  private var queuedTotal = 0
  private var writtenTotal = 0
  private var replyEnds: [Int] = []
  private var replyHead = 0

  /// Reading is paused (backpressure) while the client is behind on its replies.
  var isReadPaused = false
  /// Registered for writability (output is waiting).
  var isWaitingToWrite = false
  /// Over its output bound: closed once the current work is done.
  var isDoomed = false

  init(fd: Int32, id: ConnectionID, domid: UInt32) {
    self.fd = fd
    self.id = id
    self.domid = domid
  }

  var pendingBytes: Int { out.count - outStart }
  /// Replies queued but not yet written out: the requests still outstanding.
  var pendingReplies: Int { replyEnds.count - replyHead }

  func enqueue(_ message: Message) {
    message.encode(into: &out)
    queuedTotal += Message.headerSize + message.payload.count
    if message.type != .watchEvent { replyEnds.append(queuedTotal) }
  }

  enum FlushResult { case done, blocked, failed }

  /// Writes as much queued output as the socket takes (`send` with MSG_NOSIGNAL).
  func flush() -> FlushResult {
    while outStart < out.count {
      let n = out.withUnsafeBytes { raw in
        send(fd, raw.baseAddress! + outStart, out.count - outStart, Int32(MSG_NOSIGNAL))
      }
      if n > 0 {
        outStart += n
        writtenTotal += n
        continue
      }
      if n < 0 && errno == EINTR { continue }
      if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
      return .failed
    }
    while replyHead < replyEnds.count && replyEnds[replyHead] <= writtenTotal { replyHead += 1 }
    if replyHead > 256 && replyHead * 2 > replyEnds.count {
      replyEnds.removeFirst(replyHead)
      replyHead = 0
    }
    if outStart == out.count {
      out.removeAll(keepingCapacity: out.capacity <= 1 << 16)
      outStart = 0
      return .done
    }
    if outStart > 1 << 16 {
      out.removeFirst(outStart)
      outStart = 0
    }
    return .blocked
  }
}
