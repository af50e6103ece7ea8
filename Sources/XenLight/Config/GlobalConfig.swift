#if canImport(Glibc)
import Glibc
#endif

/// `/etc/xen/xl.conf`, read by every `xl` command as Xen's xl reads it (`parse_global_config`):
/// the same syntax as xl.cfg, Xen's keys accepted, any other warned about.
public struct GlobalConfig: Sendable, Hashable {
  /// Where xl reads it: `$XL_CONF` (for tests and trials), else Xen's `/etc/xen/xl.conf`.
  public static var path: String { ToolstackPaths.environment("XL_CONF") ?? "/etc/xen/xl.conf" }

  /// `autoballoon`: "on", "off" or "auto" (there is no dom0 memory to balloon here).
  public var autoballoon = "auto"
  /// `run_hotplug_scripts` (default 1).
  public var runHotplugScripts = true
  /// `lockfile` (default /var/lock/xl).
  public var lockfile = "/var/lock/xl"
  /// `vif.default.script`, `vif.default.bridge`, `vif.default.gatewaydev`, `vif.default.backend`:
  /// defaults for network interfaces that do not name theirs.
  public var vifScript: String?
  public var vifBridge: String?
  public var vifGatewayDevice: String?
  public var vifBackend: String?
  /// `output_format`: "json" (the only one here) or "sxp".
  public var outputFormat = "json"
  public var warnings: [ConfigWarning] = []

  /// Xen's keys that configure the hypervisor or its backends: accepted, no effect here.
  static let hypervisorKeys: Set<String> = [
    "blkdev_start", "claim_mode", "max_grant_frames", "max_maptrack_frames", "max_grant_version", "vm.cpumask",
    "vm.hvm.cpumask", "vm.pv.cpumask", "domid_policy", "bootloader_restrict", "bootloader_user",
    "remus.default.netbufscript", "colo.default.proxyscript",
  ]

  public init() {}

  /// The file at `path`; a missing file is the defaults, as in xl.
  public static func load(from path: String = GlobalConfig.path) throws(XenLightError) -> GlobalConfig {
    let text: String
    do { text = try FileIO.readText(path) } catch where error.errno == ENOENT { return GlobalConfig() }
    return try parse(text, file: path)
  }

  static func parse(_ text: String, file: String) throws(XenLightError) -> GlobalConfig {
    let parsed = try ConfigFile.parse(text, file: file)
    var r = SettingsReader(parsed)
    var config = GlobalConfig()
    if let value = try r.string("autoballoon") {
      guard ["on", "off", "auto", "0", "1"].contains(value) else {
        throw r.error(parsed["autoballoon"]!, "invalid autoballoon option \(ConfigValue.quoted(value)) (expected on, off or auto)")
      }
      config.autoballoon = value == "1" ? "on" : value == "0" ? "off" : value
    }
    config.runHotplugScripts = try r.bool("run_hotplug_scripts") ?? true
    config.lockfile = try r.string("lockfile") ?? config.lockfile
    config.vifScript = try r.string("vif.default.script")
    config.vifBridge = try r.string("vif.default.bridge")
    config.vifGatewayDevice = try r.string("vif.default.gatewaydev")
    config.vifBackend = try r.string("vif.default.backend")
    for (old, new) in [("vifscript", "vif.default.script"), ("defaultbridge", "vif.default.bridge")] {
      guard let value = try r.string(old) else { continue }
      config.warnings.append(ConfigWarning(location: parsed[old]!.location, message: "\"\(old)\" is deprecated; use \"\(new)\""))
      if old == "vifscript", config.vifScript == nil { config.vifScript = value }
      if old == "defaultbridge", config.vifBridge == nil { config.vifBridge = value }
    }
    if let format = try r.string("output_format") {
      guard format == "json" || format == "sxp" else {
        throw r.error(parsed["output_format"]!, "invalid default output format \(ConfigValue.quoted(format)) (expected json or sxp)")
      }
      if format == "sxp" {
        config.warnings.append(ConfigWarning(location: parsed["output_format"]!.location, message: "output_format \"sxp\" is not supported here; xl list -l prints JSON"))
      }
      config.outputFormat = "json"
    }
    for setting in r.unreadSettings {
      let message = Self.hypervisorKeys.contains(setting.key)
        ? "\"\(setting.key)\" needs the Xen hypervisor; ignored" : "unknown setting \"\(setting.key)\"; ignored"
      config.warnings.append(ConfigWarning(location: setting.location, message: message))
    }
    return config
  }
}
