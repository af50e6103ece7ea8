/// The node operations, the same on a plain connection (`XenStoreClient`) and inside a
/// transaction (`XenStoreTransaction`): each is one request (DIRECTORY may take several).
///
/// Paths are sent as given: absolute (`/local/domain/3/name`) or relative to the connection's
/// home (`/local/domain/<domid>`); the daemon checks them (EINVAL).
public protocol XenStoreOperations: Sendable {
  /// The connection the requests go out on.
  var client: XenStoreClient { get }
  /// The transaction the requests belong to; 0 for none (`XBT_NULL`).
  var transactionID: UInt32 { get }
}

extension XenStoreOperations {
  /// The value at `path` as bytes (`xs_read`, READ). Throws `.ENOENT` if there is no node.
  public func readBytes(_ path: String) async throws(XenStoreError) -> [UInt8] {
    try await client.request(.read, transaction: transactionID, strings: [path], operation: "read \(path)").payload
  }

  /// The value at `path` decoded as UTF-8 (invalid sequences become U+FFFD).
  public func read(_ path: String) async throws(XenStoreError) -> String {
    String(decoding: try await readBytes(path), as: UTF8.self)
  }

  /// Whether `path` exists (a READ that succeeds). Throws errors other than `.ENOENT`.
  public func exists(_ path: String) async throws(XenStoreError) -> Bool {
    do {
      _ = try await readBytes(path)
      return true
    } catch {
      guard error.code == .ENOENT else { throw error }
      return false
    }
  }

  /// Sets `path` to `value`, creating it and missing parents (`xs_write`, WRITE).
  public func write(_ path: String, bytes value: [UInt8]) async throws(XenStoreError) {
    var payload = Array(path.utf8)
    payload.append(0)
    payload.append(contentsOf: value)
    _ = try await client.request(.write, transaction: transactionID, payload: payload, operation: "write \(path)")
  }

  /// Sets `path` to the UTF-8 bytes of `value`.
  public func write(_ path: String, _ value: String) async throws(XenStoreError) {
    try await write(path, bytes: Array(value.utf8))
  }

  /// Creates `path` with an empty value if it does not exist (`xs_mkdir`, MKDIR).
  public func mkdir(_ path: String) async throws(XenStoreError) {
    _ = try await client.request(.mkdir, transaction: transactionID, strings: [path], operation: "mkdir \(path)")
  }

  /// Removes `path` and everything below it (`xs_rm`, RM). A missing node whose parent
  /// exists is not an error.
  public func rm(_ path: String) async throws(XenStoreError) {
    _ = try await client.request(.rm, transaction: transactionID, strings: [path], operation: "rm \(path)")
  }

  /// The names of `path`'s children (`xs_directory`, DIRECTORY). When the list exceeds one
  /// message (E2BIG) it is fetched in parts with DIRECTORY_PART, as libxenstore does.
  public func directory(_ path: String) async throws(XenStoreError) -> [String] {
    do {
      let reply = try await client.request(.directory, transaction: transactionID, strings: [path], operation: "directory \(path)")
      return reply.fields.map { String(decoding: $0, as: UTF8.self) }
    } catch {
      guard error.code == .E2BIG else { throw error }
      return try await directoryInParts(path)
    }
  }

  /// DIRECTORY_PART `<path>|<offset>|` → `<generation>|<child>|...`: the children as one
  /// NUL-separated string, fetched from byte `offset` on; the last part ends with an empty
  /// name. A changed generation means the node changed meanwhile: start again.
  private func directoryInParts(_ path: String) async throws(XenStoreError) -> [String] {
    var generation: [UInt8]?
    var names: [UInt8] = []
    while true {
      let reply: Message
      do {
        reply = try await client.request(.directoryPart, transaction: transactionID, strings: [path, String(names.count)],
                                         operation: "directory \(path)")
      } catch {
        guard error.code == .ENOSYS else { throw error }
        // A daemon without DIRECTORY_PART cannot list this node at all.
        throw XenStoreError(.E2BIG, "directory \(path): too many children for one message", errno: XenStoreError.Code.E2BIG.errnoValue)
      }
      guard let end = reply.payload.firstIndex(of: 0) else {
        throw XenStoreError(.protocolViolation, "directory \(path): DIRECTORY_PART reply without a generation")
      }
      let replyGeneration = Array(reply.payload[..<end])
      if let known = generation, known != replyGeneration {
        // Changed meanwhile: start over from offset 0, adopting the new generation.
        (generation, names) = (nil, [])
        continue
      }
      generation = replyGeneration
      let part = reply.payload[(end + 1)...]
      names.append(contentsOf: part)
      // Done when the accumulated names end with the empty terminating name ("...\0\0"),
      // or when the node has no children at all ("\0").
      if names.count <= 1 || names[names.count - 2] == 0 { break }
      if part.isEmpty {
        throw XenStoreError(.protocolViolation, "directory \(path): DIRECTORY_PART returned no progress")
      }
    }
    let fields = names.split(separator: 0, omittingEmptySubsequences: true)
    return fields.map { String(decoding: $0, as: UTF8.self) }
  }

  /// The access list of `path` (`xs_get_permissions`, GET_PERMS): the owner and everyone's
  /// default access first, then per-domain grants.
  public func getPermissions(_ path: String) async throws(XenStoreError) -> Permissions {
    let reply = try await client.request(.getPerms, transaction: transactionID, strings: [path], operation: "get permissions of \(path)")
    guard let permissions = Permissions(strings: reply.fields) else {
      throw XenStoreError(.protocolViolation, "get permissions of \(path): xenstored answered \"\(reply.payloadDescription)\"")
    }
    return permissions
  }

  /// Sets the access list of `path` (`xs_set_permissions`, SET_PERMS).
  public func setPermissions(_ path: String, _ permissions: Permissions) async throws(XenStoreError) {
    _ = try await client.request(.setPerms, transaction: transactionID, strings: [path] + permissions.entries.map(\.description),
                                 operation: "set permissions of \(path)")
  }
}
