import XenStore

/// How a disk is named everywhere it appears: its device number in xenstore (libxl's
/// `libxl__device_disk_dev_number`), its ids in QEMU, and its backend and frontend records.
public enum VirtualDisk {
  /// The device number xenstore keys the disk by: `xvdX` → 202<<8 | disk<<4 (1<<28 | disk<<8
  /// past xvdp), `hdX` → 3<<8 or 22<<8 | (disk&1)<<6, `sdX` → 8<<8 | disk<<4, `dNpM`, or a
  /// number as it is. nil: not a name libxl accepts.
  public static func devid(_ vdev: String) -> Int? {
    if let (disk, partition) = parseDN(vdev) { return xvdNumber(disk, partition) }
    if let (disk, partition) = parse(vdev, prefix: "xvd", maxDisk: (1 << 20) - 1, maxPartition: 255) {
      return xvdNumber(disk, partition)
    }
    if !vdev.isEmpty, vdev.allSatisfy(\.isNumber), let number = Int(vdev), number <= Int(Int32.max) { return number }
    if let (disk, partition) = parse(vdev, prefix: "hd", maxDisk: 3, maxPartition: 63) {
      return ((disk < 2 ? 3 : 22) << 8) | ((disk & 1) << 6) | partition
    }
    if let (disk, partition) = parse(vdev, prefix: "sd", maxDisk: 15, maxPartition: 15) {
      return (8 << 8) | (disk << 4) | partition
    }
    return nil
  }

  private static func xvdNumber(_ disk: Int, _ partition: Int) -> Int {
    disk <= 15 && partition <= 15 ? (202 << 8) | (disk << 4) | partition : (1 << 28) | (disk << 8) | partition
  }

  /// `<prefix><letters>[<partition>]`: letters a… z, aa… as libxl's `device_virtdisk_matches`.
  private static func parse(_ vdev: String, prefix: String, maxDisk: Int, maxPartition: Int) -> (Int, Int)? {
    guard vdev.hasPrefix(prefix) else { return nil }
    let rest = vdev.dropFirst(prefix.count)
    let letters = rest.prefix { $0 >= "a" && $0 <= "z" }
    let digits = rest.dropFirst(letters.count)
    guard !letters.isEmpty, digits.allSatisfy(\.isNumber) else { return nil }
    var disk = 0
    for letter in letters {
      disk = disk * 26 + Int(letter.asciiValue! - UInt8(ascii: "a")) + 1
      guard disk <= maxDisk + 1 else { return nil }
    }
    disk -= 1
    let partition = digits.isEmpty ? 0 : Int(digits) ?? Int.max
    guard disk <= maxDisk, partition <= maxPartition, digits.first != "0" || digits.count == 1 else { return nil }
    return (disk, partition)
  }

  /// `d<disk>p<partition>`.
  private static func parseDN(_ vdev: String) -> (Int, Int)? {
    guard vdev.hasPrefix("d"), let p = vdev.firstIndex(of: "p") else { return nil }
    guard let disk = Int(vdev[vdev.index(after: vdev.startIndex)..<p]), let partition = Int(vdev[vdev.index(after: p)...]),
      disk < (1 << 20), partition < 256
    else { return nil }
    return (disk, partition)
  }

  /// QEMU's qdev id of the disk's device: the vdev itself (`device_del xvdb`, `query-block`).
  public static func deviceID(_ vdev: String) -> String { vdev }

  /// A block node for the disk's image: `xl-<vdev>-<set>`, the id of the descriptor set QEMU
  /// opened it from (which also tells apart a CD drive's media), or `xl-<vdev>` for one
  /// opened by path.
  public static func nodeName(_ vdev: String, set: Int?) -> String { "xl-\(vdev)" + (set.map { "-\($0)" } ?? "") }

  /// The descriptor set a node was opened from, to remove with it; nil: opened by path.
  static func fdset(ofNode node: String) -> Int? {
    // A vdev has no dash: the part after one is the set.
    let name = node.dropFirst(3)
    guard node.hasPrefix("xl-"), let dash = name.lastIndex(of: "-") else { return nil }
    return Int(name[name.index(after: dash)...])
  }

