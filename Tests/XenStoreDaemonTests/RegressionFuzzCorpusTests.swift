#if canImport(Glibc)
import Glibc
#endif
import Testing

/// Every input of the fuzzer's committed corpus (Fuzz/corpus: seeds of every request type,
/// and each fuzzer finding's input, named `finding-N-...`) replayed through the fuzzer's own
/// session and invariants (`RegressionFuzzSession.swift` and `RegressionFuzzInput.swift` are
/// links to the fuzzer's sources), so that `swift test` keeps what fuzzing established.
@Suite struct RegressionFuzzCorpusTests {
  /// `<package>/Fuzz/corpus`, found from this file's `<package>/Tests/XenStoreDaemonTests/`.
  static let corpus: String = {
    var components = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    components.removeLast(3)
    return components.joined(separator: "/") + "/Fuzz/corpus"
  }()

  static var inputs: [String] {
    guard let dir = opendir(corpus) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
      if !name.hasPrefix(".") { names.append(name) }
    }
    return names.sorted()
  }

  @Test func theCorpusIsThere() {
    #expect(Self.inputs.count >= 30, "\(Self.corpus) holds \(Self.inputs.count) inputs")
  }

  @Test(arguments: inputs)
  func inputKeepsEveryInvariant(_ name: String) throws {
    let session = EngineSession()
    for step in FuzzStep.parse(try contents(of: Self.corpus + "/" + name)) { session.run(step) }
    session.checkFinalState()
    #expect(session.violations.isEmpty, "\(name): \(session.violations)")
  }

  private func contents(of path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    try #require(fd >= 0, "cannot open \(path)")
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while case let n = read(fd, &buffer, buffer.count), n > 0 { out += buffer[..<n] }
    return out
  }
}
