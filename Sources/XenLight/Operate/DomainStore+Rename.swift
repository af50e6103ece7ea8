import XenStore

extension DomainStore {
  /// Renames domain `domid` (its home's and its `/vm`'s name) in one transaction, refused if
  /// another domain has `name`.
  public func rename(domid: UInt32, to name: String) async throws(XenLightError) {
    do {
      try await xenstore.transaction(maxAttempts: 1000) { tx in
        let used = try await Self.usedDomids(tx)
        let names = try await Self.names(of: used.filter { $0 != 0 && $0 != domid }, tx)
        if let taken = names.first(where: { $0.value == name }) {
          throw XenLightError(.duplicateName, "a domain named \"\(name)\" already exists (domain \(taken.key))")
        }
        let vm = try await Self.readOptional(tx, "/local/domain/\(domid)/vm")
        var records = [XenStoreRecord("/local/domain/\(domid)/name", name)]
        if let vm, vm.hasPrefix("/vm/") { records.append(XenStoreRecord(vm + "/name", name)) }
        try await Self.write(records, tx)
      }
    } catch let error as XenLightError {
      throw error
    } catch {
      throw XenStoreConnector.failure("cannot rename domain \(domid)", error)
    }
  }
}
