import FuzzSupport

/// libFuzzer's entry point: one fresh daemon engine per input, fed the input's chunks
/// (see `FuzzStep`), its invariants checked after every request and at the end.
@_cdecl("LLVMFuzzerTestOneInput")
public func xenStoreFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  let session = EngineSession()
  for step in FuzzStep.parse(Array(UnsafeBufferPointer(start: data, count: size))) {
    session.run(step)
    if let broken = session.violations.first { violated(broken) }
  }
  session.checkFinalState()
  if let broken = session.violations.first { violated(broken) }
  return 0
}
