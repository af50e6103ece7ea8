#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import XenLight

/// `xl dump-core DOMAIN FILE`.
struct DumpCore: XLSubcommand {
  static let configuration = CommandConfiguration(
    commandName: "dump-core", abstract: "Write a domain's memory to FILE as an ELF core (QMP dump-guest-memory).")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The core file.") var file: String

  func execute() async throws {
    let path = file.hasPrefix("/") ? file : (Self.currentDirectory + "/" + file)
    try await Toolstack.forXL().run(domain) { control, target throws(XenLightError) in try await control.dumpCore(target, to: path) }
  }

  static var currentDirectory: String {
    var buffer = [CChar](repeating: 0, count: 4096)
    return getcwd(&buffer, buffer.count) != nil ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "."
  }
}
