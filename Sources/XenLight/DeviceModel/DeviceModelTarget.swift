#if canImport(Glibc)
import Glibc
#endif

/// Where a domain's device model runs its guest.
///
/// - `xen`: the upstream qemu-xen command line libxl builds (`-xen-domid N -machine xenfv`),
///   for a Xen host. Without Xen, QEMU fails at once with its own message, which xl reports.
/// - `local`: QEMU runs the guest itself, under KVM when `/dev/kvm` opens, else TCG.
///
/// The user chooses with the config key `device_model_target = "xen" | "local" | "auto"`
/// (also as a command-line override: `xl create guest.cfg device_model_target="local"`).
/// `auto`, the default, picks `xen` when `/proc/xen/capabilities` exists (a Xen dom0), else `local`.
public enum DeviceModelTarget: String, Hashable, Sendable {
  case xen, local

  /// The value of `device_model_target`.
  public enum Choice: String, Hashable, Sendable {
    case xen, local, auto
  }

  /// The target for `choice` on this host.
  public static func resolve(_ choice: Choice, host: HostCapabilities = .current) -> DeviceModelTarget {
    switch choice {
    case .xen: .xen
    case .local: .local
    case .auto: host.isXenControlDomain ? .xen : .local
    }
  }
}

/// How the local target's QEMU runs the guest's CPUs (`device_model_accel`).
///
/// `auto` (the default) is KVM when `/dev/kvm` opens and answers, else TCG. On a nested
/// host KVM may open and still hang a real kernel in early boot, while TCG boots it in
/// seconds: `device_model_accel = "tcg"` is the way out.
public enum Accelerator: String, Hashable, Sendable {
  case kvm, tcg

  public enum Choice: String, Hashable, Sendable, CaseIterable {
    case auto, kvm, tcg
  }

  /// The accelerator for `choice` on `host`, and why, as `xl create -v` says it.
  public static func resolve(_ choice: Choice, host: HostCapabilities) -> (Accelerator, String) {
    switch choice {
    case .kvm: (.kvm, "device_model_accel = \"kvm\"")
    case .tcg: (.tcg, "device_model_accel = \"tcg\"")
    case .auto where host.hasKVM: (.kvm, "device_model_accel = \"auto\" and /dev/kvm answers")
    case .auto: (.tcg, "device_model_accel = \"auto\" and /dev/kvm does not open or answer")
    }
  }
}

/// What this machine offers a device model.
public struct HostCapabilities: Hashable, Sendable {
  /// `/proc/xen/capabilities` exists: running as a Xen domain (dom0).
  public var isXenControlDomain: Bool
  /// `/dev/kvm` opens read-write and answers KVM_GET_API_VERSION.
  public var hasKVM: Bool

  public init(isXenControlDomain: Bool, hasKVM: Bool) {
    self.isXenControlDomain = isXenControlDomain
    self.hasKVM = hasKVM
  }

  /// Probes this machine (two system calls' worth: access(2), and open(2)+ioctl(2) on /dev/kvm).
  public static var current: HostCapabilities {
    HostCapabilities(isXenControlDomain: access("/proc/xen/capabilities", F_OK) == 0, hasKVM: kvmWorks())
  }

  private static func kvmWorks() -> Bool {
    let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    // KVM_GET_API_VERSION = _IO(0xAE, 0x00); the stable API has been version 12 since 2007.
    return ioctl(fd, 0xAE00) == 12
  }
}
