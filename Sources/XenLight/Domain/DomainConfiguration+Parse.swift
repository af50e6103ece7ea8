extension DomainConfiguration {
  /// xl.cfg keys this toolstack accepts without acting on them: they configure the Xen
  /// hypervisor or backends, which a device model alone cannot provide. Warned about once.
  static let hypervisorOnlyKeys: Set<String> = [
    "acpi", "apic", "pae", "hap", "nestedhvm", "viridian", "shadow_memory", "videoram",
    "cpus_soft", "cpu_weight", "cpu_cap", "pci", "pci_permissive",
    "pci_msitranslate", "pci_power_mgmt", "usbctrl", "usbdev", "vfb", "vkb", "channel", "bootloader", "bootloader_args", "timer_mode", "hpet", "xen_platform_pci",
    "vpt_align", "tsc_mode", "claim_mode", "driver_domain", "seclabel", "max_grant_frames",
    "max_maptrack_frames", "e820_host", "iomem", "ioports", "irqs", "dtdev", "vtpm", "p9", "vdispl",
    "vsnd", "device_tree", "gic_version", "vuart", "vnuma", "maxvcpus_hard",
    "on_soft_reset", "serial_port", "stdvga", "device_model_stubdomain_override",
    "device_model_stubdomain_seclabel", "firmware",
    "firmware_override", "smbios_firmware", "acpi_firmware",
    "kernel_args", "altp2m", "altp2mhvm", "mca_caps", "nomigrate", "cpuid", "rdm", "rdm_mem_boundary",
    "mmio_hole", "vga_memory",
  ]

  /// Builds and validates a domain configuration from a parsed file (command-line
  /// overrides already merged). `source` names the file in messages about missing keys.
  public init(_ file: ConfigFile, source: String) throws(XenLightError) {
    var r = SettingsReader(file)

    guard let name = try r.string("name") else {
      throw XenLightError(.invalidConfig, "\(source): name: a domain name must be specified (name = \"…\")")
    }
    if let problem = Self.problem(withName: name) { throw r.error(file["name"]!, problem) }

    let type = try Self.readType(&r)
    let memory = try r.integer("memory", in: 1...(16 << 20), unit: "MiB") ?? 128
    self.init(name: name, type: type, memoryMiB: memory)

    if let text = try r.string("uuid") {
      guard let uuid = DomainUUID(text) else {
        throw r.error(file["uuid"]!, "\"\(text)\" is not a UUID (expected XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX in hex)")
      }
      self.uuid = uuid
    }
    maxMemoryMiB = try r.integer("maxmem", in: 1...(16 << 20), unit: "MiB") ?? memory
    if maxMemoryMiB < memoryMiB {
      throw r.error(file["maxmem"]!, "maxmem (\(maxMemoryMiB) MiB) must be at least memory (\(memoryMiB) MiB)")
    }
    vcpus = try r.integer("vcpus", in: 1...4096) ?? 1
    maxVcpus = try r.integer("maxvcpus", in: 1...4096) ?? vcpus
    if maxVcpus < vcpus {
      throw r.error(file["maxvcpus"]!, "maxvcpus (\(maxVcpus)) must be at least vcpus (\(vcpus))")
    }
    onPoweroff = try Self.readAction("on_poweroff", &r) ?? .destroy
    onReboot = try Self.readAction("on_reboot", &r) ?? .restart
    onCrash = try Self.readAction("on_crash", &r) ?? .destroy
    onWatchdog = try Self.readAction("on_watchdog", &r) ?? .destroy

    kernel = try r.string("kernel")
    ramdisk = try r.string("ramdisk")
    let root = try r.string("root")
    let extra = try r.string("extra")
    if let explicit = try r.string("cmdline") {
      cmdline = explicit
    } else if root != nil || extra != nil {
      cmdline = [root.map { "root=\($0)" }, extra].compactMap { $0 }.joined(separator: " ")
    }

    disks = try Self.readSpecs("disk", "disk", &r, DiskSpec.parse)
    nics = try Self.readSpecs("vif", "vif", &r, NicSpec.parse)
    do { nics = try NicSpec.numbered(nics) } catch { throw r.error(file["vif"]!, "\(error)") }
    if type != .hvm { nics = nics.map { var nic = $0; nic.type = "vif"; return nic } }
    serial = try r.stringList("serial", acceptingSingle: true) ?? []

    display.vnc = try r.bool("vnc") ?? (type == .hvm)
    if let listen = try r.string("vnclisten") { display.vncListen = listen }
    display.vncDisplay = try r.integer("vncdisplay", in: 0...65535 - 5900)
    display.vncUnused = try r.bool("vncunused") ?? true
    display.vncPassword = try r.string("vncpasswd").flatMap { $0.isEmpty ? nil : $0 }
    display.sdl = try r.bool("sdl") ?? false
    display.nographic = try r.bool("nographic") ?? false
    display.keymap = try r.string("keymap")
    if let vga = try r.string("vga") {
      guard ["stdvga", "cirrus", "none", "qxl"].contains(vga) else {
        throw r.error(file["vga"]!, "unknown vga \"\(vga)\" (expected stdvga, cirrus, none or qxl)")
      }
      display.vga = vga
    }
    if let boot = try r.string("boot") {
      guard !boot.isEmpty, boot.allSatisfy({ "acdn".contains($0) }) else {
        throw r.error(file["boot"]!, "invalid boot order \"\(boot)\" (letters a floppy, c disk, d CD-ROM, n network)")
      }
      self.boot = boot
    }

    try hardware.read(&r)
    try readDeviceModel(&r, file)
    guestReady = try GuestReadyCheck.read(&r, file, serial: serial)
    cpus = try Self.readCPUs(&r, file)
    collectWarnings(r, file)
  }

  /// Why `name` cannot name a domain, or nil.
  static func problem(withName name: String) -> String? {
    if name.isEmpty { return "the domain name must not be empty" }
    if name.allSatisfy(\.isNumber) { return "\"\(name)\" is all digits, which xl would read as a domain id" }
    if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
      return "the domain name must not contain control characters"
    }
    // The name is a file-name component: qemu-dm-<name>.log, xl-<name>.log, dumps, consoles.
    if name.contains("/") { return "the domain name \"\(name)\" must not contain \"/\": it names the domain's log, console and dump files" }
    if name == "." || name == ".." { return "the domain name must not be \"\(name)\": it names the domain's log, console and dump files" }
    return nil
  }

  /// `type`, or the deprecated `builder` ("hvm" or "generic"); they must agree.
  private static func readType(_ r: inout SettingsReader) throws(XenLightError) -> DomainType {
    var type: DomainType?
    if let text = try r.string("type") {
      guard let t = DomainType(rawValue: text) else {
        throw r.error(r.file["type"]!, "invalid domain type \"\(text)\" (expected hvm, pv or pvh)")
      }
      type = t
    }
    if let builder = try r.string("builder") {
      let implied: DomainType
      switch builder {
      case "hvm": implied = .hvm
      case "generic": implied = .pv
      default:
        throw r.error(r.file["builder"]!, "invalid builder \"\(builder)\" (expected hvm or generic; builder is deprecated, use type)")
      }
      if let type, type != implied {
        throw r.error(
          r.file["builder"]!,
          "builder \"\(builder)\" contradicts type \"\(type.rawValue)\" (set at \(r.file["type"]!.location)); builder is deprecated, use type alone")
      }
      type = implied
    }
    return type ?? .pv
  }

  private static func readAction(_ key: String, _ r: inout SettingsReader) throws(XenLightError) -> DomainAction? {
    guard let text = try r.string(key) else { return nil }
    guard let action = DomainAction(rawValue: text) else {
      let all = DomainAction.allCases.map(\.rawValue).joined(separator: ", ")
      throw r.error(r.file[key]!, "invalid action \"\(text)\" (expected one of \(all))")
    }
    return action
  }

  private static func readSpecs<T>(
    _ key: String, _ noun: String, _ r: inout SettingsReader,
    _ parse: (String) throws(SpecError) -> T
  ) throws(XenLightError) -> [T] {
    guard let specs = try r.stringList(key) else { return [] }
    var parsed: [T] = []
    for (index, spec) in specs.enumerated() {
      do {
        parsed.append(try parse(spec))
      } catch {
        throw r.error(r.file[key]!, "item \(index + 1) \(ConfigValue.quoted(spec)): \(error)")
      }
    }
    return parsed
  }

  private mutating func readDeviceModel(_ r: inout SettingsReader, _ file: ConfigFile) throws(XenLightError) {
    let version = try r.string("device_model_version")
    if let version {
      guard version == "qemu-xen" else {
        throw XenLightError(
          .invalidConfig, "Unknown device_model_version \"\(version)\" specified",
          at: file["device_model_version"]!.location)
      }
    }
    if let path = try r.string("device_model_override") {
      guard !path.isEmpty else { throw r.error(file["device_model_override"]!, "the path must not be empty") }
      deviceModel.override = path
      if version == nil {
        warnings.append(ConfigWarning(
          location: file["device_model_override"]!.location,
          message: "device model override given without specific DM version"))
      }
    }
    if file["device_model"] != nil {
      _ = r.setting("device_model")
      warnings.append(ConfigWarning(
        location: file["device_model"]!.location,
        message: "ignoring device_model directive; use \"device_model_override\" instead if you really want a non-default device model"))
    }
    deviceModel.args = try r.stringList("device_model_args") ?? []
    deviceModel.argsHVM = try r.stringList("device_model_args_hvm") ?? []
    deviceModel.argsPV = try r.stringList("device_model_args_pv") ?? []
    if let target = try r.string("device_model_target") {
      guard let choice = DeviceModelTarget.Choice(rawValue: target) else {
        throw r.error(file["device_model_target"]!, "invalid target \"\(target)\" (expected xen, local or auto)")
      }
      deviceModel.target = choice
    }
    if let accel = try r.string("device_model_accel") {
      guard let choice = Accelerator.Choice(rawValue: accel) else {
        throw r.error(file["device_model_accel"]!, "invalid accelerator \"\(accel)\" (expected auto, kvm or tcg)")
      }
      deviceModel.accelerator = choice
    }
    if let seconds = try r.integer("device_model_start_timeout", in: 1...3600, unit: "s") {
      deviceModel.startTimeoutSeconds = Double(seconds)
    }
    deviceModel.restrict = try r.bool("dm_restrict") ?? false
    if let user = try r.string("device_model_user") {
      guard !user.isEmpty, !user.contains(":"), !user.contains("/") else {
        throw r.error(file["device_model_user"]!, "\(ConfigValue.quoted(user)) is not a user name")
      }
      deviceModel.user = user
    }
  }

  private mutating func collectWarnings(_ r: SettingsReader, _ file: ConfigFile) {
    for setting in r.unreadSettings {
      if Self.hypervisorOnlyKeys.contains(setting.key) {
        warnings.append(ConfigWarning(
          location: setting.location,
          message: "\"\(setting.key)\" needs the Xen hypervisor or its backends; ignored"))
      } else {
        unknownSettings.append(setting)
        warnings.append(ConfigWarning(location: setting.location, message: "unknown setting \"\(setting.key)\"; kept, not used"))
      }
    }
    warnings.sort { ($0.location?.file ?? "", $0.location?.line ?? 0) < ($1.location?.file ?? "", $1.location?.line ?? 0) }
  }
}
