import XenStore

/// One xenstore node to write: its path, value, and access list (nil: inherit the parent's,
/// as a plain `xs_write` does).
public struct XenStoreRecord: Hashable, Sendable, CustomStringConvertible {
  public var path: String
  public var value: String
  public var permissions: Permissions?

  public init(_ path: String, _ value: String = "", permissions: Permissions? = nil) {
    self.path = path
    self.value = value
    self.permissions = permissions
  }

  /// `path = "value"  (n0,r1)`, as `xl create -n` prints it.
  public var description: String {
    var line = "\(path) = \(ConfigValue.quoted(value))"
    if let permissions { line += "  (\(permissions))" }
    return line
  }
}

/// Where a domain's records live in xenstore, after libxl (`libxl__domain_make`,
/// `libxl__build_post`, `libxl__spawn_local_dm`):
///
/// - `/local/domain/<domid>`: the domain's home (name, domid, vm, memory, cpu, control…),
///   readable by the domain, owned by dom0; the nodes the guest writes to (control/shutdown,
///   data, drivers, feature, attr, error) are owned by the domain itself (`n<domid>`).
/// - `/vm/<uuid>`: name, uuid, image/ostype, start_time.
/// - `/local/domain/0/device-model/<domid>`: where the device model reports `state`.
/// - `/libxl/<domid>`: the toolstack's private notes (dom0 only): type, dm-version, and here
///   also the device model's target, QMP socket, log file and process identity.
public struct DomainLayout: Hashable, Sendable {
  public let domid: UInt32
  public let uuid: DomainUUID

  public init(domid: UInt32, uuid: DomainUUID) {
    self.domid = domid
    self.uuid = uuid
  }

  public static let toolstackDomain: UInt32 = 0

  public var domainPath: String { "/local/domain/\(domid)" }
  public var vmPath: String { "/vm/\(uuid)" }
  public var deviceModelPath: String { "/local/domain/0/device-model/\(domid)" }
  public var libxlPath: String { "/libxl/\(domid)" }

  /// Written with the device model's pid once it runs (`image/device-model-pid`, as libxl).
  public var deviceModelPIDPath: String { domainPath + "/image/device-model-pid" }
  /// Set to "running" when the device model is up (by QEMU under Xen; by xl after QMP here).
  public var deviceModelStatePath: String { deviceModelPath + "/state" }
  /// The uid whose every process is killed when the domain goes (libxl's, for a restricted
  /// device model).
  public var deviceModelKillUIDPath: String { domainPath + "/image/device-model-kill-uid" }
  /// The reaper's real uid for that kill, and the restricted device model's root directory.
  public var reaperUIDPath: String { libxlPath + "/dm-reaper-uid" }
  public var chrootPathPath: String { libxlPath + "/dm-chroot" }
  /// The device model's `ProcessIdentity` (pid:starttime:bootid), for a safe stop.
  public var deviceModelIdentityPath: String { libxlPath + "/device-model-identity" }
  public var qmpPathPath: String { libxlPath + "/qmp-path" }
  public var logPathPath: String { libxlPath + "/dm-log" }
  public var targetPath: String { libxlPath + "/dm-target" }
  /// The QMP socket the domain monitor holds for QEMU's events.
  public var eventSocketPathPath: String { libxlPath + "/qmp-events-path" }
  /// What the guest is doing, as xl list shows it: a `RunState`.
  public var runStatePath: String { libxlPath + "/run-state" }
  /// The domain monitor's `ProcessIdentity`, once it is confirmed watching.
  public var monitorIdentityPath: String { libxlPath + "/monitor-identity" }
  /// A `rename-restart` in progress: the name the old domain keeps, and its run state then.
  public var restartAsPath: String { libxlPath + "/restart-as" }
  public var restartKeptPath: String { libxlPath + "/restart-kept" }
  /// Where the guest's console output is kept.
  public var consoleLogPathPath: String { libxlPath + "/console-log" }
  /// The pseudo-terminal of serial port `index` (libxl: `serial/0/tty`, from query-chardev).
  public func serialTTYPath(_ index: Int) -> String { domainPath + "/serial/\(index)/tty" }

  /// Where dom0's backends keep the domain's devices (`/local/domain/0/backend/<kind>/<domid>`),
  /// removed with the domain.
  public static func backendPaths(of domid: UInt32) -> [String] {
    ["vbd", "vif"].map { "/local/domain/0/backend/\($0)/\(domid)" }
  }

  /// Every subtree that belongs to the domain: removing these removes the domain.
  /// `/vm/<uuid>` is found through `/local/domain/<domid>/vm` when only the domid is known.
  public var subtrees: [String] { [deviceModelPath, vmPath, domainPath, libxlPath] + Self.backendPaths(of: domid) }

  /// `n0,r<domid>`: owned by dom0, readable by the domain.
  public var readOnlyForDomain: Permissions {
    Permissions(owner: Self.toolstackDomain, defaultAccess: .none, grants: [Permission(domain: domid, access: .read)])
  }
  /// `n<domid>`: owned (read and write) by the domain.
  public var ownedByDomain: Permissions { Permissions(owner: domid) }
  /// `n0`: dom0 only.
  public var toolstackOnly: Permissions { Permissions(owner: Self.toolstackDomain) }

