#if canImport(Glibc)
import Glibc
#endif
import Spawn
import XenStore

/// `xl block-attach`, `block-detach`, `block-list`, `cd-insert` and `cd-eject` on a running
/// guest, over its device model's QMP socket, as libxl's libxl_disk.c does over a backend.
///
/// xl opens every image itself and passes the descriptor (`add-fd`, then `/dev/fdset/N`), so
/// a confined QEMU never opens a host path. A disk added while the guest runs is always a
/// `virtio-blk-pci` device, whatever its vdev: QEMU's IDE bus takes no hotplug, as on Xen an
/// `hdX` added later reaches an HVM guest only as a PV disk. Each change is recorded in the
/// backend and frontend records and in the saved config a restart re-creates the guest from.
public struct DiskControl: Sendable {
  public let control: DomainControl
  public let paths: ToolstackPaths
  /// How long the guest has to let go of a disk (libxl's LIBXL_DESTROY_TIMEOUT, 10 s).
  public var removalTimeout: Duration = .seconds(10)

  public init(control: DomainControl, paths: ToolstackPaths) {
    self.control = control
    self.paths = paths
  }

  var store: DomainStore { control.store }

  /// One line of `xl block-list`.
  public struct Listed: Sendable, Hashable {
    public var devid: Int
    public var backendID: Int
    public var frontendID: UInt32
    public var state: Int
    public var eventChannel: Int
    public var ringRef: Int
    public var backendPath: String
  }

  /// The domain's disks, by devid, from their frontend and backend records.
  public func list(_ target: DomainControl.Target) async throws(XenLightError) -> [Listed] {
    let domid = target.domid
    do {
      let devids = try await DomainStore.directoryOrEmpty(store.xenstore, "/local/domain/\(domid)/device/vbd").compactMap { Int($0) }
      var listed: [Listed] = []
      for devid in devids.sorted() {
        let front = try await store.read(
          ["backend", "backend-id", "state", "event-channel", "ring-ref"], under: VirtualDisk.frontendPath(domid: domid, devid: devid))
        listed.append(Listed(
          devid: devid, backendID: front["backend-id"].flatMap { Int($0) } ?? 0, frontendID: domid,
          state: front["state"].flatMap { Int($0) } ?? 0, eventChannel: front["event-channel"].flatMap { Int($0) } ?? -1,
          ringRef: front["ring-ref"].flatMap { Int($0) } ?? -1, backendPath: front["backend"] ?? ""))
      }
      return listed
    } catch {
      throw XenStoreConnector.failure("cannot read domain \(domid)'s disks", error)
    }
  }

  /// `xl block-attach`: opens the image, hands it to QEMU, adds the device, records it.
  /// Refused, with nothing changed, for a vdev the domain has, a CD-ROM drive, an image that
  /// cannot be opened.
  public func attach(_ disk: DiskSpec, to target: DomainControl.Target) async throws(XenLightError) {
    try control.require(target, "attach a disk to", allowed: [.running, .paused])
    let devid = try Self.devid(disk.vdev)
    if disk.isCDROM {
      throw XenLightError(
        .invalidConfig,
        "\(disk.vdev): a CD-ROM drive cannot be added while the guest runs (QEMU's IDE bus takes no hotplug); give the drive in the config (an empty one: \"\(disk.vdev):cdrom,r\" after the target's place, or devtype=cdrom without target) and use xl cd-insert")
    }
    try await serialized(target) { () async throws(XenLightError) in
      let (recorded, restricted) = try await state(target, devid)
      if recorded {
        throw XenLightError(.invalidConfig, "domain \(target.domid) (\(target.name)) already has a disk \(disk.vdev) (devid \(devid))")
      }
      let (opened, blockDevice) = try Self.open(disk, restricted: restricted)
      defer { for fd in opened { close(fd) } }
      // The records go out while QEMU adds the device (xenstored's sync overlaps QEMU's
      // work), and are taken back if QEMU refuses.
      let records = Task { [store] () async -> XenLightError? in
        do { try await DomainStore.write(VirtualDisk.records(disk, domid: target.domid), store.xenstore) } catch {
          return XenStoreConnector.failure("cannot record domain \(target.domid)'s disk \(disk.vdev)", error)
        }
        return nil
      }
      let added: Result<Void, XenLightError>
      do throws(XenLightError) {
        try await control.session(target) { qmp throws(XenLightError) in
          let node = try await Self.addNode(disk, opened, blockDevice: blockDevice, qmp)
          do throws(XenLightError) {
            try await qmp.execute("device_add", [
              ("driver", .string("virtio-blk-pci")), ("id", .string(VirtualDisk.deviceID(disk.vdev))), ("drive", .string(node)),
            ])
          } catch {
            await Self.removeNode(node, qmp)
            throw XenLightError(error.code, "\(disk.vdev): \(error.message)")
          }
        }
        added = .success(())
      } catch {
        added = .failure(error)
      }
      let recordFailure = await records.value
      if case .failure(let error) = added {
        try? await removeRecords(target, devid)
        throw error
      }
      if let recordFailure { throw recordFailure }
      try editSavedDisks(target) { $0 + [disk] }
    }
  }

