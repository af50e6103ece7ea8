import XenStore

/// Collects the durable changes of the request being handled, as the store and the engine
/// make them, so that the request becomes one log record. Confined to the server's loop.
final class ChangeRecorder {
  private(set) var changes: [StateChange] = []
  /// Paths the request put or removed (a read of them must wait for the record's sync).
  private(set) var paths: [String] = []
  /// The domain table changed; recorded whole when the request ends.
  var domainsChanged = false
  /// An access list of `@introduceDomain` or `@releaseDomain` changed; recorded likewise.
  var specialPermissionsChanged = false

  /// `oldChildren`: the child list of the node replaced (DIRECTORY bytes), nil if new.
  func put(_ path: String, _ node: Node, replacingChildren oldChildren: [UInt8]?) {
    changes.append(.put(path: path, value: node.value, permissions: node.permissions,
                        children: ChildrenChange(from: oldChildren, to: node)))
    paths.append(path)
  }

  func remove(_ path: String) {
    changes.append(.remove(path: path))
    paths.append(path)
  }

  /// What one request changed.
  struct Taken {
    var changes: [StateChange]
    /// Nodes put or removed.
    var paths: [String]
    /// The domain table or a special access list changed (access checks depend on both).
    var domainsChanged: Bool
  }

  /// The request's changes (the domain table and special access lists last, as they stand
  /// at the end of the request), leaving the recorder empty for the next request.
  func take(from engine: XenStoreEngine) -> Taken {
    if changes.isEmpty && !domainsChanged && !specialPermissionsChanged {
      return Taken(changes: [], paths: [], domainsChanged: false)
    }
    if domainsChanged { changes.append(.domains(engine.durableDomains)) }
    if specialPermissionsChanged {
      for (name, permissions) in engine.specialPermissions.sorted(by: { $0.key < $1.key }) {
        changes.append(.specialPermissions(name: name, permissions))
      }
    }
    defer {
      changes.removeAll(keepingCapacity: true)
      paths.removeAll(keepingCapacity: true)
      domainsChanged = false
      specialPermissionsChanged = false
    }
    return Taken(changes: changes, paths: paths, domainsChanged: domainsChanged || specialPermissionsChanged)
  }
}
