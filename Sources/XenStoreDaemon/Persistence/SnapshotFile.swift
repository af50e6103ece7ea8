import XenStore

/// A snapshot: the whole durable state as a sequence of framed records,
///
///     header | meta (sequence, domains, special access lists) | nodes… | end (node count)
///
/// Nodes go in batches of about 64 KiB, so damage costs the batch it hits (what `--recover`
/// keeps is everything before it), and the end record proves the file complete.
enum SnapshotFile {
  private static let batchBytes = 1 << 16

  static func encode(_ state: DurableState, generation: UInt64, bootID: String) -> [UInt8] {
    var out: [UInt8] = []
    Frame.append(FileHeader(kind: .snapshot, generation: generation, bootID: bootID).encoded(), to: &out)
    var meta = ByteWriter()
    meta.u8(RecordKind.snapshotMeta.rawValue)
    meta.u64(state.sequence)
    meta.domains(state.domains)
    meta.count(state.specialPermissions.count)
    for (name, permissions) in state.specialPermissions.sorted(by: { $0.key < $1.key }) {
      meta.string(name)
      meta.permissions(permissions)
    }
    Frame.append(meta.bytes, to: &out)

    var batch = ByteWriter()
    var inBatch = 0
    func flush() {
      guard inBatch > 0 else { return }
      var record = ByteWriter()
      record.u8(RecordKind.snapshotNodes.rawValue)
      record.count(inBatch)
      record.bytes.append(contentsOf: batch.bytes)
      Frame.append(record.bytes, to: &out)
      batch.bytes.removeAll(keepingCapacity: true)
      inBatch = 0
    }
    for path in state.nodes.keys.sorted() {
      let node = state.nodes[path]!
      batch.string(path)
      batch.data(node.value)
      batch.permissions(node.permissions)
      batch.count(node.children.count)
      for name in node.children { batch.string(name) }
      inBatch += 1
      if batch.bytes.count >= batchBytes { flush() }
    }
    flush()
    var end = ByteWriter()
    end.u8(RecordKind.snapshotEnd.rawValue)
    end.u64(UInt64(state.nodes.count))
    Frame.append(end.bytes, to: &out)
    return out
  }

  /// A decoded snapshot; `damage` says where decoding stopped if the file is not whole.
  struct Decoded {
    var header: FileHeader?
    var state: DurableState
    var damage: (offset: Int, reason: String)?
  }

  /// Decodes what it can: everything before the first damaged or malformed record.
  static func decode(_ bytes: [UInt8]) -> Decoded {
    var decoded = Decoded(header: nil, state: DurableState(nodes: [:], domains: [DomainEntry(domid: 0)],
                                                           specialPermissions: DurableState.initial.specialPermissions))
    var offset = 0
    var sawMeta = false
    while true {
      switch Frame.read(bytes, at: offset) {
      case .end:
        decoded.damage = (offset, "the snapshot ends before its end record")
        return decoded
      case .damaged(let reason):
        decoded.damage = (offset, reason)
        return decoded
      case .record(let payload, let next):
        do throws(ByteReader.Malformed) {
          var r = ByteReader(bytes, from: payload.lowerBound, to: payload.upperBound)
          let kind = try r.u8()
          switch (decoded.header, RecordKind(rawValue: kind)) {
          case (nil, _):
            let header = try FileHeader(decoding: bytes[payload])
            guard header.kind == .snapshot else { throw .init(description: "a log file, not a snapshot") }
            decoded.header = header
            offset = next
            continue
          case (_, .snapshotMeta?) where !sawMeta:
            sawMeta = true
            decoded.state.sequence = try r.u64()
            decoded.state.domains = try r.domains()
            let n = try r.count()
            for _ in 0..<n {
              let name = try r.string()
              guard DurableState.specialNames.contains(name) else { throw .init(description: "unknown special path \(name)") }
              decoded.state.specialPermissions[name] = try r.permissions()
            }
          case (_, .snapshotNodes?) where sawMeta:
            let n = try r.count()
            for _ in 0..<n {
              let path = try r.string()
              var node = Node(value: try r.data(), permissions: try r.permissions())
              let children = try r.count()
              for _ in 0..<children { node.addChild(try r.string()) }
              decoded.state.nodes[path] = node
            }
          case (_, .snapshotEnd?) where sawMeta:
            let count = try r.u64()
            guard count == UInt64(decoded.state.nodes.count) else {
              throw .init(description: "end record counts \(count) nodes, the snapshot holds \(decoded.state.nodes.count)")
            }
            if next != bytes.count { decoded.damage = (next, "bytes after the end record") }
            return decoded
          default:
            throw .init(description: "unexpected record type \(kind)")
          }
          guard r.isAtEnd else {
            throw .init(description: "trailing bytes in record")
          }
        } catch {
          decoded.damage = (offset, error.description)
          return decoded
        }
        offset = next
      }
    }
  }
}
