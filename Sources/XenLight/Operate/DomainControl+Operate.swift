#if canImport(Glibc)
import Glibc
#endif
import Spawn
import XenStore

/// libxl's triggers (`libxl_trigger`), as `xl trigger` and `xl button-press` name them.
public enum DomainTrigger: String, Sendable, CaseIterable {
  case power, sleep, nmi, `init`, reset, s3resume

  /// The QMP command that does it to a local guest; nil where QEMU has none.
  var qmpCommand: String? {
    switch self {
    case .power: "system_powerdown"
    case .nmi: "inject-nmi"
    case .reset: "system_reset"
    case .s3resume: "system_wakeup"
    case .sleep, .`init`: nil
    }
  }
}

/// The operator's verbs beside pause and shutdown: triggers, sysrq, the monitor's own
/// commands, a core dump, a new name, a new config for the next restart.
extension DomainControl {
  /// `xl trigger` / `xl button-press`: the event, through QMP.
  public func send(_ trigger: DomainTrigger, to target: Target) async throws(XenLightError) {
    guard let command = trigger.qmpCommand else {
      throw XenLightError(
        .invalidState,
        "domain \(target.domid) (\(target.name)): trigger \"\(trigger.rawValue)\" needs the Xen hypervisor; QEMU has no way to send it")
    }
    try require(target, "send \(trigger.rawValue) to", allowed: trigger == .s3resume ? [.running, .paused] : [.running])
    try await qmp(target, command)
  }

  /// `xl sysrq`: libxl's request (`control/sysrq`, for a guest with xenbus), and on the local
  /// target the key itself, Alt+SysRq+`key` on the guest's keyboard (QMP `send-key`).
  public func sysrq(_ key: Character, to target: Target) async throws(XenLightError) {
    guard let qcode = Self.qcode(key) else {
      throw XenLightError(.invalidConfig, "invalid sysrq key \"\(key)\" (a letter or a digit)")
    }
    try require(target, "send sysrq to", allowed: [.running])
    let written = try await store.update(domid: target.domid, [XenStoreRecord(target.layout.domainPath + "/control/sysrq", String(key))])
    guard written else { throw XenLightError(.notFound, "no domain \"\(target.name)\"") }
    if target.deviceModelTarget == .local {
      let keys: [JSON] = ["alt", "sysrq", qcode].map { .object([("type", .string("qcode")), ("data", .string($0))]) }
      try await qmp(target, "send-key", [("keys", .array(keys))])
    }
  }

  /// QEMU's name of a letter or digit key.
  static func qcode(_ key: Character) -> String? {
    guard key.isASCII, key.isLetter || key.isNumber else { return nil }
    return String(key).lowercased()
  }

  /// `xl qemu-monitor-command`: a human monitor command line, and what QEMU printed.
  public func monitorCommand(_ line: String, on target: Target) async throws(XenLightError) -> String {
    let output = try await qmp(target, "human-monitor-command", [("command-line", .string(line))])
    return output.stringValue ?? ""
  }

