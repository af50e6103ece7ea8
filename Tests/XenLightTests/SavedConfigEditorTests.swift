import Testing
@testable import XenLight

@Suite struct SavedConfigEditorTests {
  private let original = """
    name = "g"  # the guest
    disk = [ 'a.img,raw,xvda,rw',
             'b.iso,raw,hdc:cdrom,ro' ]
    disk += [ 'c.img,raw,xvdc,rw' ]
    memory = 128
    uuid = "5ab2a8a4-3e6f-4b9d-9a55-0f3c2b1e7d10"
    """

  @Test func aReplacedListIsWhatTheFileNowSaysAndTheRestIsKept() throws {
    let edited = SavedConfigEditor.replacingList("disk", with: ["format=raw, vdev=xvdb, access=rw, target=/x,y.img"], in: original)
    #expect(edited.hasPrefix(original + "\n"))
    let file = try ConfigFile.parse(edited, file: "saved")
    #expect(file["disk"]?.value == .list([.string("format=raw, vdev=xvdb, access=rw, target=/x,y.img")]))
    #expect(file["name"]?.value == .string("g"))
    #expect(file["memory"]?.value == .number(128))
  }

  @Test func aSecondEditReplacesTheFirstInsteadOfGrowingTheFile() throws {
    let once = SavedConfigEditor.replacingList("disk", with: ["one"], in: original)
    let withMemory = SavedConfigEditor.replacing("memory", with: .number(96), in: once)
    let twice = SavedConfigEditor.replacingList("disk", with: ["one", "two"], in: withMemory)
    #expect(twice == original + "\nmemory = 96  # set while running by xl\ndisk = [\"one\", \"two\"]  # set while running by xl\n")
    let file = try ConfigFile.parse(twice, file: "saved")
    #expect(file["disk"]?.value == .list([.string("one"), .string("two")]))
    #expect(file["memory"]?.value == .number(96))
  }

  @Test func anEmptyListRemovesEveryItem() throws {
    let edited = SavedConfigEditor.replacingList("disk", with: [], in: original)
    #expect(try ConfigFile.parse(edited, file: "saved")["disk"]?.value == .list([]))
  }
}