  /// `xl block-detach`: asks the guest to let go of the device (`device_del`), waits for
  /// QEMU's `DEVICE_DELETED` (up to `removalTimeout`), then drops the image and the records.
  /// With `force`, does not wait: the records go at once, QEMU removes the device when the
  /// guest lets go.
  public func detach(_ vdev: String, from target: DomainControl.Target, force: Bool) async throws(XenLightError) {
    try control.require(target, "detach a disk from", allowed: [.running, .paused])
    let devid = try Self.devid(vdev)
    try await serialized(target) { () async throws(XenLightError) in
      guard try await isRecorded(target, devid) else {
        throw XenLightError(.notFound, "domain \(target.domid) (\(target.name)): device \(vdev) not connected")
      }
      if try await deviceType(target, devid) == "cdrom" {
        throw XenLightError(
          .invalidConfig,
          "\(vdev) is a CD-ROM drive on QEMU's IDE bus, which takes no hot-unplug; use xl cd-eject \(target.name) \(vdev)")
      }
      let timeout = removalTimeout
      try await control.session(target) { qmp throws(XenLightError) in
        let node = try await Self.medium(of: vdev, qmp)
        let id = VirtualDisk.deviceID(vdev)
        var gone = false
        do throws(XenLightError) {
          try await qmp.execute("device_del", [("id", .string(id))])
        } catch where error.message.contains("Device '\(id)' not found") {
          gone = true  // the guest let go after an earlier detach timed out
        } catch {
          throw XenLightError(error.code, "\(vdev): \(error.message)")  // an IDE disk: QEMU's IDE bus takes no unplug
        }
        if !gone && !force {
          let deleted = await qmp.awaitDeletion(of: id, within: timeout)
          guard deleted else {
            throw XenLightError(
              .timedOut,
              "domain \(target.domid) (\(target.name)) did not release \(vdev) within \(timeout.readable); it stays attached. The guest must eject it (ACPI PCI hotplug); run xl block-detach again once it has, or xl block-detach -f to drop it from the records now")
          }
          gone = true
        }
        if gone, let node { await Self.removeNode(node, qmp) }
      }
      try await removeRecords(target, devid)
      try editSavedDisks(target) { $0.filter { $0.vdev != vdev } }
    }
  }

  /// `xl cd-insert`: puts `image` in CD-ROM drive `vdev` (replacing what it held).
  public func insert(_ image: String, into vdev: String, of target: DomainControl.Target) async throws(XenLightError) {
    try await changeMedium(vdev, target, to: image)
  }

  /// `xl cd-eject`: leaves CD-ROM drive `vdev` empty.
  public func eject(_ vdev: String, of target: DomainControl.Target) async throws(XenLightError) {
    try await changeMedium(vdev, target, to: nil)
  }

