#if canImport(Glibc)
import Glibc
#endif
import XenStore

/// The name messages start with, as `err(3)` prints it: the basename of argv[0], so
/// `xenstore` or, through a `xenstore-read` link, `xenstore-read`.
let programName: String = {
  let invoked = CommandLine.arguments.first ?? "xenstore"
  return invoked.split(separator: "/").last.map(String.init) ?? invoked
}()

/// Ends the tool with `status`, printing `message` (if any) after the program name, as
/// `errx(3)` does. Thrown by modes; caught in main.
struct ToolExit: Error {
  var status: Int32
  var message: String?
  init(_ status: Int32, _ message: String? = nil) {
    self.status = status
    self.message = message
  }

  /// `err(3)`: the message, then the reason the request failed.
  static func failure(_ message: String, _ error: Error) -> ToolExit {
    ToolExit(1, "\(message): \(reason(error))")
  }
}

/// `strerror` of the errno behind `error`, as libxenstore leaves it in `errno` for `err(3)`.
func reason(_ error: Error) -> String {
  let number = (error as? XenStoreError)?.errno ?? EIO
  return String(cString: strerror(number))
}

/// Standard output and error, written with `write(2)`.
enum Terminal {
  static func write(_ bytes: [UInt8], to fd: Int32 = 1) {
    var offset = 0
    while offset < bytes.count {
      let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { return }
      offset += n
    }
  }

  /// `warnx(3)`: `<program>: <message>` on stderr.
  static func warn(_ message: String) {
    write(Array("\(programName): \(message)\n".utf8), to: 2)
  }
}

/// One run of a mode against the daemon, shaped like xenstore-utils' `main`: connect, run
/// the mode (inside a transaction for the modes that use one), retry the whole mode when the
/// commit meets a conflict, then print what the mode produced and exit with its status.
enum Session {
  /// Connects where libxenstore would (`XENSTORED_PATH`, ...). The failure names the path.
  static func connect() async throws -> XenStoreClient {
    do {
      return try await XenStoreClient.connect()
    } catch let error as XenStoreError {
      throw ToolExit(1, error.message)
    }
  }

  /// Runs `mode` and exits with its status; its output is printed after a successful commit
  /// (or abort), never for an attempt that is retried.
  static func run(inTransaction: Bool,
                  _ mode: (any XenStoreOperations, inout [UInt8]) async throws -> Int32) async throws -> Never {
    let client = try await connect()
    while true {
      var output: [UInt8] = []
      guard inTransaction else {
        let status = try await mode(client, &output)
        finish(output, status: status)
      }
      let transaction: XenStoreTransaction
      do {
        transaction = try await client.transactionStart()
      } catch {
        throw ToolExit(1, "couldn't start transaction")
      }
      let status = try await mode(transaction, &output)
      do {
        try await client.transactionEnd(transaction, commit: status == 0)
      } catch let error as XenStoreError where error.code == .EAGAIN && status == 0 {
        continue
      } catch {
        throw ToolExit(1, "couldn't end transaction")
      }
      finish(output, status: status)
    }
  }

  static func finish(_ output: [UInt8], status: Int32) -> Never {
    Terminal.write(output)
    exit(status)
  }
}
