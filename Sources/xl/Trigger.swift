import ArgumentParser
import XenLight

/// `xl trigger DOMAIN nmi|reset|init|power|sleep|s3resume [VCPU]`.
struct Trigger: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Send a trigger to a domain: nmi, reset, power, s3resume (init and sleep need Xen).",
    discussion: "Through QMP: inject-nmi, system_reset, system_powerdown, system_wakeup.")
  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "nmi, reset, init, power, sleep or s3resume.") var trigger: String
  @Argument(help: "The vCPU (accepted for xl's sake; QEMU's NMI goes to every vCPU).") var vcpu: String?

  func execute() async throws {
    guard let chosen = DomainTrigger(rawValue: trigger) else {
      Terminal.error("xl: invalid trigger \"\(trigger)\" (expected \(DomainTrigger.allCases.map(\.rawValue).joined(separator: ", ")))")
      throw ExitCode(1)
    }
    try await Toolstack.forXL().run(domain) { control, target throws(XenLightError) in try await control.send(chosen, to: target) }
  }
}