  private func changeMedium(_ vdev: String, _ target: DomainControl.Target, to image: String?) async throws(XenLightError) {
    try control.require(target, image == nil ? "eject a CD in" : "insert a CD in", allowed: [.running, .paused])
    let devid = try Self.devid(vdev)
    var disk: DiskSpec
    do {
      disk = try DiskSpec.parse("vdev=\(vdev),access=r,devtype=cdrom,target=\(image ?? "")")
    } catch {
      throw XenLightError(.invalidConfig, "\(vdev): \(error)")
    }
    if let image, access(image, F_OK) != 0 { throw XenLightError(.io, "Cannot stat file: \(image)", errno: errno) }
    try await serialized(target) { () async throws(XenLightError) in
      guard try await isRecorded(target, devid) else {
        throw XenLightError(.notFound, "domain \(target.domid) (\(target.name)): device \(vdev) not connected")
      }
      guard try await deviceType(target, devid) == "cdrom" else {
        throw XenLightError(.invalidConfig, "domain \(target.domid) (\(target.name)): \(vdev) is not a CD-ROM drive")
      }
      let restricted = try await state(target, devid).restricted
      var opened: [Int32] = []
      defer { for fd in opened { close(fd) } }
      if image != nil { opened = try Self.open(disk, restricted: restricted).descriptors }
      try await control.session(target) { [opened, disk] qmp throws(XenLightError) in
        let id = VirtualDisk.deviceID(vdev)
        let old = try await Self.medium(of: vdev, qmp)
        let new = opened.isEmpty ? nil : try await Self.addNode(disk, opened, blockDevice: false, qmp)
        do throws(XenLightError) {
          try await qmp.execute("blockdev-open-tray", [("id", .string(id)), ("force", .bool(true))])
          if old != nil { try await qmp.execute("blockdev-remove-medium", [("id", .string(id))]) }
          if let new { try await qmp.execute("blockdev-insert-medium", [("id", .string(id)), ("node-name", .string(new))]) }
          try await qmp.execute("blockdev-close-tray", [("id", .string(id))])
        } catch {
          if let new { await Self.removeNode(new, qmp) }
          throw XenLightError(error.code, "\(vdev): \(error.message)")
        }
        if let old { await Self.removeNode(old, qmp) }
      }
      disk.format = image == nil ? "raw" : disk.format
      try await store.update(domid: target.domid, VirtualDisk.records(disk, domid: target.domid))
      try editSavedDisks(target) { disks in disks.map { $0.vdev == vdev ? disk : $0 } }
    }
  }

  // MARK: - Steps

  static func devid(_ vdev: String) throws(XenLightError) -> Int {
    guard let devid = VirtualDisk.devid(vdev) else {
      throw XenLightError(.invalidConfig, "Invalid or unsupported virtual disk identifier \(vdev)")
    }
    return devid
  }

  /// One device change at a time per domain (QMP session, records and saved config together).
  private func serialized(_ target: DomainControl.Target, _ body: () async throws(XenLightError) -> Void) async throws(XenLightError) {
    try ToolstackPaths.makeDirectories(paths.runDirectory)
    let lock = try await FileLock.acquire(paths.runDirectory + "/devices-\(target.domid).lock")
    defer { lock.release() }
    try await body()
  }

  private func isRecorded(_ target: DomainControl.Target, _ devid: Int) async throws(XenLightError) -> Bool {
    try await state(target, devid).recorded
  }

  /// Whether the domain has disk `devid` recorded, and whether its device model is restricted
  /// (it has a root directory of its own recorded), in one round trip.
  private func state(_ target: DomainControl.Target, _ devid: Int) async throws(XenLightError) -> (recorded: Bool, restricted: Bool) {
    let paths = [VirtualDisk.frontendPath(domid: target.domid, devid: devid) + "/backend", target.layout.chrootPathPath]
    do {
      let found = try await store.xenstore.pipelineResults(paths.map { .read($0) }).map { result -> Bool in
        if case .failure(let error) = result {
          if error.code == .ENOENT { return false }
          throw error
        }
        return true
      }
      return (found[0], found[1])
    } catch {
      throw XenStoreConnector.failure("cannot read domain \(target.domid)'s disks", error)
    }
  }

  private func deviceType(_ target: DomainControl.Target, _ devid: Int) async throws(XenLightError) -> String? {
    do {
      return try await DomainStore.readOptional(
        store.xenstore, VirtualDisk.frontendPath(domid: target.domid, devid: devid) + "/device-type")
    } catch {
      throw XenStoreConnector.failure("cannot read domain \(target.domid)'s disks", error)
    }
  }

  private func removeRecords(_ target: DomainControl.Target, _ devid: Int) async throws(XenLightError) {
    do {
      for result in try await store.xenstore.pipelineResults(VirtualDisk.recordRoots(domid: target.domid, devid: devid).map { .rm($0) }) {
        if case .failure(let error) = result, error.code != .ENOENT { throw error }
      }
    } catch let error as XenStoreBatchError {
      throw XenStoreConnector.failure("cannot remove domain \(target.domid)'s disk records", error.error)
    } catch {
      throw XenStoreConnector.failure("cannot remove domain \(target.domid)'s disk records", error)
    }
  }

