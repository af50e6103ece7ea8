import ArgumentParser
import XenLight

/// `xl vcpu-list [DOMAIN...]`: each vCPU's host CPU, state, time and affinity.
struct VCPUList: XLSubcommand {
  static let configuration = CommandConfiguration(
    commandName: "vcpu-list", abstract: "List the virtual CPUs of domains.",
    discussion: "A vCPU is its device model's vCPU thread: CPU is the host CPU it last ran on, Affinity its thread's.")

  @Argument(help: "Only these domains (names or ids).") var domains: [String] = []

  func execute() async throws {
    let toolstack = Toolstack.forXL()
    var references = domains
    if references.isEmpty {
      do { references = try await toolstack.summaries().map { "\($0.domid)" } } catch { throw ExitStatus.fail(error) }
    }
    var out = VCPUListFormat.header
    for reference in references {
      out += try await toolstack.run(reference) { control, target throws(XenLightError) in
        let vcpus = try await control.vcpus(target)
        return vcpus.map { VCPUListFormat.row(name: target.name, domid: target.domid, $0, paused: target.runState == .paused) }.joined()
      }
    }
    Terminal.output(out)
  }
}
