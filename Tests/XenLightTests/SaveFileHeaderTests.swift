import Spawn
import Testing

@testable import XenLight

/// xl's save-file header as written and read back, and each refusal with its words.
@Suite struct SaveFileHeaderTests {
  @Test func writtenAsXlLaysItOut() throws {
    let header = SaveFileHeader(config: "name = \"g\"\n")
    let bytes = header.encoded
    #expect(Array(bytes[0..<32]) == Array("Xen saved domain, xl format\n \0 \r".utf8))
    #expect(Array(bytes[32..<36]) == [4, 3, 2, 1])  // 0x01020304, little-endian
    #expect(Array(bytes[36..<40]) == [0, 0, 0, 0x80])  // QEMU's stream
    #expect(Array(bytes[40..<44]) == [0, 0, 0, 0])
    #expect(Array(bytes[44..<48]) == [15, 0, 0, 0])  // 4 + the config's 11 bytes
    #expect(Array(bytes[48..<52]) == [11, 0, 0, 0])
    let read = try SaveFileHeader.decode(fixed: Array(bytes[0..<48]), optional: Array(bytes[48...]), source: "f")
    #expect(read == header)
  }

  @Test func withoutAConfig() throws {
    let bytes = SaveFileHeader(config: nil).encoded
    #expect(bytes.count == 48)
    #expect(try SaveFileHeader.decode(fixed: bytes, optional: [], source: "f").config == nil)
  }

  @Test func aTrailingNULIsNotTheConfigs() throws {
    var bytes = SaveFileHeader(config: nil).encoded
    bytes.replaceSubrange(44..<48, with: [6, 0, 0, 0])
    let read = try SaveFileHeader.decode(fixed: bytes, optional: [2, 0, 0, 0, UInt8(ascii: "x"), 0], source: "f")
    #expect(read.config == "x")
  }

  @Test(arguments: [
    (32..<36, [1, 2, 3, 4] as [UInt8], "f: File has wrong byte order: it was written on a host of the other byte order"),
    (32..<36, [9, 9, 9, 9], "f: File has wrong byte order (marker 0x9090909): corrupt?"),
    (36..<40, [0, 0, 0, 0], "f: the save file does not say what its state is (mandatory flags 0x0)"),
    (36..<40, [1, 0, 0, 0x80], "f: Savefile has mandatory flag(s) 0x1 which are not supported; need newer xl"),
    (0..<4, [0, 0, 0, 0], "f: File has wrong magic number - corrupt or for a different tool? (not an xl save file)"),
  ])
  func refusals(range: Range<Int>, bytes replacement: [UInt8], message: String) {
    var bytes = SaveFileHeader(config: nil).encoded
    bytes.replaceSubrange(range, with: replacement)
    #expect(throws: XenLightError(.invalidConfig, message)) { try SaveFileHeader.optionalDataLength(fixed: bytes, source: "f") }
  }

  @Test func aConfigLongerThanItsRoomIsCorrupt() {
    var bytes = SaveFileHeader(config: nil).encoded
    bytes.replaceSubrange(44..<48, with: [4, 0, 0, 0])
    #expect(throws: XenLightError(.io, "f: corrupt: the config's length (99 bytes) exceeds the header's optional data (0)")) {
      try SaveFileHeader.decode(fixed: bytes, optional: [99, 0, 0, 0], source: "f")
    }
  }

  @Test func aMigrationNoteReadsBack() throws {
    let note = MigrationProtocol.Note(
      step: .outgoingGo, driver: ProcessIdentity(pid: 12, startTime: 34, bootID: "b"), name: "a guest", wasRunning: false)
    #expect(note.text == "outgoing-go 12:34:b paused a guest")
    #expect(MigrationProtocol.Note(note.text) == note)
    #expect(MigrationProtocol.Note("bogus 12:34:b running x") == nil)
  }

  @Test func configsOfAnotherMachineAreNamed() throws {
    var saved = DomainConfiguration(name: "g", type: .pvh, memoryMiB: 128)
    saved.serial = ["pty"]
    var given = saved
    given.memoryMiB = 256
    given.vcpus = 2
    given.maxVcpus = 2
    #expect(DomainRestorer.differences(given, saved) == [
      "memory is 256 MiB here but 128 MiB in the save file", "vcpus is 2 here but 1 in the save file",
      "maxvcpus is 2 here but 1 in the save file",
    ])
    given = saved
    given.name = "other"
    #expect(DomainRestorer.differences(given, saved) == [])
  }
}