  /// `xl dump-core`: the guest's memory as an ELF core (QMP `dump-guest-memory`), written to
  /// `path`, which xl opens first: a path it cannot write fails before QEMU is asked, and
  /// nothing is created. The guest is paused during the dump, as libxl's core dump does.
  public func dumpCore(_ target: Target, to path: String) async throws(XenLightError) {
    try require(target, "dump the core of", allowed: [.running, .paused, .crashed, .shutdown])
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      let e = errno
      throw XenLightError(.io, "cannot write the core of domain \(target.domid) (\(target.name)) to \(path): \(String(cString: strerror(e)))", errno: e)
    }
    close(fd)
    do throws(XenLightError) {
      try await qmp(target, "dump-guest-memory", [("paging", .bool(false)), ("protocol", .string("file:" + path))])
    } catch {
      unlink(path)
      throw XenLightError(error.code, "core dump of domain \(target.domid) (\(target.name)) failed: \(error.message)")
    }
  }

  /// `xl rename`: the new name in the domain's records (its home and `/vm/<uuid>`) and in the
  /// config kept for a restart, in one transaction that refuses a name another domain has.
  public func rename(_ target: Target, to name: String, paths: ToolstackPaths) async throws(XenLightError) {
    if let problem = DomainConfiguration.problem(withName: name) { throw XenLightError(.invalidConfig, "cannot rename domain \(target.domid) (\(target.name)): \(problem)") }
    let layout = target.layout
    let outcome: RenameOutcome
    do {
      outcome = try await store.xenstore.transaction(maxAttempts: 1000) { tx in
        guard try await DomainStore.readOptional(tx, layout.domainPath + "/name") != nil else { return RenameOutcome.gone }
        let others = try await DomainStore.usedDomids(tx).filter { $0 != 0 && $0 != target.domid }
        if let holder = try await DomainStore.names(of: others, tx).first(where: { $0.value == name }) { return .taken(holder.key) }
        try await DomainStore.write([XenStoreRecord(layout.domainPath + "/name", name), XenStoreRecord(layout.vmPath + "/name", name)], tx)
        return .renamed
      }
    } catch {
      throw XenStoreConnector.failure("cannot rename domain \(target.domid)", error)
    }
    switch outcome {
    case .gone: throw XenLightError(.notFound, "no domain \"\(target.name)\"")
    case .taken(let holder):
      throw XenLightError(.duplicateName, "cannot rename domain \(target.domid) (\(target.name)) to \"\(name)\": domain \(holder) has that name")
    case .renamed:
      let saved = paths.savedConfig(domid: target.domid, uuid: layout.uuid)
      if let text = try? FileIO.readText(saved) {
        try FileIO.writeText(text + "name = \(ConfigValue.quoted(name))\n", to: saved)
      }
    }
  }

  private enum RenameOutcome: Sendable {
    case renamed, gone
    case taken(UInt32)
  }

  /// `xl config-update`: the config a restart re-creates the domain from (libxl's userdata),
  /// checked first; the running domain is left as it is.
  public func updateConfig(_ target: Target, text: String, source: String, paths: ToolstackPaths) async throws(XenLightError) {
    let domain = try DomainConfiguration(try ConfigFile.parse(text, file: source), source: source)
    guard domain.name == target.name else {
      throw XenLightError(
        .invalidConfig, "\(source): the config names domain \"\(domain.name)\", not \"\(target.name)\" (rename the domain with xl rename)")
    }
    try SavedConfig.write(text, uuid: target.layout.uuid, domid: target.domid, paths: paths)
  }
}

/// A domain's VNC display, as QMP `query-vnc` reports it.
public struct VNCDisplay: Sendable, Hashable {
  public var host: String
  /// The display number (the port less 5900), as vncviewer takes it.
  public var number: Int
  /// The display's password (`vncpasswd`), if it has one.
  public var password: String?
}

extension DomainControl {
  /// `xl vncviewer`: where the domain's display listens, and its password (`vncpasswd`, from
  /// the config kept for the domain, as libxl keeps it with the domain).
  public func vncDisplay(_ target: Target, paths: ToolstackPaths) async throws(XenLightError) -> VNCDisplay {
    let vnc = try await qmp(target, "query-vnc")
    guard vnc["enabled"]?.boolValue == true, let host = vnc["host"]?.stringValue, let port = vnc["service"]?.stringValue.flatMap({ Int($0) })
    else {
      throw XenLightError(.invalidState, "domain \(target.domid) (\(target.name)) has no VNC display (the config needs vnc = 1)")
    }
    let saved = paths.savedConfig(domid: target.domid, uuid: target.layout.uuid)
    let config = (try? ConfigFile.read(contentsOf: saved)).flatMap { try? DomainConfiguration($0, source: saved) }
    return VNCDisplay(host: host, number: port - 5900, password: config?.display.vncPassword)
  }
}
