import ArgumentParser
import XenLight

/// `xl pause DOMAIN`: QMP `stop`.
struct Pause: XLSubcommand {
  static let configuration = CommandConfiguration(abstract: "Pause a domain's virtual CPUs.")
  @Argument(help: "The domain's name or id.") var domain: String

  func execute() async throws {
    do {
      let session = try await Session.open(for: domain)
      defer { session.client.close() }
      try await session.control.pause(try await session.control.target(domain))
    } catch { throw ExitStatus.fail(error) }
  }
}

/// `xl unpause DOMAIN`: QMP `cont`.
struct Unpause: XLSubcommand {
  static let configuration = CommandConfiguration(abstract: "Let a paused domain run again.")
  @Argument(help: "The domain's name or id.") var domain: String

  func execute() async throws {
    do {
      let session = try await Session.open(for: domain)
      defer { session.client.close() }
      try await session.control.unpause(try await session.control.target(domain))
    } catch { throw ExitStatus.fail(error) }
  }
}
