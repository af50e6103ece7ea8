import Spawn

/// Where the device model's PCI devices sit, by their qdev ids, so that the receiving device
/// model is built with the same layout. QEMU's state is addressed by bus position
/// (`0000:00:03.0/virtio-balloon`); a device added while the guest ran took the next free slot,
/// while a command line built from the config afterwards puts it among the boot devices, and
/// the load fails ("Unknown savevm section"). So the sender records `query-pci`'s slots and
/// the receiver pins each `-device` with an `id=` to its slot (`addr=`).
public struct PCISlots: Hashable, Sendable {
  /// qdev id → "SS.F" (hex slot, function), as QEMU's `addr=` takes it.
  public var slots: [String: String]

  public init(slots: [String: String]) { self.slots = slots }

  /// From a `query-pci` reply: the root bus's devices that have an id.
  public init(queryPCI reply: JSON) {
    var slots: [String: String] = [:]
    for bus in reply.arrayValue ?? [] where bus["bus"]?.intValue == 0 {
      for device in bus["devices"]?.arrayValue ?? [] {
        guard let id = device["qdev_id"]?.stringValue, !id.isEmpty, let slot = device["slot"]?.intValue,
          let function = device["function"]?.intValue
        else { continue }
        slots[id] = Self.hex(slot) + "." + String(function, radix: 16)
      }
    }
    self.slots = slots
  }

  /// One `id=SS.F` a line, sorted: the save file's record.
  public var text: String { slots.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)\n" }.joined() }

  public init(text: String) {
    var slots: [String: String] = [:]
    for line in text.split(separator: "\n") {
      guard let equals = line.firstIndex(of: "=") else { continue }
      slots[String(line[..<equals])] = String(line[line.index(after: equals)...])
    }
    self.slots = slots
  }

  /// `arguments` with each `-device` whose `id=` has a recorded slot (and no `addr=` of its
  /// own) given that slot.
  public func pin(_ arguments: [String]) -> [String] {
    var pinned = arguments
    for index in pinned.indices.dropLast() where pinned[index] == "-device" {
      let options = pinned[index + 1].split(separator: ",").map(String.init)
      guard !options.contains(where: { $0.hasPrefix("addr=") }),
        let id = options.first(where: { $0.hasPrefix("id=") }).map({ String($0.dropFirst(3)) }), let slot = slots[id]
      else { continue }
      pinned[index + 1] += ",addr=" + slot
    }
    return pinned
  }

  static func hex(_ value: Int64) -> String {
    let digits = String(value, radix: 16)
    return digits.count < 2 ? "0" + digits : digits
  }
}
