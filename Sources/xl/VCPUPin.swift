import ArgumentParser
import XenLight

/// `xl vcpu-pin DOMAIN VCPU|all HARD [SOFT]`: the vCPU threads' affinity.
struct VCPUPin: XLSubcommand {
  static let configuration = CommandConfiguration(
    commandName: "vcpu-pin", abstract: "Set which host CPUs a domain's vCPUs may run on.",
    discussion: "CPU lists as xl's: all, 0-3,5, ^2 (all but 2). SOFT is accepted and has no effect: Linux threads have one affinity.")

  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The vCPU's number, or all.") var vcpu: String
  @Argument(help: "The host CPUs (hard affinity).") var hard: String
  @Argument(help: "Soft affinity (ignored; - or a CPU list).") var soft: String?

  func execute() async throws {
    let index: Int?
    if vcpu == "all" {
      index = nil
    } else if let n = Int(vcpu), n >= 0 {
      index = n
    } else {
      Terminal.error("Error: Invalid argument \(vcpu) as VCPU.")
      throw ExitCode(1)
    }
    guard hard != "-" else { return }
    guard let cpus = CPUList.parse(hard, hostCPUs: CPUList.hostCPUs), !cpus.isEmpty else {
      Terminal.error("xl: invalid CPU list \"\(hard)\" (this host has CPUs 0-\(CPUList.hostCPUs - 1); e.g. all, 0-1, ^0)")
      throw ExitCode(1)
    }
    try await Toolstack.forXL().run(domain) { control, target throws(XenLightError) in try await control.pin(target, vcpu: index, to: cpus) }
  }
}
