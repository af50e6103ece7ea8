/// Domain management and daemon control: privileged requests (dom0 only; others get EACCES).
extension XenStoreClient {
  /// Tells the daemon about a new domain and its ring page and event channel
  /// (`xs_introduce_domain`, INTRODUCE `<domid>|<gfn>|<evtchn>|`); fires `@introduceDomain`.
  public func introduce(domain: UInt32, gfn: UInt64, eventChannel: UInt32) async throws(XenStoreError) {
    _ = try await request(.introduce, strings: [String(domain), String(gfn), String(eventChannel)],
                          operation: "introduce domain \(domain)")
  }

  /// Forgets a domain's connection (`xs_release_domain`, RELEASE); fires `@releaseDomain`.
  public func release(domain: UInt32) async throws(XenStoreError) {
    _ = try await request(.release, strings: [String(domain)], operation: "release domain \(domain)")
  }

  /// Whether the daemon knows `domain` (`xs_is_domain_introduced`, IS_DOMAIN_INTRODUCED).
  public func isDomainIntroduced(_ domain: UInt32) async throws(XenStoreError) -> Bool {
    let reply = try await request(.isDomainIntroduced, strings: [String(domain)], operation: "is domain \(domain) introduced")
    switch reply.replyText {
    case "T": return true
    case "F": return false
    default:
      throw XenStoreError(.protocolViolation, "is domain \(domain) introduced: xenstored answered \"\(reply.payloadDescription)\", not T or F")
    }
  }

  /// The home path of `domain`, `/local/domain/<domid>` (`xs_get_domain_path`, GET_DOMAIN_PATH).
  public func getDomainPath(_ domain: UInt32) async throws(XenStoreError) -> String {
    try await request(.getDomainPath, strings: [String(domain)], operation: "get domain path of \(domain)").replyText
  }

  /// Lets `domain` act with the privileges of `target` over the target's nodes, as a device
  /// model domain does for its guest (`xs_set_target`, SET_TARGET).
  public func setTarget(domain: UInt32, target: UInt32) async throws(XenStoreError) {
    _ = try await request(.setTarget, strings: [String(domain), String(target)],
                          operation: "set target of domain \(domain) to \(target)")
  }

  /// Clears a domain's shutdown flag after it resumed (`xs_resume_domain`, RESUME).
  public func resume(domain: UInt32) async throws(XenStoreError) {
    _ = try await request(.resume, strings: [String(domain)], operation: "resume domain \(domain)")
  }

  /// Removes every watch and transaction of this connection in the daemon (RESET_WATCHES);
  /// every watch sequence of this client ends.
  public func resetWatches() async throws(XenStoreError) {
    _ = try await request(.resetWatches, strings: [""], operation: "reset watches")
    let connection = connection
    do { _ = try await loop.submit { connection.finishAllWatches() } } catch { throw XenStoreError.from(error, "reset watches") }
  }

  /// Sends a daemon control command (`xs_control_command`, CONTROL `<cmd>|<arg>|...`), such
  /// as `check`, `log`, `quota`, `help`, and returns the daemon's text answer.
  public func control(_ command: String, _ arguments: [String] = []) async throws(XenStoreError) -> String {
    try await request(.control, strings: [command] + arguments, operation: "control \(command)").replyText
  }
}
