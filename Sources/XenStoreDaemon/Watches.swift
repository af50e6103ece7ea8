import XenStore

/// Identifies one client connection of the engine.
public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
  public let rawValue: UInt64
  public init(rawValue: UInt64) { self.rawValue = rawValue }
  public var description: String { "conn#\(rawValue)" }
}

/// One registered watch.
struct Watch {
  let connection: ConnectionID
  /// Canonical path, or a special `@name`.
  let path: String
  let token: String
  /// Bytes stripped from event paths: a relative watch gets relative events.
  let prefixLength: Int
  /// Fire only for paths at most this many components below `path`.
  let depth: Int?

  /// The WATCH_EVENT payload for a change at `eventPath`.
  func event(for eventPath: String) -> Message {
    var payload: [UInt8] = []
    let shown = eventPath.utf8.dropFirst(prefixLength)
    payload.reserveCapacity(shown.count + token.utf8.count + 2)
    payload.append(contentsOf: shown)
    payload.append(0)
    payload.append(contentsOf: token.utf8)
    payload.append(0)
    return Message(type: .watchEvent, payload: payload)
  }
}

/// All watches, indexed by watched path, so that a change looks up only its own path and
/// its ancestors instead of scanning every watch. Loop-confined.
struct WatchTable {
  private var byPath: [String: [Watch]] = [:]

  /// Adds `watch`; false if the connection already has this (path, token).
  mutating func add(_ watch: Watch) -> Bool {
    if byPath[watch.path]?.contains(where: { $0.connection == watch.connection && $0.token == watch.token }) == true {
      return false
    }
    byPath[watch.path, default: []].append(watch)
    return true
  }

  /// Removes a connection's (path, token) watch; false if there is none.
  mutating func remove(_ connection: ConnectionID, path: String, token: String) -> Bool {
    guard var list = byPath[path],
          let i = list.firstIndex(where: { $0.connection == connection && $0.token == token }) else { return false }
    list.remove(at: i)
    byPath[path] = list.isEmpty ? nil : list
    return true
  }

  /// Removes every watch of `connection` on the given paths.
  mutating func removeAll(_ connection: ConnectionID, paths: some Sequence<String>) {
    for path in Set(paths) {
      guard var list = byPath[path] else { continue }
      list.removeAll { $0.connection == connection }
      byPath[path] = list.isEmpty ? nil : list
    }
  }

  /// Watches a change at `path` triggers: those on `path` itself, and unless `exact`, those on
  /// every ancestor (depth permitting).
  func matching(_ path: String, exact: Bool) -> [Watch] {
    var found: [Watch] = byPath[path] ?? []
    if exact || XenStorePath.isSpecial(path) { return found }
    var ancestor = path
    while ancestor != "/" {
      ancestor = XenStorePath.parent(of: ancestor)
      if let list = byPath[ancestor] { found.append(contentsOf: list) }
    }
    return found.filter { w in
      guard let depth = w.depth else { return true }
      return XenStorePath.depth(of: path, below: w.path) <= depth
    }
  }
}
