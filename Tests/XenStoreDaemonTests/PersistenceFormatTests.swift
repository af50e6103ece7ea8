import Testing
import TestSupport
import XenStore
@testable import XenStoreDaemon

/// The state directory's on-disk format: checksums, record framing, change records and
/// snapshots, and every way a damaged byte is caught.
@Suite(.ownThread) struct PersistenceFormatTests {
  /// Bit-at-a-time CRC-32C, the definition the table-driven one must match.
  static func referenceCRC(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xffff_ffff
    for b in bytes {
      c ^= UInt32(b)
      for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
    }
    return ~c
  }

  @Test func crc32cMatchesTheStandardCheckValueAndTheBitwiseDefinition() {
    #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    #expect(CRC32C.checksum([UInt8]()) == 0)
    var random = RandomRequestTests.SplitMix(state: 7)
    for length in [1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000] {
      let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
      #expect(CRC32C.checksum(bytes) == Self.referenceCRC(bytes), "length \(length)")
      // Continuing from a prefix's checksum gives the whole one.
      let cut = length / 3
      #expect(CRC32C.checksum(bytes[cut...], continuing: CRC32C.checksum(bytes[..<cut])) == CRC32C.checksum(bytes))
    }
  }

  static let changes: [StateChange] = [
    .put(path: "/local/domain/5/name", value: Array("guest\u{0}bytes".utf8),
         permissions: Permissions([Permission(domain: 5, access: .none), Permission(domain: 0, access: .read)])!,
         children: .same),
    .put(path: "/a", value: [], permissions: Permissions(owner: 0), children: .append("b")),
    .put(path: "/a", value: [0xff, 0], permissions: Permissions(owner: 7, defaultAccess: .both), children: .remove("b")),
    .put(path: "/big", value: [UInt8](repeating: 9, count: 4096), permissions: Permissions(owner: 0),
         children: .all(["x", "y-z", "0"])),
    .remove(path: "/a/b"),
    .domains([DomainEntry(domid: 0), DomainEntry(domid: 5, target: 6), DomainEntry(domid: 6)]),
    .specialPermissions(name: "@releaseDomain", Permissions([Permission(domain: 0, access: .none), Permission(domain: 5, access: .read)])!),
  ]

  @Test func aChangeRecordRoundTrips() throws {
    let record = ChangeRecord(sequence: 1 << 40, changes: Self.changes)
    let encoded = record.encoded()
    #expect(try ChangeRecord(decoding: encoded[...]) == record)
    #expect(try ChangeRecord(decoding: ChangeRecord(sequence: 1, changes: []).encoded()[...]).changes.isEmpty)
  }

  @Test func everyTruncationOfAChangeRecordIsRejectedNotTrapped() {
    let encoded = ChangeRecord(sequence: 3, changes: Self.changes).encoded()
    for length in 0..<encoded.count {
      #expect(throws: ByteReader.Malformed.self) { try ChangeRecord(decoding: encoded[..<length]) }
    }
    #expect(throws: ByteReader.Malformed.self) { try ChangeRecord(decoding: (encoded + [0])[...]) }
  }

  @Test func unknownTagsAreRejected() {
    var bad = ChangeRecord(sequence: 1, changes: [.remove(path: "/a")]).encoded()
    bad[10] = 9   // the change's type
    #expect(throws: ByteReader.Malformed.self) { try ChangeRecord(decoding: bad[...]) }
    var header = FileHeader(kind: .log, generation: 1, bootID: "b").encoded()
    header[2] = 2   // format version
    #expect(throws: ByteReader.Malformed.self) { try FileHeader(decoding: header[...]) }
  }