  /// The records `xl create` writes in one transaction before starting the device model.
  /// `startTime` is `/vm/<uuid>/start_time` (seconds since the epoch, as "%lu.%02d");
  /// `scriptDirectory` is where the vifs' relative `script=` names are found.
  public func records(
    for d: DomainConfiguration, deviceModel: DeviceModelCommand, logPath: String, startTime: String,
    scriptDirectory: String = "/etc/xen/scripts"
  ) -> [XenStoreRecord] {
    let ro = readOnlyForDomain
    let rw = ownedByDomain
    let dom = domainPath
    var r: [XenStoreRecord] = [
      XenStoreRecord(dom, permissions: ro),
      XenStoreRecord(vmPath, permissions: ro),
      XenStoreRecord(libxlPath, permissions: toolstackOnly),
      XenStoreRecord(libxlPath + "/device", permissions: toolstackOnly),
      XenStoreRecord(dom + "/vm", vmPath),
      XenStoreRecord(dom + "/name", d.name),
      XenStoreRecord(dom + "/domid", "\(domid)"),
      XenStoreRecord(dom + "/cpu", permissions: ro),
      XenStoreRecord(dom + "/memory", permissions: ro),
      XenStoreRecord(dom + "/device", permissions: ro),
      XenStoreRecord(dom + "/control", permissions: ro),
    ]
    if d.type == .hvm {
      // The firmware hvmloader loads, as libxl records it.
      r.append(XenStoreRecord(dom + "/hvmloader", permissions: ro))
      r.append(XenStoreRecord(dom + "/hvmloader/bios", d.hardware.bios ?? "seabios"))
    }
    r += [
      XenStoreRecord(dom + "/control/platform-feature-multiprocessor-suspend", "1"),
      XenStoreRecord(dom + "/control/platform-feature-xs_reset_watches", "1"),
      XenStoreRecord(dom + "/control/shutdown", permissions: rw),
      XenStoreRecord(dom + "/control/feature-poweroff", permissions: rw),
      XenStoreRecord(dom + "/control/feature-reboot", permissions: rw),
      XenStoreRecord(dom + "/control/feature-suspend", permissions: rw),
      XenStoreRecord(dom + "/control/sysrq", permissions: rw),
      XenStoreRecord(dom + "/data", permissions: rw),
      XenStoreRecord(dom + "/drivers", permissions: rw),
      XenStoreRecord(dom + "/feature", permissions: rw),
      XenStoreRecord(dom + "/attr", permissions: rw),
      XenStoreRecord(dom + "/error", permissions: rw),
      XenStoreRecord(dom + "/memory/static-max", "\(d.maxMemoryMiB * 1024)"),
      XenStoreRecord(dom + "/memory/target", "\(d.memoryMiB * 1024)"),
      XenStoreRecord(dom + "/memory/videoram", "\(DisplayArguments.videoMiB(d) * 1024)"),
    ]
    for disk in d.disks { r += VirtualDisk.records(disk, domid: domid) }
    for cpu in 0..<d.maxVcpus {
      r.append(XenStoreRecord(dom + "/cpu/\(cpu)/availability", cpu < d.vcpus ? "online" : "offline"))
    }
    r += [
      XenStoreRecord(vmPath + "/uuid", "\(uuid)"),
      XenStoreRecord(vmPath + "/name", d.name),
      XenStoreRecord(vmPath + "/image/ostype", d.type == .hvm ? "hvm" : "linux"),
      XenStoreRecord(vmPath + "/start_time", startTime),
      XenStoreRecord(deviceModelPath),
      XenStoreRecord(libxlPath + "/type", d.type.rawValue),
      XenStoreRecord(libxlPath + "/dm-version", "qemu_xen"),
      XenStoreRecord(targetPath, deviceModel.target.rawValue),
      XenStoreRecord(qmpPathPath, deviceModel.qmpSocketPath),
      XenStoreRecord(eventSocketPathPath, deviceModel.eventSocketPath),
      XenStoreRecord(logPathPath, logPath),
    ]
    r += NetworkLayout.records(for: d, domid: domid, scriptDirectory: scriptDirectory)
    if let user = deviceModel.user, let chroot = deviceModel.chrootPath {
      r += [
        XenStoreRecord(deviceModelKillUIDPath, "\(user.uid)"),
        XenStoreRecord(reaperUIDPath, "\(user.reaperUID)"),
        XenStoreRecord(chrootPathPath, chroot),
      ]
    }
    return r
  }

  /// Whether `record` is one of those that claim the domid: the roots of the domain's
  /// subtrees (`subtrees`) and its name. Creating them changes shared parents (`/local/domain`,
  /// `/vm`…); every other record lies inside them. `<domain>/vm` goes with them: it is how
  /// removal finds `/vm/<uuid>`, so a create killed after the claim leaves no orphan. So
  /// does a restricted device model's kill uid: claiming it in the same transaction keeps
  /// two concurrent creates from taking one uid.
  public func isRoot(_ record: XenStoreRecord) -> Bool {
    subtrees.contains(record.path) || record.path == domainPath + "/name" || record.path == domainPath + "/vm"
      || record.path == deviceModelKillUIDPath
  }

  /// The records written once the device model runs: its pid where libxl keeps it, and its
  /// full identity for a safe stop later.
  public func deviceModelRecords(pid: Int32, identity: String) -> [XenStoreRecord] {
    [
      XenStoreRecord(deviceModelPIDPath, "\(pid)"),
      XenStoreRecord(deviceModelIdentityPath, identity),
    ]
  }
}
