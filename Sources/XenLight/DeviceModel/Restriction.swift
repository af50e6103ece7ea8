#if canImport(Glibc)
import Glibc
#endif

/// What xl does for a restricted device model before exec: checks what QEMU will open
/// itself (as its user), opens what it could not (`DeviceModelCommand.passedFiles`), and
/// makes its empty root directory.
enum Restriction {
  /// The most a restricted device model may write into any file (RLIMIT_FSIZE, libxl's).
  static let fileSizeLimit: Int64 = 256 * 1024

  /// The kernel and ramdisk, which QEMU loads itself (by path: `-kernel` takes no fdset)
  /// after it has given up root: each must be readable by the device model's user.
  static func check(_ domain: DomainConfiguration, user: DeviceModelUser) throws(XenLightError) {
    for (key, path) in [("kernel", domain.kernel), ("ramdisk", domain.ramdisk)] {
      guard let path, domain.type != .hvm, let why = user.cannotRead(path) else { continue }
      throw XenLightError(
        .invalidConfig,
        "\(key) \(path) \(why): a restricted device model (\(user.name)) loads it itself; make it readable by that user")
    }
  }

  /// Opens `file` for a restricted device model (at create, or a disk added later). A
  /// writable regular file larger than the device model's file-size limit is refused: every
  /// write past 256 KiB would fail in the guest.
  static func open(_ file: DeviceModelCommand.PassedFile, restricted: Bool = true) throws(XenLightError) -> Int32 {
    let fd = Glibc.open(file.path, file.flags | O_CLOEXEC | O_NOCTTY, 0o644)
    guard fd >= 0 else {
      let e = errno
      throw XenLightError(.io, "\(file.what): cannot open \(file.path): \(FileIO.describe(errno: e))", errno: e)
    }
    var info = stat()
    if restricted, file.flags & O_ACCMODE == O_RDWR, fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG,
      Int64(info.st_size) > fileSizeLimit
    {
      close(fd)
      throw XenLightError(
        .invalidConfig,
        "\(file.what): \(file.path) is writable and \(info.st_size) bytes; a restricted device model may not write past 256 KiB of a file (RLIMIT_FSIZE, as libxl): make the disk read-only or use a block device")
    }
    return fd
  }

  /// `$XEN_RUN_DIR/qemu-root-<domid>`, made fresh: empty, owned by root, mode 0001 (the
  /// device model may enter it, which chroot needs without CAP_DAC_OVERRIDE, and nothing else:
  /// it can neither list nor write it).
  static func makeRoot(_ path: String, user: DeviceModelUser) throws(XenLightError) {
    if let why = user.cannotSearch(parentsOf: path) {
      throw XenLightError(
        .invalidConfig,
        "the device model's root directory \(path) \(why): a restricted device model (\(user.name)) must reach it to chroot; make the run directory searchable (chmod o+x)")
    }
    removeRoot(path)
    guard mkdir(path, 0) == 0, chmod(path, 0o001) == 0 else {
      let e = errno
      throw XenLightError(.io, "cannot create the device model's root directory \(path): \(FileIO.describe(errno: e))", errno: e)
    }
  }

  static func removeRoot(_ path: String) { rmdir(path) }
}
