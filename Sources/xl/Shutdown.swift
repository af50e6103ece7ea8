import ArgumentParser
import XenLight

/// `xl shutdown` and `xl reboot`, with xl's options (tools/xl/xl_vmcontrol.c).
struct ShutdownOptions: ParsableArguments {
  @Flag(name: .shortAndLong, help: "Wait for the domain to shut down (once) or be destroyed (-ww).")
  var wait: Int

  @Flag(name: .customShort("F"), help: "Fall back to the ACPI power button (or a reset) when the guest has no PV control interface.")
  var fallback = false

  @Flag(name: .shortAndLong, help: "Every domain.")
  var all = false

  @Option(name: .long, help: "With -w: seconds to wait before giving up (exit 9).")
  var timeout: Double = 60

  @Option(name: .long, help: "Seconds a guest with a PV control interface has to acknowledge the request (exit 9).")
  var ackTimeout: Double = 10

  @Argument(help: "The domain's name or id.")
  var domain: String?

  func validate() throws {
    if all == (domain != nil) { throw ValidationError("give a domain or -a, not both") }
    if !(timeout > 0) { throw ValidationError("--timeout must be a number of seconds above 0") }
    if !(ackTimeout > 0) { throw ValidationError("--ack-timeout must be a number of seconds above 0") }
  }

  func run(_ request: DomainControl.Request) async throws {
    let toolstack = Toolstack.forXL()
    if let domain {
      try await toolstack.run(domain) { control, target throws(XenLightError) in try await act(request, on: [target], control) }
      return
    }
    do {
      _ = try await toolstack.withStore { store throws(XenLightError) in
        let control = DomainControl(store: store, loop: toolstack.spawner.loop)
        var targets: [DomainControl.Target] = []
        for domid in try await store.guestDomids() { targets.append(try await control.target("\(domid)")) }
        try await act(request, on: targets, control)
      }
    } catch {
      throw ExitStatus.fail(error)
    }
  }

  /// The requests, then with -w the waits, as xl does them.
  private func act(_ request: DomainControl.Request, on targets: [DomainControl.Target], _ control: DomainControl)
    async throws(XenLightError)
  {
    for target in targets {
      Terminal.error(request == .poweroff ? "Shutting down domain \(target.domid)" : "Rebooting domain \(target.domid)")
      let acknowledgement = Duration.milliseconds(Int64(ackTimeout * 1000))
      if try await control.request(request, target, fallback: fallback, acknowledgement: acknowledgement) == .acpi,
        target.deviceModelTarget != .local
      {
        Terminal.error("PV control interface not available: sending ACPI power button event.")
      }
    }
    guard wait > 0, !targets.isEmpty else { return }
    Terminal.error("Waiting for \(targets.count) domains")
    let limit = Duration.milliseconds(Int64(timeout * 1000))
    for target in targets {
      do throws(XenLightError) {
        switch try await control.wait(for: target.domid, deathOnly: wait > 1, limit: limit) {
        case .destroyed: Terminal.error("Domain \(target.domid) has been destroyed")
        case .shutDown(let state): Terminal.error("Domain \(target.domid) has been shut down (\(state.rawValue))")
        }
      } catch {
        guard error.code == .timedOut else { throw error }
        throw XenLightError(
          .timedOut,
          "domain \(target.domid) (\(target.name)) did not shut down within \(timeout.formatted) s: the guest ignored the request (for the ACPI power button, the guest needs acpid or equivalent)")
      }
    }
  }
}

struct Shutdown: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Ask a domain to shut down.",
    discussion: """
      Through the guest's PV control interface (control/shutdown) when it advertises one; \
      otherwise, on the local target or with -F, the ACPI power button. The domain's monitor \
      then applies on_poweroff. -w waits (event-driven) for the domain to shut down or be \
      destroyed; -ww for it to be destroyed. A guest that ignores the request makes -w fail \
      after --timeout seconds with exit code 9.
      """)
  @OptionGroup var options: ShutdownOptions
  func execute() async throws { try await options.run(.poweroff) }
}

struct Reboot: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Ask a domain to reboot.",
    discussion: """
      Through the guest's PV control interface when it advertises one; otherwise, on the local \
      target or with -F, a reset. The domain's monitor applies on_reboot (restart: the domain \
      comes back under its name with a new domid, as xl does).
      """)
  @OptionGroup var options: ShutdownOptions
  func execute() async throws { try await options.run(.reboot) }
}

extension Double {
  var formatted: String { self == rounded() ? "\(Int(self))" : "\(self)" }
}
