/// The kind of guest (xl.cfg `type`).
public enum DomainType: String, Hashable, Sendable, CaseIterable {
  case hvm, pv, pvh
}

/// What to do when the guest powers off, reboots, crashes or its watchdog fires
/// (`on_poweroff`, `on_reboot`, `on_crash`, `on_watchdog`).
public enum DomainAction: String, Hashable, Sendable, CaseIterable {
  case destroy, restart, preserve
  case renameRestart = "rename-restart"
  case coredumpDestroy = "coredump-destroy"
  case coredumpRestart = "coredump-restart"
  case softReset = "soft-reset"
}

/// The guest's display and console settings.
public struct DisplaySettings: Hashable, Sendable {
  /// `vnc` (on by default for HVM guests, as in libxl).
  public var vnc: Bool
  /// `vnclisten`: the address (and optionally `:display`) to listen on.
  public var vncListen: String = "127.0.0.1"
  /// `vncdisplay`: the display number (port 5900 + N).
  public var vncDisplay: Int?
  /// `vncunused`: take the first free display from `vncDisplay` on (on by default).
  public var vncUnused: Bool = true
  /// `vncpasswd`: the password every VNC client must give (nil or empty: none asked).
  public var vncPassword: String?
  public var sdl: Bool = false
  public var nographic: Bool = false
  public var keymap: String?
  /// `vga`: stdvga, cirrus, none or qxl (nil: the device model's default).
  public var vga: String?
}

/// How the device model is chosen, started and confirmed.
public struct DeviceModelSettings: Hashable, Sendable {
  /// `device_model_version`: only "qemu-xen" (upstream QEMU) exists since Xen dropped
  /// qemu-xen-traditional.
  public var version = "qemu-xen"
  /// `device_model_override`: the QEMU binary to run instead of the default.
  public var override: String?
  /// `device_model_args`, then `device_model_args_hvm` or `device_model_args_pv` (by type).
  public var args: [String] = []
  public var argsHVM: [String] = []
  public var argsPV: [String] = []
  /// `device_model_target`: where the guest runs (see `DeviceModelTarget`).
  public var target: DeviceModelTarget.Choice = .auto
  /// `device_model_accel`: KVM or TCG for the local target.
  public var accelerator: Accelerator.Choice = .auto
  /// `device_model_start_timeout` (seconds): how long to wait for confirmation; libxl's
  /// LIBXL_DEVICE_MODEL_START_TIMEOUT is 60.
  public var startTimeoutSeconds: Double = 60
  /// `dm_restrict`: confine the device model (see `DeviceModelUser` and README's
  /// "Confined device model").
  public var restrict = false
  /// `device_model_user`: the user the device model runs as (confines it as dm_restrict does).
  public var user: String?

  /// Whether the device model runs confined: `dm_restrict`, or a `device_model_user`.
  public var isRestricted: Bool { restrict || user != nil }
}

/// A warning about a config that is still usable, with where it applies.
public struct ConfigWarning: Hashable, Sendable, CustomStringConvertible {
  public var location: SourceLocation?
  public var message: String
  public var description: String {
    (location.map { "\($0): " } ?? "") + "warning: " + message
  }
}

/// A domain as an xl.cfg describes it: the parsed, validated, defaulted settings.
///
/// Built from a `ConfigFile` (with command-line overrides already applied) by
/// `init(_:source:)`; every validation error names the key and where it was set.
public struct DomainConfiguration: Hashable, Sendable {
  public var name: String
  public var type: DomainType
  public var uuid: DomainUUID
  /// `memory` (MiB) at start, and `maxmem` (MiB), at least `memory`.
  public var memoryMiB: Int
  public var maxMemoryMiB: Int
  /// `vcpus` online at start, and `maxvcpus`, at least `vcpus`.
  public var vcpus: Int
  public var maxVcpus: Int
  public var onPoweroff: DomainAction = .destroy
  public var onReboot: DomainAction = .restart
  public var onCrash: DomainAction = .destroy
  public var onWatchdog: DomainAction = .destroy
  /// `kernel`, `ramdisk` and the command line (`cmdline`, or `root=` + `extra`) for direct boot.
  public var kernel: String?
  public var ramdisk: String?
  public var cmdline: String?
  public var disks: [DiskSpec] = []
  public var nics: [NicSpec] = []
  /// `serial`: where each serial port goes (QEMU chardev syntax: pty, stdio, file:…).
  public var serial: [String] = []
  public var display: DisplaySettings
  /// `boot`: the boot order for HVM guests (c disk, d CD-ROM, n network, a floppy).
  public var boot: String?
  /// USB, sound, clock and firmware of an HVM guest.
  public var hardware = EmulatedHardware()
  public var deviceModel = DeviceModelSettings()
  /// `cpus`: the host CPUs every vCPU may run on (its thread's affinity; nil: all).
  public var cpus: [Int]?
  /// `guest_ready_console` / `guest_ready_timeout`: create waits for the guest itself.
  public var guestReady: GuestReadyCheck?
  /// Settings this toolstack does not know; kept, reported in `warnings`.
  public var unknownSettings: [ConfigSetting] = []
  public var warnings: [ConfigWarning] = []

  public init(name: String, type: DomainType, uuid: DomainUUID = .random(), memoryMiB: Int = 128, vcpus: Int = 1) {
    self.name = name
    self.type = type
    self.uuid = uuid
    self.memoryMiB = memoryMiB
    self.maxMemoryMiB = memoryMiB
    self.vcpus = vcpus
    self.maxVcpus = vcpus
    self.display = DisplaySettings(vnc: type == .hvm)
  }
}
