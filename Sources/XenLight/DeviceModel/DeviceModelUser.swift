#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// The user a restricted device model runs as, chosen as libxl does: `device_model_user`
/// when set, else `xen-qemuuser-range-base`'s uid + the domid, with that user's gid.
/// Neither present is an error that says which user to create; uid 0 is refused.
///
/// Users and groups are looked up in /etc/passwd and /etc/group only, where libxl asks NSS:
/// the shipped `xl` is a static executable, and a static glibc crashes in NSS modules it loads
/// (libnss_systemd). The users `dm_restrict` needs are local system users (`adduser --system`).
public struct DeviceModelUser: Hashable, Sendable {
  /// The range's base user (libxl's LIBXL_QEMU_USER_RANGE_BASE).
  public static let rangeBase = "xen-qemuuser-range-base"
  /// The uid Xen's docs suggest for the range's base (docs/features/qemu-deprivilege.pandoc).
  public static let suggestedBaseUID: UInt32 = 131072

  /// How the user was chosen: "device_model_user \"qemu\"" or "xen-qemuuser-range-base + 3".
  public var name: String
  public var uid: UInt32
  public var gid: UInt32
  /// Supplementary groups the device model has until it drops them: the kvm group (for
  /// /dev/kvm) when there is one.
  public var groups: [UInt32]
  /// The reaper's real uid when killing the device model's processes: the range's base uid
  /// (which no device model uses, domid 0 having none), else the device model's own.
  public var reaperUID: UInt32

  public init(name: String, uid: UInt32, gid: UInt32, groups: [UInt32] = [], reaperUID: UInt32) {
    self.name = name
    self.uid = uid
    self.gid = gid
    self.groups = groups
    self.reaperUID = reaperUID
  }

  /// The account before the domid is known.
  public enum Account: Hashable, Sendable {
    case named(String, uid: UInt32, gid: UInt32, reaperUID: UInt32)
    case range(baseUID: UInt32, gid: UInt32)

    public func user(domid: UInt32) -> DeviceModelUser {
      let kvm = DeviceModelUser.groupID("kvm").map { [$0] } ?? []
      switch self {
      case .named(let name, let uid, let gid, let reaper):
        return DeviceModelUser(name: "device_model_user \"\(name)\"", uid: uid, gid: gid, groups: [gid] + kvm, reaperUID: reaper)
      case .range(let base, let gid):
        return DeviceModelUser(
          name: "\(DeviceModelUser.rangeBase) + \(domid)", uid: base + domid, gid: gid, groups: [gid] + kvm, reaperUID: base)
      }
    }
  }

  /// The account `settings` asks for, or nil if the device model is not restricted.
  public static func account(for settings: DeviceModelSettings) throws(XenLightError) -> Account? {
    guard settings.isRestricted else { return nil }
    let base = lookUp(rangeBase)
    if let name = settings.user {
      guard let user = lookUp(name) else {
        throw XenLightError(
          .invalidConfig,
          "device_model_user: no user \"\(name)\" in /etc/passwd to run the device model as; create it with: adduser --system --group --no-create-home \(name)")
      }
      guard user.uid != 0 else {
        throw XenLightError(.invalidConfig, "device_model_user: \"\(name)\" has uid 0; the device model must not run as root")
      }
      return .named(name, uid: user.uid, gid: user.gid, reaperUID: base?.uid ?? user.uid)
    }
    guard let base else {
      throw XenLightError(
        .invalidConfig,
        "dm_restrict: no user \"\(rangeBase)\" in /etc/passwd to run the device model as (domain N runs as its uid + N); create it with: adduser --system --uid \(suggestedBaseUID) --group --no-create-home \(rangeBase)")
    }
    guard base.uid != 0 else {
      throw XenLightError(.invalidConfig, "dm_restrict: \"\(rangeBase)\" has uid 0; the device model must not run as root")
    }
    return .range(baseUID: base.uid, gid: base.gid)
  }

  /// Looks-ups from files only, configured once per process.
  private static let filesOnly: Void = { _ = creactor_users_from_files() }()

  static func lookUp(_ name: String) -> (uid: UInt32, gid: UInt32)? {
    _ = filesOnly
    var entry = passwd()
    var result: UnsafeMutablePointer<passwd>?
    var buffer = [CChar](repeating: 0, count: 16384)
    guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
    return (entry.pw_uid, entry.pw_gid)
  }

  static func groupID(_ name: String) -> UInt32? {
    _ = filesOnly
    var entry = group()
    var result: UnsafeMutablePointer<group>?
    var buffer = [CChar](repeating: 0, count: 16384)
    guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
    return entry.gr_gid
  }

  /// Why the device model, running as this user, could not read `path` itself (QEMU opens
  /// the kernel and ramdisk after giving up root), or nil. Plain permission bits along the
  /// path, as the kernel checks them for a process without capabilities.
  public func cannotRead(_ path: String) -> String? {
    var info = stat()
    guard stat(path, &info) == 0 else { return "cannot be read: \(FileIO.describe(errno: errno))" }
    if let why = cannotSearch(parentsOf: path) { return why }
    if !allows(info, mode_t(S_IROTH)) { return "is not readable by uid \(uid)" }
    return nil
  }

  /// Why this user could not reach `path` (a directory on the way it may not search), or nil.
  public func cannotSearch(parentsOf path: String) -> String? {
    var prefix = ""
    for component in path.hasPrefix("/") ? Array(path.split(separator: "/").dropLast()) : [] {
      prefix += "/" + component
      var dir = stat()
      if stat(prefix, &dir) == 0, !allows(dir, mode_t(S_IXOTH)) {
        return "is in \(prefix), which uid \(uid) may not search"
      }
    }
    return nil
  }

  private func allows(_ s: stat, _ bits: mode_t) -> Bool {
    if s.st_uid == uid { return s.st_mode & (bits << 6) == bits << 6 }
    if s.st_gid == gid || groups.contains(s.st_gid) { return s.st_mode & (bits << 3) == bits << 3 }
    return s.st_mode & bits == bits
  }
}
