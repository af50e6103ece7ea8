/// The command lines xl runs most often, parsed without ArgumentParser: `xl create` with its
/// usual options, and `xl monitor DOMID` as create starts it. ArgumentParser's first parse
/// costs about 1.5 ms of Swift runtime set-up (reflection, conformance look-ups), a large part
/// of what `xl create` adds to QEMU's own start.
///
/// Anything else (another verb, help, a repeated or unusual option, a value that looks like
/// an option, options that contradict each other) is left to ArgumentParser, which reports
/// errors as it always does. What both accept, they parse alike (FastCommandLineTests).
enum FastCommandLine: Equatable {
  case create(CreateRequest)
  case monitor(domid: UInt32)

  /// nil: ArgumentParser's to parse.
  init?(_ words: ArraySlice<String>) {
    var words = words
    switch words.popFirst() {
    case "create":
      guard let request = Self.create(words) else { return nil }
      self = .create(request)
    case "monitor":
      guard words.count == 1, let word = words.first, word.allSatisfy(\.isASCII), word.allSatisfy(\.isNumber),
        let domid = UInt32(word)
      else { return nil }
      self = .monitor(domid: domid)
    default:
      return nil
    }
  }

  /// Create's options, by the names `Create` declares them under.
  private static func create(_ words: ArraySlice<String>) -> CreateRequest? {
    var request = CreateRequest()
    var words = words
    var seen: Set<String> = []
    while let word = words.popFirst() {
      guard word.hasPrefix("-") else {
        request.arguments.append(word)
        continue
      }
      var names: [String]
      var inline: String?
      if word.hasPrefix("--") {
        let parts = word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        names = [String(parts[0])]
        inline = parts.count == 2 ? String(parts[1]) : nil
      } else {
        names = word.dropFirst().map { "-" + String($0) }  // "-qe": "-q", "-e"
        if names.isEmpty { return nil }
      }
      for name in names {
        guard seen.insert(canonical(name)).inserted else { return nil }
        switch name {
        case "-n", "--dryrun": request.dryRun = true
        case "-v", "--verbose": request.verbose = true
        case "-q", "--quiet": request.quiet = true
        case "-F": request.foreground = true
        case "-e": request.noMonitor = true
        case "-c": request.console = true
        case "-p": request.paused = true
        case "--timeout", "--xenstore-timeout", "-f", "--defconfig":
          // A value: the option alone (or last in a cluster), its value after it or after "=".
          guard name == names.last, let value = inline ?? words.popFirst(), !value.hasPrefix("-") else { return nil }
          inline = nil
          switch name {
          case "--timeout":
            guard let seconds = Double(value) else { return nil }
            request.timeout = seconds
          case "--xenstore-timeout":
            guard let seconds = Double(value) else { return nil }
            request.xenstoreTimeout = seconds
          default: request.defconfig = value
          }
        default: return nil
        }
      }
      if inline != nil { return nil }  // "--quiet=yes"
    }
    return request.problem == nil ? request : nil
  }

  /// One name for an option's short and long spellings (so that `-q --quiet` is a repeat).
  private static func canonical(_ name: String) -> String {
    switch name {
    case "--dryrun": "-n"
    case "--verbose": "-v"
    case "--quiet": "-q"
    case "--defconfig": "-f"
    default: name
    }
  }
}
