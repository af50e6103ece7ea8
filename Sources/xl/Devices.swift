import ArgumentParser
import XenLight

/// `xl block-attach DOMAIN DISKSPEC...`: the spec's words are joined by commas, as xl does.
struct BlockAttach: XLSubcommand {
  static let configuration = CommandConfiguration(
    commandName: "block-attach", abstract: "Add a disk to a running domain (xl's disk spec, e.g. /img/d.raw,raw,xvdb,rw).")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The disk specification (docs/misc/xl-disk-configuration.txt).") var spec: [String]

  func execute() async throws {
    let disk: DiskSpec
    do { disk = try DiskSpec.parse(spec.joined(separator: ",")) } catch {
      throw ExitStatus.fail(XenLightError(.invalidConfig, "invalid disk spec \"\(spec.joined(separator: ","))\": \(error)"))
    }
    let toolstack = Toolstack.forXL()
    try await toolstack.run(domain, onLoopThread: true) { control, target throws(XenLightError) in
      try await DiskControl(control: control, paths: toolstack.paths).attach(disk, to: target)
    }
  }
}

/// `xl block-detach [-f] DOMAIN VDEV`.
struct BlockDetach: XLSubcommand {
  static let configuration = CommandConfiguration(
    commandName: "block-detach",
    abstract: "Remove a disk from a running domain.",
    discussion: "The guest has 10 s to let go of the disk; then xl fails (exit 9) and the disk stays. -f removes it from the records without waiting.")
  @Flag(name: [.customShort("f"), .customLong("force")], help: "Do not wait for the guest.") var force = false
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The disk's vdev (xvdb…) or device number.") var vdev: String

  func execute() async throws {
    let toolstack = Toolstack.forXL()
    try await toolstack.run(domain, onLoopThread: true) { control, target throws(XenLightError) in
      try await DiskControl(control: control, paths: toolstack.paths).detach(vdev, from: target, force: force)
    }
  }
}

/// `xl block-list DOMAIN...`, in xl's columns.
struct BlockList: XLSubcommand {
  static let configuration = CommandConfiguration(commandName: "block-list", abstract: "List a domain's disks.")
  @Argument(help: "The domains' names or ids.") var domains: [String]

  func execute() async throws {
    let toolstack = Toolstack.forXL()
    var text = BlockListFormat.header
    for domain in domains {
      let disks = try await toolstack.run(domain, onLoopThread: true) { control, target throws(XenLightError) in
        try await DiskControl(control: control, paths: toolstack.paths).list(target)
      }
      text += disks.map(BlockListFormat.line).joined()
    }
    Terminal.output(text)
  }
}

/// xl_block.c's layout: `%-5s %-3s %-6s %-5s %-6s %-8s %-30s`.
enum BlockListFormat {
  static let header = row(["Vdev", "BE", "handle", "state", "evt-ch", "ring-ref", "BE-path"])

  static func line(_ d: DiskControl.Listed) -> String {
    row(["\(d.devid)", "\(d.backendID)", "\(d.frontendID)", "\(d.state)", "\(d.eventChannel)", "\(d.ringRef)", d.backendPath])
  }

  static func row(_ columns: [String]) -> String {
    let widths = [5, 3, 6, 5, 6, 8, 30]
    return zip(columns, widths).map { $0 + String(repeating: " ", count: max(0, $1 - $0.count)) }.joined(separator: " ") + "\n"
  }
}

/// `xl cd-insert DOMAIN VDEV TARGET`.
struct CDInsert: XLSubcommand {
  static let configuration = CommandConfiguration(commandName: "cd-insert", abstract: "Insert an image in a domain's CD-ROM drive.")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The drive's vdev (hdc…).") var vdev: String
  @Argument(help: "The image.") var target: String

  func execute() async throws {
    let toolstack = Toolstack.forXL()
    try await toolstack.run(domain, onLoopThread: true) { control, domain throws(XenLightError) in
      try await DiskControl(control: control, paths: toolstack.paths).insert(target, into: vdev, of: domain)
    }
  }
}

/// `xl cd-eject DOMAIN VDEV`.
struct CDEject: XLSubcommand {
  static let configuration = CommandConfiguration(commandName: "cd-eject", abstract: "Eject the CD in a domain's CD-ROM drive.")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The drive's vdev (hdc…).") var vdev: String

  func execute() async throws {
    let toolstack = Toolstack.forXL()
    try await toolstack.run(domain, onLoopThread: true) { control, target throws(XenLightError) in
      try await DiskControl(control: control, paths: toolstack.paths).eject(vdev, of: target)
    }
  }
}

/// `xl mem-set DOMAIN SIZE` and `xl mem-max DOMAIN SIZE` (SIZE: a number, unit t/g/m/k/b, MiB by default).
struct MemSet: XLSubcommand {
  static let configuration = CommandConfiguration(commandName: "mem-set", abstract: "Set a domain's memory (its balloon's target).")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The size: 256, 256m, 1g, 262144k.") var size: String

  func execute() async throws { try await setMemory(domain, size, maximum: false) }
}

struct MemMax: XLSubcommand {
  static let configuration = CommandConfiguration(commandName: "mem-max", abstract: "Set a domain's maximum memory.")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The size: 256, 256m, 1g, 262144k.") var size: String

  func execute() async throws { try await setMemory(domain, size, maximum: true) }
}

private func setMemory(_ domain: String, _ size: String, maximum: Bool) async throws {
  guard let kibibytes = ResourceControl.kibibytes(size) else {
    throw ExitStatus.fail(XenLightError(.invalidConfig, "invalid memory size: \(size)"))
  }
  let toolstack = Toolstack.forXL()
  try await toolstack.run(domain, onLoopThread: true) { control, target throws(XenLightError) in
    let resources = ResourceControl(control: control, paths: toolstack.paths)
    if maximum {
      try await resources.setMaximumMemory(target, kibibytes: kibibytes)
    } else {
      try await resources.setMemory(target, kibibytes: kibibytes)
    }
  }
}

/// `xl vcpu-set DOMAIN COUNT`.
struct VcpuSet: XLSubcommand {
  static let configuration = CommandConfiguration(commandName: "vcpu-set", abstract: "Set how many vCPUs a domain has (up to maxvcpus).")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The number of vCPUs.") var count: String

  func execute() async throws {
    guard let count = Int(count), count >= 0 else { throw ExitStatus.fail(XenLightError(.invalidConfig, "Error: Invalid argument.")) }
    let toolstack = Toolstack.forXL()
    try await toolstack.run(domain, onLoopThread: true) { control, target throws(XenLightError) in
      try await ResourceControl(control: control, paths: toolstack.paths).setVcpus(target, count: count)
    }
  }
}