  @Test func aFrameReadsBackAndEveryDamagedByteIsCaught() {
    var file: [UInt8] = []
    Frame.append(Array("first".utf8), to: &file)
    let second = file.count
    Frame.append(Array("second record".utf8), to: &file)
    guard case .record(let payload, let next) = Frame.read(file, at: 0) else { Issue.record("no record"); return }
    #expect(Array(file[payload]) == Array("first".utf8) && next == second)
    guard case .record(_, let end) = Frame.read(file, at: second), case .end = Frame.read(file, at: end) else {
      Issue.record("second record or end missing"); return
    }
    for i in second..<file.count {
      var damaged = file
      damaged[i] ^= 0x10
      guard case .damaged = Frame.read(damaged, at: second) else { Issue.record("byte \(i) flipped unnoticed"); continue }
      // Damage in the last record leaves nothing intact after it: a torn tail.
      #expect(Frame.nextIntactRecord(in: damaged, after: second) == nil)
    }
    var damagedFirst = file
    damagedFirst[Frame.headerSize + 1] ^= 1
    #expect(Frame.nextIntactRecord(in: damagedFirst, after: 0) == second)
    for cut in (second + 1)..<file.count {
      guard case .damaged = Frame.read(Array(file[..<cut]), at: second) else { Issue.record("cut at \(cut) unnoticed"); continue }
    }
  }

  @Test func childListChangesAreTheSmallestThatFit() {
    #expect(ChildrenChange(from: nil, to: []) == .same)
    #expect(ChildrenChange(from: nil, to: ["a"]) == .all(["a"]))
    #expect(ChildrenChange(from: ["a", "b"], to: ["a", "b"]) == .same)
    #expect(ChildrenChange(from: ["a", "b"], to: ["a", "b", "c"]) == .append("c"))
    #expect(ChildrenChange(from: ["a", "b", "c"], to: ["a", "c"]) == .remove("b"))
    #expect(ChildrenChange(from: ["a", "b", "c"], to: ["a", "b"]) == .remove("c"))
    #expect(ChildrenChange(from: ["a"], to: []) == .remove("a"))
    #expect(ChildrenChange(from: ["a", "b"], to: ["b", "a"]) == .all(["b", "a"]))
    #expect(ChildrenChange(from: ["a", "b", "c"], to: ["b", "x"]) == .all(["b", "x"]))
  }

  @Test func aSnapshotRoundTripsAndItsDamageIsFoundWithItsOffset() throws {
    let h = EngineHarness()
    let dom0 = h.connect()
    h.call(dom0, .introduce, "5", "1", "2")
    for i in 0..<3000 { h.write(dom0, "/local/domain/5/data/\(i % 40)/\(i)", String(repeating: "v", count: i % 50)) }
    h.call(dom0, .setPerms, "/local/domain/5/data", "n5", "r0")
    var state = h.engine.durableState
    state.sequence = 42
    let bytes = SnapshotFile.encode(state, generation: 9, bootID: "boot")
    let decoded = SnapshotFile.decode(bytes)
    #expect(decoded.damage == nil)
    #expect(decoded.header == FileHeader(kind: .snapshot, generation: 9, bootID: "boot"))
    #expect(sameState(decoded.state, state))

    var damaged = bytes
    damaged[bytes.count / 2] ^= 0x40
    let partial = SnapshotFile.decode(damaged)
    let offset = try #require(partial.damage?.offset)
    #expect(offset <= bytes.count / 2 && partial.damage?.reason == "checksum mismatch")
    #expect(partial.state.nodes.count > 0 && partial.state.nodes.count < state.nodes.count)
    #expect(SnapshotFile.decode(Array(bytes.dropLast(3))).damage != nil)
    #expect(SnapshotFile.decode(Array(bytes[..<offset])).damage?.reason == "the snapshot ends before its end record")
  }
}

/// Same nodes (value, access list, children), domains and special access lists.
func sameState(_ a: DurableState, _ b: DurableState) -> Bool {
  guard a.nodes.count == b.nodes.count, a.domains == b.domains, a.specialPermissions == b.specialPermissions else {
    return false
  }
  return a.nodes.allSatisfy { path, node in
    guard let other = b.nodes[path] else { return false }
    return node.value == other.value && node.permissions == other.permissions && node.children == other.children
  }
}
