import XenStore

/// Taking the durable state out of the engine and putting it back.
extension XenStoreEngine {
  /// The durable part of the state, now: O(1), the node dictionary is shared copy-on-write.
  var durableState: DurableState {
    DurableState(nodes: store.contents, domains: durableDomains, specialPermissions: specialPermissions)
  }

  /// The introduced domains and their targets, by domid.
  var durableDomains: [DomainEntry] {
    domains.map { DomainEntry(domid: $0.key, target: $0.value.target) }.sorted { $0.domid < $1.domid }
  }

  /// Replaces the durable state with `state`: at startup, before any connection.
  func restore(_ state: DurableState) {
    store.replaceAll(with: state.nodes)
    // The loader refuses a table naming a domain twice; should one get here, never trap.
    domains = Dictionary(state.domains.map { ($0.domid, Domain(target: $0.target)) }, uniquingKeysWith: { first, _ in first })
    if domains[0] == nil { domains[0] = Domain() }
    specialPermissions = state.specialPermissions
  }

  /// Introduced domains other than dom0, whose sockets the server opens after a restart.
  var restoredDomains: [UInt32] { domains.keys.filter { $0 != 0 }.sorted() }
}
