import ArgumentParser
import Spawn
import XenLight

/// `xl destroy NAME|DOMID`.
struct Destroy: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Stop a domain's device model and remove its records.",
    discussion: """
      The device model is stopped only if it is still the process that was recorded at \
      create (pid, start time and boot id): a pid now used by another process is never \
      signalled. The domain's monitor sees it go and exits (it is stopped by identity if it \
      has not within 3 s). An unknown domain is an error (exit 1), as in xl.
      """)

  @Argument(help: "The domain's name or id.")
  var domain: String

  @Option(name: .long, help: "Seconds xenstored may take to answer (libxenstore waits forever).")
  var xenstoreTimeout: Double = 10

  func execute() async throws {
    do {
      let destroyed = try await Toolstack.forXL(xenstoreTimeout: xenstoreTimeout).destroy(domain)
      Terminal.output(
        "Domain \(destroyed.domid)\(destroyed.name.map { " (\($0))" } ?? "") destroyed: \(Self.describe(destroyed.deviceModel))\n")
    } catch {
      throw ExitStatus.fail(error)
    }
  }

  static func describe(_ outcome: DestroyedDomain.DeviceModel) -> String {
    switch outcome {
    case .stopped(.killed): "device model killed (it ignored SIGTERM)"
    case .stopped(.alreadyExited), .alreadyExited: "device model already exited"
    case .stopped: "device model stopped"
    case .pidReused(let pid): "device model already exited (pid \(pid) now belongs to another process, which was left alone)"
    case .notRecorded: "no device model was recorded"
    }
  }
}
