import XenStore

/// A domain's name, uuid and start time: what `xl uptime`, `xl vm-list`, `xl domid` and
/// `xl domname` print.
public struct DomainSummary: Hashable, Sendable {
  public var domid: UInt32
  public var name: String
  public var uuid: String?
  /// `/vm/<uuid>/start_time`, seconds since the epoch.
  public var startTime: Double?
}

extension DomainStore {
  /// The summaries of `domids` (every guest when nil), in two pipelined batches of reads
  /// after the domids: names and `vm` paths, then start times.
  public func summaries(_ domids: [UInt32]? = nil) async throws(XenLightError) -> [DomainSummary] {
    do {
      var selected = domids
      if selected == nil { selected = try await guestDomids() }
      let domids = selected!
      let first = try await xenstore.pipelineResults(domids.flatMap { [.read("/local/domain/\($0)/name"), .read("/local/domain/\($0)/vm")] })
      func text(_ result: Result<[UInt8], XenStoreError>) throws -> String? {
        switch result {
        case .success(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .failure(let error) where error.code == .ENOENT: return nil
        case .failure(let error): throw error
        }
      }
      var summaries: [DomainSummary] = []
      var vms: [String] = []
      for (index, domid) in domids.enumerated() {
        let name = try text(first[2 * index])
        let vm = try text(first[2 * index + 1]) ?? ""
        guard let name else { continue }  // gone between the two reads
        summaries.append(DomainSummary(domid: domid, name: name, uuid: vm.hasPrefix("/vm/") ? String(vm.dropFirst(4)) : nil))
        vms.append(vm)
      }
      let starts = try await xenstore.pipelineResults(vms.map { .read($0.hasPrefix("/vm/") ? $0 + "/start_time" : "/vm/-/start_time") })
      for index in summaries.indices { summaries[index].startTime = try text(starts[index]).flatMap(Double.init) }
      return summaries
    } catch let error as XenLightError {
      throw error
    } catch {
      throw XenStoreConnector.failure("cannot read the domains' records", error)
    }
  }
}

extension Toolstack {
  /// The summaries of the domains `references` names (every guest when empty); an unknown
  /// one is `.notFound`.
  public func summaries(_ references: [String] = []) async throws(XenLightError) -> [DomainSummary] {
    let found = try await withStore { store throws(XenLightError) -> [DomainSummary] in
      var selection: [UInt32]?
      if !references.isEmpty {
        selection = []
        for reference in references { selection!.append(try await find(reference, in: store)) }
      }
      return try await deadline.run(store.xenstore, "reading the domains") { [selection] () async throws(XenLightError) in
        try await store.summaries(selection)
      }
    }
    guard let found else {
      if let first = references.first { throw XenLightError(.notFound, "no domain \"\(first)\"") }
      return []
    }
    return found
  }
}

/// `xl uptime`'s lines, as xl_info.c prints them.
public enum UptimeFormat {
  /// "Name ID Uptime" (the long form only).
  public static let header = DomainListFormat.pad("Name", 33) + " " + DomainListFormat.lpad("ID", 4) + " Uptime\n"

  /// One domain's line: `name id d days, hh:mm:ss`, or with `short` ` now up d days, hh:mm, name (id)`.
  public static func line(name: String, domid: UInt32, uptime seconds: Int, now: String, short: Bool) -> String {
    short
      ? " \(now) up \(text(seconds, short: true)), \(name) (\(domid))\n"
      : DomainListFormat.pad(name, 33) + " " + DomainListFormat.lpad("\(domid)", 4) + " " + text(seconds, short: false) + "\n"
  }

  /// xl's `uptime_to_string`: "1 day,  2:03:04", " 2:03" (short, no seconds).
  public static func text(_ uptime: Int, short: Bool) -> String {
    let day = uptime / 86400
    let hour = uptime % 86400 / 3600
    let min = uptime % 3600 / 60
    let sec = uptime % 60
    func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    let hh = hour < 10 ? " \(hour)" : "\(hour)"
    let clock = short ? "\(hh):\(two(min))" : "\(hh):\(two(min)):\(two(sec))"
    switch day {
    case 0: return clock
    case 1: return "1 day, \(clock)"
    default: return "\(day) days, \(clock)"
    }
  }
}
