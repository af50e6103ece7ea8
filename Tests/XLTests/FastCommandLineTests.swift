import ArgumentParser
import Testing

@testable import xl

/// `FastCommandLine` against ArgumentParser: every command line the fast path takes, it reads
/// as `XL.parseAsRoot` does; everything else it leaves to ArgumentParser.
@Suite struct FastCommandLineTests {
  /// How ArgumentParser reads `words` (nil: it refuses them).
  static func parsedByArgumentParser(_ words: [String]) -> FastCommandLine? {
    switch try? XL.parseAsRoot(words) {
    case let create as Create: .create(create.request)
    case let monitor as Monitor where monitor.readyDescriptor == 3: .monitor(domid: monitor.domid)
    default: nil
    }
  }

  @Test(arguments: [
    ["create", "-q", "-e", "examples/tiny.cfg"],
    ["create", "examples/tiny.cfg"],
    ["create", "-qe", "examples/tiny.cfg", "device_model_args=[\"-bogus\"]"],
    ["create", "-v", "--timeout", "2.5", "tiny.cfg", "memory=512", "name=\"other\""],
    ["create", "--timeout=7", "--xenstore-timeout", "3", "-F", "tiny.cfg"],
    ["create", "-f", "tiny.cfg", "vif+=[\"bridge=br1\"]"],
    ["create", "--defconfig=tiny.cfg", "-n"],
    ["create", "tiny.cfg", "-c", "--quiet", "--dryrun"],
    ["create", "-nq", "-f", "tiny.cfg"],
    ["create", "-qf", "tiny.cfg"],
    ["create", "-pq", "tiny.cfg"],
    ["monitor", "7"],
    ["monitor", "4294967295"],
  ])
  func takenAndReadAsArgumentParserReadsThem(_ words: [String]) throws {
    let fast = try #require(FastCommandLine(words[...]))
    #expect(fast == Self.parsedByArgumentParser(words))
  }

  @Test(arguments: [
    // ArgumentParser's: help, other verbs, errors, and spellings the fast path does not know.
    ["create", "--help"], ["create", "-h"], ["help", "create"], ["list"], ["destroy", "tiny"], [],
    ["create"], ["create", "-q", "-v", "tiny.cfg"], ["create", "-F", "-e", "tiny.cfg"],
    ["create", "--timeout", "0", "tiny.cfg"], ["create", "--timeout", "-5", "tiny.cfg"],
    ["create", "--timeout", "soon", "tiny.cfg"], ["create", "--timeout"], ["create", "--xenstore-timeout=0", "t.cfg"],
    ["create", "-x", "tiny.cfg"], ["create", "--bogus", "tiny.cfg"], ["create", "-", "tiny.cfg"],
    ["create", "--", "tiny.cfg"], ["create", "-q", "-q", "tiny.cfg"], ["create", "-q", "--quiet", "tiny.cfg"],
    ["create", "--quiet=yes", "tiny.cfg"], ["create", "-fq", "tiny.cfg"], ["create", "-f", "-q"],
    ["create", "--timeout", "1", "--timeout", "2", "tiny.cfg"],
    ["monitor"], ["monitor", "-1"], ["monitor", "7", "--ready-descriptor", "5"], ["monitor", "4294967296"],
    ["monitor", "x7"], ["monitor", "٧"], ["monitor", "7", "8"],
  ])
  func leftToArgumentParser(_ words: [String]) {
    #expect(FastCommandLine(words[...]) == nil)
  }

  /// What the fast path declines but ArgumentParser accepts still runs, the slower way.
  @Test func declinedLinesStillParse() throws {
    #expect(Self.parsedByArgumentParser(["create", "-q", "-q", "tiny.cfg"]) == .create(CreateRequest(quiet: true, arguments: ["tiny.cfg"])))
    #expect(Self.parsedByArgumentParser(["monitor", "7", "--ready-descriptor", "3"]) == .monitor(domid: 7))
    #expect(Self.parsedByArgumentParser(["create", "-q", "-v", "tiny.cfg"]) == nil)
  }
}