  /// Rewrites the saved config's `disk` list.
  private func editSavedDisks(_ target: DomainControl.Target, _ edit: ([DiskSpec]) -> [DiskSpec]) throws(XenLightError) {
    let path = paths.savedConfig(domid: target.domid, uuid: target.layout.uuid)
    try SavedConfigEditor.update(path) { text throws(XenLightError) in
      let disks = try DomainConfiguration(try ConfigFile.parse(text, file: path), source: path).disks
      return SavedConfigEditor.replacingList("disk", with: edit(disks).map(\.canonical), in: text)
    }
  }

  /// The image opened as QEMU's block layer needs it: read-write and read-only for a
  /// writable disk (QEMU asks the set for both), read-only otherwise.
  static func open(_ disk: DiskSpec, restricted: Bool) throws(XenLightError) -> (descriptors: [Int32], blockDevice: Bool) {
    var opened: [Int32] = []
    for flags in disk.readOnly ? [O_RDONLY] : [O_RDWR, O_RDONLY] {
      do {
        opened.append(try Restriction.open(
          DeviceModelCommand.PassedFile(descriptor: -1, path: disk.target, flags: flags, what: "disk \(disk.vdev)"),
          restricted: restricted))
      } catch {
        for fd in opened { close(fd) }
        throw error
      }
    }
    var info = stat()
    let blockDevice = fstat(opened[0], &info) == 0 && info.st_mode & S_IFMT == S_IFBLK
    return (opened, blockDevice)
  }

  /// Passes `descriptors` as one fd set and adds the image's block node on `/dev/fdset/N`,
  /// named after the set (`VirtualDisk.nodeName`). Returns the node's name; on failure
  /// nothing is left.
  static func addNode(_ disk: DiskSpec, _ descriptors: [Int32], blockDevice: Bool, _ qmp: QMPClient) async throws(XenLightError)
    -> String
  {
    var set: Int64?
    do throws(XenLightError) {
      for fd in descriptors {
        let added = try await qmp.execute("add-fd", set.map { [("fdset-id", .number($0))] } ?? [], passing: fd)
        guard let id = added["fdset-id"]?.intValue else { throw XenLightError(.deviceModelFailed, "add-fd gave no fdset-id: \(added.compact)") }
        set = id
      }
      guard let set else { throw XenLightError(.deviceModelFailed, "no descriptor to pass") }
      let node = VirtualDisk.nodeName(disk.vdev, Int(set))
      let protocolDriver = blockDevice ? "host_device" : "file"
      try await qmp.execute("blockdev-add", [
        ("driver", .string(disk.qemuFormat)), ("node-name", .string(node)), ("read-only", .bool(disk.readOnly)),
        ("file", .object([("driver", .string(protocolDriver)), ("filename", .string("/dev/fdset/\(set)"))])),
      ])
      return node
    } catch {
      if let set { _ = try? await qmp.execute("remove-fd", [("fdset-id", .number(set))]) }
      throw XenLightError(error.code, "disk \(disk.vdev): \(error.message)")
    }
  }

  /// Deletes block node `node` and the fd set it was opened from (its name's number).
  static func removeNode(_ node: String, _ qmp: QMPClient) async {
    _ = try? await qmp.execute("blockdev-del", [("node-name", .string(node))])
    if let set = VirtualDisk.fdset(ofNode: node) { _ = try? await qmp.execute("remove-fd", [("fdset-id", .number(Int64(set)))]) }
  }

  /// The block node device `vdev` has inserted (`query-block`), nil for an empty drive.
  static func medium(of vdev: String, _ qmp: QMPClient) async throws(XenLightError) -> String? {
    let blocks = try await qmp.execute("query-block").arrayValue ?? []
    let id = VirtualDisk.deviceID(vdev)
    let block = blocks.first { $0["qdev"]?.stringValue == id || $0["qdev"]?.stringValue?.hasPrefix("/machine/peripheral/\(id)/") == true }
    return block?["inserted"]?["node-name"]?.stringValue
  }
}
