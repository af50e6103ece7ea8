import ArgumentParser
import XenLight

/// `xl save [-c] [-p] [-D] DOMAIN FILE [CONFIG]`.
struct Save: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Save a domain's state to a file (xl restore brings it back).",
    discussion: """
      The file is xl's: its header, the domain's config (the config it was created with, \
      including devices attached since, or CONFIG), then the device model's state, written by \
      QEMU into a descriptor xl opened (a confined device model saves too). The guest is \
      paused for the save. Without -c or -p the domain is destroyed once the file is on disk.
      """)

  @Flag(name: .customShort("c"), help: "Leave the domain running after saving it (a checkpoint).")
  var checkpoint = false

  @Flag(name: .customShort("p"), help: "Leave the domain paused after saving it.")
  var leavePaused = false

  @Flag(name: .customShort("D"), help: "Keep the domid (accepted for xl's sake: a restored domain always gets a new one here).")
  var preserveDomid = false

  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The file to write.") var file: String
  @Argument(help: "A config to store in the file instead of the domain's own.") var config: String?

  func validate() throws {
    if checkpoint && leavePaused { throw ValidationError("-c and -p contradict each other") }
  }

  func execute() async throws {
    let after: DomainSaver.After = checkpoint ? .keepRunning : leavePaused ? .leavePaused : .destroy
    do {
      let saved = try await DomainSaver(toolstack: .forXL()).save(domain, to: file, configFile: config, after: after)
      let h = saved.header
      let optional = h.encoded.count - SaveFileHeader.fixedSize
      Terminal.error(
        "Saving to \(file) new xl format (info 0x\(String(h.mandatoryFlags.rawValue, radix: 16))/0x\(String(h.optionalFlags, radix: 16))/\(optional))")
      let end =
        switch after {
        case .destroy: "destroyed"
        case .keepRunning: "running again"
        case .leavePaused: "left paused"
        }
      Terminal.error(
        "Domain \(saved.domid) (\(saved.name)) saved to \(file) (\(saved.size >> 20) MiB, paused \(saved.pausedFor.readable)); \(end)")
    } catch {
      throw ExitStatus.fail(error)
    }
  }
}
