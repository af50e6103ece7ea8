import Testing
import XenStore

/// The decoder must reassemble messages from any split of the byte stream: libxenstore writes
/// a header and its payload (and WRITE's value) in separate `write()`s.
@Suite struct MessageDecoderTests {
  static let messages: [Message] = [
    Message(type: .write, requestID: 1, transactionID: 0, payload: Array("/a/b\0value".utf8)),
    Message(type: .read, requestID: 2, transactionID: 7, strings: ["/a/b"]),
    Message(type: .resetWatches, requestID: 3, payload: []),
    Message(type: .watchEvent, payload: Array("/a\0tok\0".utf8)),
    Message(type: .write, requestID: 0xffff_ffff, transactionID: 0xffff_ffff,
            payload: Array("/x\0".utf8) + [UInt8](repeating: 0x41, count: Message.payloadMax - 3)),
    Message(type: MessageType(rawValue: 99), requestID: 5, payload: [0, 0, 0]),
  ]
  static let stream: [UInt8] = messages.flatMap { $0.encoded() }

  private func decodeAll(_ chunks: [ArraySlice<UInt8>]) throws -> [Message] {
    var decoder = MessageDecoder()
    var out: [Message] = []
    for chunk in chunks {
      decoder.append(chunk)
      while let m = try decoder.next() { out.append(m) }
    }
    #expect(decoder.bufferedByteCount == 0)
    return out
  }

  @Test func wholeStreamAtOnce() throws {
    #expect(try decodeAll([Self.stream[...]]) == Self.messages)
  }

  @Test func oneByteAtATime() throws {
    #expect(try decodeAll(Self.stream.indices.map { Self.stream[$0...$0] }) == Self.messages)
  }

  @Test(arguments: [1, 2, 3, 15, 16, 17, 100, 4095, 4112, 4113])
  func fixedChunkSizes(size: Int) throws {
    let chunks = stride(from: 0, to: Self.stream.count, by: size).map {
      Self.stream[$0..<min($0 + size, Self.stream.count)]
    }
    #expect(try decodeAll(chunks) == Self.messages)
  }

  @Test func everySplitIntoTwoAndThreePieces() throws {
    let small = Self.messages[0...3].flatMap { $0.encoded() }
    for i in 0...small.count {
      #expect(try decodeAll([small[..<i], small[i...]]) == Array(Self.messages[0...3]))
    }
    var random = SystemRandomNumberGenerator()
    for _ in 0..<500 {
      let a = Int.random(in: 0...Self.stream.count, using: &random)
      let b = Int.random(in: a...Self.stream.count, using: &random)
      #expect(try decodeAll([Self.stream[..<a], Self.stream[a..<b], Self.stream[b...]]) == Self.messages)
    }
  }

  @Test func headerAloneWaitsForThePayload() throws {
    var decoder = MessageDecoder()
    let bytes = Self.messages[0].encoded()
    decoder.append(bytes[..<Message.headerSize])
    #expect(try decoder.next() == nil)
    decoder.append(bytes[Message.headerSize...])
    #expect(try decoder.next() == Self.messages[0])
    #expect(try decoder.next() == nil)
  }

  @Test func payloadOfExactly4096IsAccepted() throws {
    let m = Message(type: .write, payload: [UInt8](repeating: 0x61, count: Message.payloadMax))
    #expect(try decodeAll([m.encoded()[...]]) == [m])
  }

  @Test(arguments: [UInt32(4097), 5000, 0x7fff_ffff, 0xffff_ffff])
  func lengthOver4096IsRejectedFromTheHeaderAlone(length: UInt32) {
    var header: [UInt8] = []
    for word in [MessageType.read.rawValue, 1, 0, length] { withUnsafeBytes(of: word) { header.append(contentsOf: $0) } }
    var decoder = MessageDecoder()
    decoder.append(header)
    #expect(throws: XenStoreError.self) { try decoder.next() }
    do {
      _ = try decoder.next()
    } catch {
      #expect(error.code == .invalidLength)
    }
  }

  @Test func messagesBeforeABadHeaderStillDecode() throws {
    var bytes = Self.messages[1].encoded()
    for word in [MessageType.read.rawValue, 1, 0, UInt32(4097)] { withUnsafeBytes(of: word) { bytes.append(contentsOf: $0) } }
    var decoder = MessageDecoder()
    decoder.append(bytes)
    #expect(try decoder.next() == Self.messages[1])
    #expect(throws: XenStoreError.self) { try decoder.next() }
  }

  @Test func encodingIsHostOrderHeaderThenPayload() {
    let bytes = Message(type: .read, requestID: 0x0102_0304, transactionID: 5, strings: ["/a"]).encoded()
    #expect(bytes == [2, 0, 0, 0, 4, 3, 2, 1, 5, 0, 0, 0, 3, 0, 0, 0, 0x2f, 0x61, 0])
  }

  @Test func fieldsSplitAtNULsKeepingAnUnterminatedTail() {
    let m = Message(type: .write, payload: Array("/p\0v\0w".utf8))
    #expect(m.fields == [Array("/p".utf8), Array("v".utf8), Array("w".utf8)])
  }
}
