extension QMPClient {
  /// Waits up to `limit` for QEMU to report device `id` gone after a `device_del` (the guest
  /// let go of it): `DEVICE_DELETED` for the device, or, with `part`, for that child of it
  /// (QEMU reports a vCPU's local APIC, `lapic`, and the vCPU itself only once nothing holds
  /// it). Events that came since the session began count. False on timeout or a closed session.
  func awaitDeletion(of id: String, part: String? = nil, within limit: Duration) async -> Bool {
    let events = self.events
    let partPath = part.map { "/machine/peripheral/\(id)/\($0)" }
    let deleted = try? await first(within: limit) { () async -> Bool in
      for await event in events where event.name == "DEVICE_DELETED" {
        if event.data["device"]?.stringValue == id || (partPath != nil && event.data["path"]?.stringValue == partPath) {
          return true
        }
      }
      return false
    }
    return deleted == true
  }
}
