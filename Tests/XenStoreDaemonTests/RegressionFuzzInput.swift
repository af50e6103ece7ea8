/// How the fuzzer reads its input: a sequence of chunks, each `control: UInt8`,
/// `length: UInt16` (little-endian) and `length` bytes (fewer if the input ends first).
///
/// The low two bits of `control` pick one of the session's connections; the next two bits say
/// what happens to it: 0–2 feed the bytes to its decoder (so messages arrive split anywhere and
/// interleaved with other connections'), 3 closes it (the bytes are ignored). The format is
/// simple enough for `Fuzz/make-corpus.py` to write seeds and for libFuzzer's mutations to
/// keep most inputs meaningful.
enum FuzzStep: Equatable {
  case feed(slot: Int, bytes: ArraySlice<UInt8>)
  case close(slot: Int)

  static func parse(_ data: [UInt8]) -> [FuzzStep] {
    var steps: [FuzzStep] = []
    var i = 0
    while i < data.count {
      let control = data[i]
      let low = i + 1 < data.count ? Int(data[i + 1]) : 0
      let high = i + 2 < data.count ? Int(data[i + 2]) : 0
      let start = min(i + 3, data.count)
      let end = min(start + (low | high << 8), data.count)
      let slot = Int(control & 0x3)
      steps.append((control >> 2) & 0x3 == 3 ? .close(slot: slot) : .feed(slot: slot, bytes: data[start..<end]))
      i = end
    }
    return steps
  }
}
