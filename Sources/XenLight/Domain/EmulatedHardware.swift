#if canImport(Glibc)
import Glibc
#endif

/// An HVM guest's emulated extras, as xl.cfg names them: USB and its devices, a sound card,
/// the real-time clock's base, and the firmware (`usb`, `usbdevice`, `soundhw`, `localtime`,
/// `rtc_timeoffset`, `bios`, `bios_path_override`).
public struct EmulatedHardware: Hashable, Sendable {
  /// `usb = 1`: a USB controller (QEMU's `-usb`), also implied by `usbdevice`.
  public var usb = false
  /// `usbdevice`: one or a list of QEMU USB devices (`tablet`, `mouse`, …).
  public var usbDevices: [String] = []
  /// `soundhw`: one of `soundCards`.
  public var soundCard: String?
  /// `localtime = 1`: the guest's clock starts at local time instead of UTC.
  public var localtime = false
  /// `rtc_timeoffset`: seconds added to the guest's clock.
  public var rtcTimeOffset = 0
  /// `bios`: seabios (the default of qemu-xen) or ovmf (UEFI).
  public var bios: String?
  /// `bios_path_override`: the firmware image to load instead of the packaged one.
  public var biosPath: String?

  /// libxl's `libxl__qemu_soundhw`.
  public static let soundCards = ["ac97", "adlib", "cs4231a", "es1370", "gus", "hda", "sb16"]
  /// Debian's `ovmf` package: code and variables in one image, which `-bios` loads.
  public static let ovmfImage = "/usr/share/ovmf/OVMF.fd"

  public init() {}

  /// Reads the keys; each bad value names the key and where it was set.
  mutating func read(_ r: inout SettingsReader) throws(XenLightError) {
    usb = try r.bool("usb") ?? false
    usbDevices = try r.stringList("usbdevice", acceptingSingle: true) ?? []
    if let card = try r.string("soundhw") {
      guard Self.soundCards.contains(card) else {
        throw r.error(r.file["soundhw"]!, "unknown sound card \"\(card)\" (expected \(Self.soundCards.joined(separator: ", ")))")
      }
      soundCard = card
    }
    localtime = try r.bool("localtime") ?? false
    rtcTimeOffset = try r.integer("rtc_timeoffset", in: -(1 << 31)...(1 << 31), unit: "s") ?? 0
    if let bios = try r.string("bios") {
      switch bios {
      case "seabios", "ovmf": self.bios = bios
      case "rombios":
        throw r.error(r.file["bios"]!, "rombios needs qemu-xen-traditional, which Xen no longer has; use seabios or ovmf")
      default:
        throw r.error(r.file["bios"]!, "invalid value \"\(bios)\" (expected seabios or ovmf)")
      }
    }
    biosPath = try r.string("bios_path_override")
  }

  /// The device model's arguments for them (an HVM guest's), as libxl_dm.c builds them.
  var usbAndSoundArguments: [String] {
    var args: [String] = []
    if usb || !usbDevices.isEmpty {
      args.append("-usb")
      for device in usbDevices { args += ["-usbdevice", device] }
    }
    switch soundCard {
    case nil: break
    case "hda"?: args += ["-device", "intel-hda", "-device", "hda-duplex"]
    case let card?: args += ["-device", card]
    }
    return args
  }

  /// The firmware and clock arguments for the local target, where QEMU itself keeps the
  /// clock Xen would keep (`-rtc base=`) and loads the firmware hvmloader would.
  func localArguments(now: Int = Int(time(nil))) -> [String] {
    var args: [String] = []
    if bios == "ovmf" || biosPath != nil { args += ["-bios", biosPath ?? Self.ovmfImage] }
    if rtcTimeOffset != 0 {
      args += ["-rtc", "base=" + Self.clockBase(now + rtcTimeOffset, localtime: localtime)]
    } else if localtime {
      args += ["-rtc", "base=localtime"]
    }
    return args
  }

  /// `2026-12-08T01:30:00`: QEMU's `-rtc base=` for the moment `seconds` after the epoch, in
  /// UTC or local time.
  static func clockBase(_ seconds: Int, localtime: Bool) -> String {
    var t = time_t(seconds)
    var parts = tm()
    if localtime { localtime_r(&t, &parts) } else { gmtime_r(&t, &parts) }
    func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
  }
}