  /// QEMU's protocol driver for the image: `host_device` for a device node, else `file`.
  static func hostDriver(_ target: String) -> String { target.hasPrefix("/dev/") ? "host_device" : "file" }

  /// `-blockdev`'s option string for `disk` on `file` (its path, or `/dev/fdset/N`).
  static func blockdevOption(node: String, disk: DiskSpec, file: String) -> String {
    "driver=\(disk.qemuFormat),node-name=\(node),read-only=\(disk.readOnly ? "on" : "off"),"
      + "file.driver=\(hostDriver(disk.target)),file.filename=\(file.replacingAll(",", with: ",,"))"
  }

  /// The backend's directory: `/local/domain/0/backend/vbd/<domid>/<devid>`.
  public static func backendPath(domid: UInt32, devid: Int) -> String { "/local/domain/0/backend/vbd/\(domid)/\(devid)" }
  /// The frontend's: `/local/domain/<domid>/device/vbd/<devid>`.
  public static func frontendPath(domid: UInt32, devid: Int) -> String { "/local/domain/\(domid)/device/vbd/\(devid)" }
  /// libxl's own copy: `/libxl/<domid>/device/vbd/<devid>`.
  public static func libxlPath(domid: UInt32, devid: Int) -> String { "/libxl/\(domid)/device/vbd/\(devid)" }

  /// xenbus's Connected: there is no PV handshake here, QEMU serves the disk from the start.
  static let connected = "4"

  /// The records libxl writes for a disk served by QEMU (backend type `qdisk`): the backend's
  /// (owned by dom0, readable by the guest), the frontend's (owned by the guest, readable by
  /// dom0), and libxl's copy of the backend's.
  public static func records(_ disk: DiskSpec, domid: UInt32) -> [XenStoreRecord] {
    guard let devid = devid(disk.vdev) else { return [] }
    let backend = backendPath(domid: domid, devid: devid)
    let frontend = frontendPath(domid: domid, devid: devid)
    let libxl = libxlPath(domid: domid, devid: devid)
    let format = disk.target.isEmpty ? "empty" : disk.format
    let backendValues: [(String, String)] = [
      ("frontend", frontend), ("params", "\(format):\(disk.target)"), ("frontend-id", "\(domid)"), ("online", "1"),
      ("removable", disk.isCDROM ? "1" : "0"), ("bootable", "1"), ("state", connected), ("dev", disk.vdev),
      ("type", "qdisk"), ("mode", disk.readOnly ? "r" : "w"), ("device-type", disk.isCDROM ? "cdrom" : "disk"),
      ("discard-enable", disk.readOnly ? "0" : "1"),
    ]
    let guestOwned = Permissions(owner: domid, defaultAccess: .none, grants: [Permission(domain: 0, access: .read)])
    let readableByGuest = Permissions(owner: 0, defaultAccess: .none, grants: [Permission(domain: domid, access: .read)])
    var r = [XenStoreRecord(backend, permissions: readableByGuest)]
    r += backendValues.map { XenStoreRecord(backend + "/" + $0.0, $0.1) }
    r.append(XenStoreRecord(frontend, permissions: guestOwned))
    r += [
      ("backend", backend), ("backend-id", "0"), ("state", connected), ("virtual-device", "\(devid)"),
      ("device-type", disk.isCDROM ? "cdrom" : "disk"), ("trusted", "1"),
    ].map { XenStoreRecord(frontend + "/" + $0.0, $0.1, permissions: guestOwned) }
    r += [XenStoreRecord(libxl, permissions: Permissions(owner: 0)), XenStoreRecord(libxl + "/frontend", frontend),
          XenStoreRecord(libxl + "/backend", backend)]
    r += backendValues.dropFirst().map { XenStoreRecord(libxl + "/" + $0.0, $0.1) }
    return r
  }

  /// The paths that hold a disk's records, for removal.
  public static func recordRoots(domid: UInt32, devid: Int) -> [String] {
    [backendPath(domid: domid, devid: devid), frontendPath(domid: domid, devid: devid), libxlPath(domid: domid, devid: devid)]
  }
}
