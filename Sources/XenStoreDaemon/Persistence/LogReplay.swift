/// Replays one log file's records onto a state.
enum LogReplay {
  struct Outcome {
    var header: FileHeader?
    /// Records applied.
    var records = 0
    /// Where replay stopped before the end of the file, and why.
    var stop: (offset: Int, reason: String)?
    /// An intact record follows the stop: damage in the middle, not a torn tail.
    var intactAfterStop = false
    /// Zeros after the last record: space the log had preallocated.
    var unusedBytes = 0
  }

  /// Applies the records of `bytes` (log `generation`) to `state` in order, up to the end of
  /// the file or the first record that is damaged or does not fit; `state` then holds every
  /// record before that one and nothing of it.
  /// `lenient`: apply records as well as they fit (see `DurableState.applyLeniently`).
  static func replay(_ bytes: [UInt8], generation: UInt64, into state: inout DurableState,
                     lenient: Bool = false) -> Outcome {
    var outcome = Outcome()
    var offset = 0
    while true {
      switch Frame.read(bytes, at: offset) {
      case .end:
        if outcome.header == nil { outcome.stop = (0, "empty file, no header") }
        return outcome
      case .damaged(let reason):
        if outcome.header != nil && bytes[offset...].allSatisfy({ $0 == 0 }) {
          outcome.unusedBytes = bytes.count - offset
          return outcome
        }
        outcome.stop = (offset, reason)
        outcome.intactAfterStop = Frame.nextIntactRecord(in: bytes, after: offset) != nil
        return outcome
      case .record(let payload, let next):
        do {
          if outcome.header == nil {
            let header = try FileHeader(decoding: bytes[payload])
            guard header.kind == .log, header.generation == generation else {
              throw ByteReader.Malformed(description: "header says \(header.kind) \(header.generation), not log \(generation)")
            }
            outcome.header = header
          } else {
            let record = try ChangeRecord(decoding: bytes[payload])
            if lenient { state.applyLeniently(record) } else { try state.apply(record) }
            outcome.records += 1
          }
        } catch {
          // The record is intact but wrong: damage, never a torn write.
          outcome.stop = (offset, "\(error)")
          outcome.intactAfterStop = true
          return outcome
        }
        offset = next
      }
    }
  }
}
