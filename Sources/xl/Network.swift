import ArgumentParser
import XenLight

/// `xl network-attach DOMAIN VIF-SPEC...`.
struct NetworkAttach: XLSubcommand {
  static let configuration = CommandConfiguration(
    commandName: "network-attach",
    abstract: "Add a NIC to a running domain.",
    discussion: """
      The settings are a vif entry's (xl-network-configuration), given as one or more \
      arguments: bridge=xenbr0 mac=00:16:3e:01:02:03 model=e1000, or 'bridge=xenbr0,model=e1000'. \
      With bridge= (or script=) the NIC is a tap device connected as at create: by its \
      script=, else natively as vif-bridge would; without, QEMU's user-mode network. \
      The domain's saved config keeps it, so a restart brings it back.
      """)

  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The NIC's settings (key=value, comma or space separated).") var settings: [String] = []

  func execute() async throws { try await Self.attach(domain, settings: settings) }

  /// The verb itself, also reached by `FastCommandLine`.
  static func attach(_ domain: String, settings: [String]) async throws {
    do {
      _ = try await Toolstack.forXL().networkAttach(domain, spec: settings.joined(separator: ","), defaults: try GlobalConfig.load())
    } catch {
      throw ExitStatus.fail(error)
    }
  }
}

/// `xl network-detach DOMAIN DEVID|MAC`.
struct NetworkDetach: XLSubcommand {
  static let configuration = CommandConfiguration(
    commandName: "network-detach",
    abstract: "Remove a NIC from a running domain.",
    discussion: """
      QEMU is asked to unplug it (device_del); the guest has 10 s to release it (exit 9 \
      if it does not, the NIC staying attached). Then its tap, script (remove), records \
      and its entry in the domain's saved config go.
      """)

  @Argument(help: "The domain's name or id.") var domain: String
  @Argument(help: "The NIC's devid (network-list's Idx) or MAC address.") var device: String

  func execute() async throws {
    do { try await Toolstack.forXL().networkDetach(domain, device: device) } catch { throw ExitStatus.fail(error) }
  }
}

/// `xl network-list DOMAIN...`, in xl's layout (tools/xl/xl_nic.c).
struct NetworkList: XLSubcommand {
  static let configuration = CommandConfiguration(
    commandName: "network-list", abstract: "List a domain's NICs.")

  @Argument(help: "The domains' names or ids.") var domains: [String]

  func validate() throws {
    if domains.isEmpty { throw ValidationError("Missing the domain: xl network-list DOMAIN...") }
  }

  func execute() async throws {
    var out = NetworkDeviceInfo.header + "\n"
    do {
      for domain in domains {
        for device in try await Toolstack.forXL().networkList(domain) { out += device.row + "\n" }
      }
    } catch {
      throw ExitStatus.fail(error)
    }
    Terminal.output(out)
  }
}
