import ArgumentParser
import Reactor
import XenLight

/// `xl top -b [-i N] [-d S]`: xentop's batch output, from the records, /proc and the device
/// models' CPU time.
struct Top: XLSubcommand {
  static let configuration = CommandConfiguration(
    abstract: "Print each domain's CPU, memory and vCPUs as xentop does (batch mode).",
    discussion: "Only batch mode (-b): a header and one row per domain every DELAY seconds, ITERATIONS times.")

  @Flag(name: [.customShort("b"), .customLong("batch")], help: "Batch mode (the only one here).")
  var batch = false

  @Option(name: [.customShort("i"), .customLong("iterations")], help: "Samples to print (default 1).")
  var iterations: Int = 1

  @Option(name: [.customShort("d"), .customLong("delay")], help: "Seconds between samples (default 3).")
  var delay: Double = 3

  func validate() throws {
    if !batch { throw ValidationError("only batch mode is available: xl top -b") }
    if iterations < 1 { throw ValidationError("-i must be at least 1") }
    if !(delay > 0) { throw ValidationError("-d must be a number of seconds above 0") }
  }

  func execute() async throws {
    let toolstack = Toolstack.forXL()
    let memory = HostInfo.memoryKiB()
    var previous: (time: UInt64, cpu: [UInt32: Double])?
    for iteration in 1...iterations {
      let infos: [DomainInfo]
      do { infos = try await toolstack.list() } catch { throw ExitStatus.fail(error) }
      let now = EventLoop.now()
      var out = TopFormat.header
      for info in infos {
        var percent = 0.0
        if let previous, let before = previous.cpu[info.domid], now > previous.time {
          percent = (info.cpuSeconds - before) * 100 / (Double(now - previous.time) / 1e9)
        }
        out += TopFormat.row(info, cpuPercent: max(percent, 0), hostMemoryKiB: memory)
      }
      Terminal.output(out)
      previous = (now, Dictionary(uniqueKeysWithValues: infos.map { ($0.domid, $0.cpuSeconds) }))
      if iteration < iterations { try await Task.sleep(for: .milliseconds(Int64(delay * 1000))) }
    }
  }
}
