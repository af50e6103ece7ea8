#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
@testable import XenStoreDaemon
import Logging
import XenStore

/// libFuzzer's entry point for xenstored's state files (`--state-dir`): snapshot decoding, log
/// replay, and the engine restored from what they accept.
///
/// The first byte chooses: bit 0 snapshot (0) or log of generation 1 (1); bit 1 raw bytes (the
/// frame layer itself) or framed records. Framed input is chunks `length: UInt16 LE, payload`,
/// each wrapped by `Frame.append` with its checksum, so that mutations reach the record
/// decoders instead of dying at the CRC.
///
/// Checked: no trap anywhere; whatever is accepted restores into an engine whose own `check`
/// passes and whose tree a client can walk.
@_cdecl("LLVMFuzzerTestOneInput")
public func xenStoreStateFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  let input = Array(UnsafeBufferPointer(start: data, count: size))
  guard let mode = input.first else { return 0 }
  let bytes = mode & 2 != 0 ? Array(input.dropFirst()) : framed(input.dropFirst())
  if mode & 1 == 0 {
    let decoded = SnapshotFile.decode(bytes)
    if decoded.damage == nil { checkRestored(decoded.state) }
  } else {
    var state = DurableState.initial
    _ = LogReplay.replay(bytes, generation: 1, into: &state)
    checkRestored(state)
  }
  return 0
}

/// Chunks `length: UInt16 LE, payload`, each framed as the journal writes records.
func framed(_ input: ArraySlice<UInt8>) -> [UInt8] {
  var out: [UInt8] = []
  var i = input.startIndex
  while i < input.endIndex {
    let low = Int(input[i])
    let high = i + 1 < input.endIndex ? Int(input[i + 1]) : 0
    let start = min(i + 2, input.endIndex)
    let end = min(start + (low | high << 8), input.endIndex)
    Frame.append(Array(input[start..<end]), to: &out)
    i = end
  }
  return out
}

/// Restores `state` into a fresh engine as the daemon does at startup, then asks the engine
/// to check itself and walks the tree as dom0.
func checkRestored(_ state: DurableState) {
  // The loader refuses a state with problems (findings 5 and 6, fixed): not restored.
  guard state.problems.isEmpty else { return }
  var logger = Logger(label: "xenstored-state-fuzz")
  logger.logLevel = .critical
  let engine = XenStoreEngine(logger: logger)
  var replies: [Message] = []
  engine.output = { if case .message(let m, _) = $0 { replies.append(m) } }
  engine.restore(state)
  let dom0 = engine.connect(domain: 0)
  func call(_ type: MessageType, _ strings: String...) -> Message {
    replies.removeAll()
    engine.handle(Message(type: type, requestID: 1, strings: strings), from: dom0)
    return replies.last { $0.type != .watchEvent } ?? Message(type: .error, payload: [])
  }
  let check = call(.control, "check")
  guard check.payload == Array("OK\0".utf8) else {
    violated("restored state fails the engine's check: \(check.payloadDescription.prefix(300))")
  }
  var stack = ["/"]
  var seen = 0
  while let path = stack.popLast() {
    seen += 1
    let list = call(.directory, path)
    guard list.type == .directory || list.payload == Array("E2BIG\0".utf8) else {
      violated("restored tree: DIRECTORY \(path) → \(list.payloadDescription)")
    }
    for name in list.payload.split(separator: 0) where list.type == .directory {
      stack.append(XenStorePath.child(String(decoding: name, as: UTF8.self), of: path))
    }
  }
  if seen != engine.nodeCount && !state.nodes.isEmpty {
    violated("restored tree: \(seen) nodes reachable, \(engine.nodeCount) held")
  }
}
