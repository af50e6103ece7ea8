import ArgumentParser
import XenLight

/// The exit status for each kind of failure (documented in `xl --help`). Device-model
/// failures exit 3 as xl does (libxl's ERROR_FAIL), timeouts 9 (ERROR_TIMEDOUT).
enum ExitStatus {
  static func code(for error: XenLightError) -> Int32 {
    // Exhaustive: a new code must be given its status here.
    switch error.code {
    case .syntax, .invalidConfig, .io: 1
    case .xenstore, .xenstoreLost: 2
    case .deviceModelFailed, .monitorFailed, .guestFailed: 3
    case .duplicateName: 4
    case .timedOut: 9
    case .interrupted: 130
    case .notFound, .invalidState, .noParavirt: 1
    }
  }

  /// Prints `xl: <message>` on stderr and returns the exit code to throw.
  static func fail(_ error: XenLightError) -> ExitCode {
    Terminal.error("xl: \(error)")
    return ExitCode(code(for: error))
  }

  /// The same for any error: a `XenLightError` as above, an `ExitCode` as it is.
  static func fail(_ error: any Error) -> any Error {
    if let error = error as? XenLightError { return fail(error) }
    if error is ExitCode { return error }
    Terminal.error("xl: \(error)")
    return ExitCode(1)
  }
}
