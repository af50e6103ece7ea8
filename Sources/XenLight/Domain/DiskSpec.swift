/// One `disk = [ … ]` entry, as xl-disk-configuration describes it: positional
/// `target, format, vdev, access`, `key=value` settings, and the xm-era forms
/// (`phy:`/`file:`/`tap:aio:` prefixes with `target, vdev[:cdrom], access`).
public struct DiskSpec: Hashable, Sendable {
  /// The image file or block device; empty for an empty CD-ROM drive.
  public var target: String
  /// raw, qcow, qcow2, vhd or qed (raw when not given).
  public var format: String
  /// The guest's name for the disk (xvda, hda, sdb…).
  public var vdev: String
  public var readOnly: Bool
  public var isCDROM: Bool

  public static let formats = ["raw", "qcow", "qcow2", "vhd", "qed"]
  /// xm-era target prefixes, which say how dom0 reaches the image, not what the guest sees.
  static let deprecatedPrefixes: Set<String> = ["phy", "file", "tap", "tap2", "aio", "vbd3"]

  public init(target: String, format: String = "raw", vdev: String, readOnly: Bool = false, isCDROM: Bool = false) {
    self.target = target
    self.format = format
    self.vdev = vdev
    self.readOnly = readOnly
    self.isCDROM = isCDROM
  }

  /// Parses one disk specification; the error says what is wrong with it.
  public static func parse(_ spec: String) throws(SpecError) -> DiskSpec {
    var target: String?
    var format: String?
    var vdev: String?
    var access: String?
    var isCDROM = false
    var hadPrefix = false

    var rest = Substring(spec)
    while !rest.isEmpty || target == nil {
      let part: Substring
      if rest.drop(while: \.isWhitespace).hasPrefix("target=") {
        // `target=` takes the rest of the spec, commas and all.
        part = rest.drop(while: \.isWhitespace)
        rest = ""
      } else if let comma = rest.firstIndex(of: ",") {
        part = rest[..<comma]
        rest = rest[rest.index(after: comma)...]
      } else {
        part = rest
        rest = ""
      }
      let item = String(part.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())

      if let equals = item.firstIndex(of: "=") {
        let key = String(item[..<equals])
        let value = String(item[item.index(after: equals)...])
        switch key {
        case "target": target = value
        case "format": format = value
        case "vdev": vdev = value
        case "access": access = value
        case "devtype":
          guard value == "cdrom" || value == "disk" else { throw SpecError("unknown devtype \"\(value)\" (expected cdrom or disk)") }
          isCDROM = value == "cdrom"
        case "script":
          throw SpecError(
            "script=\(value): block hotplug scripts are not supported (they prepare a device for Xen's block backend; here the device model opens the target itself): give the device or image as the target")
        case "backendtype", "backend", "discard-enable", "colo-host", "colo-port", "colo-export",
          "active-disk", "hidden-disk", "specification", "trusted":
          break  // how Xen's backends serve the disk: nothing for a device model to do
        default:
          throw SpecError("unknown disk setting \"\(key)\"")
      }
      } else if ["cdrom", "direct-io-safe", "discard", "no-discard", "trusted", "untrusted", "colo"].contains(item) {
        if item == "cdrom" { isCDROM = true }
      } else if target == nil {
        var path = Substring(item)
        while let colon = path.firstIndex(of: ":") {
          let word = String(path[..<colon])
          if DiskSpec.formats.contains(word) {
            format = word
          } else if !DiskSpec.deprecatedPrefixes.contains(word) {
            break
          }
          hadPrefix = true
          path = path[path.index(after: colon)...]
        }
        target = String(path)
      } else if !hadPrefix && format == nil {
        if target!.isEmpty, let (device, cdrom) = try vdevAndType(item) {
          vdev = device
          isCDROM = isCDROM || cdrom
          format = "empty"
        } else {
          guard DiskSpec.formats.contains(item) else {
            throw SpecError("unknown disk format \"\(item)\" (expected \(DiskSpec.formats.joined(separator: ", ")))")
          }
          format = item
        }
      } else if vdev == nil {
        if let (device, cdrom) = try vdevAndType(item) {
          vdev = device
          isCDROM = isCDROM || cdrom
        } else {
          vdev = item
        }
      } else if access == nil {
        access = item
      } else {
        throw SpecError("too many positional parameters at \"\(item)\"")
      }
    }

    guard let vdev, !vdev.isEmpty else { throw SpecError("no virtual device (vdev) given, e.g. xvda") }
    var readOnly = isCDROM
    switch access {
    case nil: break
    case "r", "ro": readOnly = true
    case "w", "rw": readOnly = false
    case let other?: throw SpecError("unknown access \"\(other)\" (expected r, ro, w or rw)")
    }
    if isCDROM && !readOnly { throw SpecError("a CD-ROM drive cannot be writable") }
    let image = target ?? ""
    if image.isEmpty && !isCDROM { throw SpecError("no target (image file or device) given; only a CD-ROM may be empty") }
    if let format, format != "empty", !DiskSpec.formats.contains(format) {
      throw SpecError("unknown disk format \"\(format)\" (expected \(DiskSpec.formats.joined(separator: ", ")))")
    }
    let resolved = format == nil || format == "empty" ? "raw" : format!
    return DiskSpec(target: image, format: resolved, vdev: vdev, readOnly: readOnly, isCDROM: isCDROM)
  }

  /// `hdc:cdrom` → ("hdc", true); `hda:disk` → ("hda", false); no colon → nil.
  private static func vdevAndType(_ item: String) throws(SpecError) -> (String, Bool)? {
    guard let colon = item.lastIndex(of: ":") else { return nil }
    let type = item[item.index(after: colon)...]
    guard type == "cdrom" || type == "disk" else { throw SpecError("unknown device type \"\(type)\" (expected cdrom or disk)") }
    return (String(item[..<colon]), type == "cdrom")
  }

  /// QEMU's name for the format: its VHD driver is `vpc` (as libxl_dm.c maps it).
  public var qemuFormat: String { format == "vhd" ? "vpc" : format }

  /// The spec written back in xl's key=value form.
  public var canonical: String {
    var parts = ["format=\(format)", "vdev=\(vdev)", "access=\(readOnly ? "ro" : "rw")"]
    if isCDROM { parts.append("devtype=cdrom") }
    parts.append("target=\(target)")
    return parts.joined(separator: ", ")
  }
}

/// Why a disk or vif specification is malformed (wrapped with the key and location by the caller).
public struct SpecError: Error, Hashable, Sendable, CustomStringConvertible {
  public var description: String
  public init(_ description: String) { self.description = description }
}
