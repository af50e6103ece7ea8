#if canImport(Glibc)
import Glibc
#endif

/// A real program the interop tests run against (Debian packages, see scripts/install-peers.sh).
///
/// Use as a test trait: `@Test(.requires(.testXenstore))`. Outside CI a missing peer skips the
/// test; under `CI=true` the test runs anyway and fails, so a missing install step is never silent.
public struct Peer: Sendable, CustomStringConvertible {
  public let name: String
  public let path: String

  public static let xenstoreRead = Peer(name: "xenstore-utils", path: "/usr/bin/xenstore-read")
  public static let testXenstore = Peer(name: "test-xenstore (xen-utils-4.17)", path: "/usr/lib/xen-4.17/bin/test-xenstore")
  public static let pyxs = Peer(name: "python3-pyxs", path: "/usr/lib/python3/dist-packages/pyxs/__init__.py")
  public static let libxenstore = Peer(name: "libxen-dev", path: "/usr/include/xenstore.h")
  public static let qemu = Peer(name: "qemu-system-x86", path: "/usr/bin/qemu-system-x86_64")
  /// Xen's hotplug scripts (xen-utils-common): vif-bridge, vif-route, vif-openvswitch…
  public static let xenVifScripts = Peer(name: "Xen's hotplug scripts (xen-utils-common)", path: "/etc/xen/scripts/vif-bridge")
  /// Debian's UEFI firmware for QEMU.
  public static let ovmf = Peer(name: "ovmf", path: "/usr/share/ovmf/OVMF.fd")
  public static let gcc = Peer(name: "gcc", path: "/usr/bin/gcc")
  /// Makes the ISO images the CD tests insert.
  public static let xorriso = Peer(name: "xorriso", path: "/usr/bin/xorriso")
  /// Debian's cloud kernel and a busybox initramfs, built by scripts/guest-image.sh.
  public static let linuxGuest = Peer(name: "the Linux test guest (scripts/guest-image.sh)", path: "/var/cache/xenlight-guest/stamp")
  public static let systemdAnalyze = Peer(name: "systemd (systemd-analyze)", path: "/usr/bin/systemd-analyze")
  public static let man = Peer(name: "man-db", path: "/usr/bin/man")

  public var isInstalled: Bool { access(path, F_OK) == 0 }
  public var description: String { "\(name) at \(path)" }
}

public enum TestEnvironment {
  /// True under CI (`CI=true`): missing peers are failures, not skips.
  public static var isCI: Bool { getenv("CI").map { String(cString: $0) } == "true" }

  /// Whether tests needing `peers` should run.
  public static func shouldRun(_ peers: [Peer]) -> Bool { isCI || peers.allSatisfy(\.isInstalled) }
}

/// A fresh private directory under /tmp, removed by `remove()`. Short, so socket paths fit
/// in `sun_path` (108 bytes).
public struct TemporaryDirectory: Sendable {
  public let path: String

  public init(_ prefix: String = "xlt") {
    var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(made != nil, "mkdtemp failed: errno \(errno)")
    path = String(cString: template)
  }

  public func appending(_ name: String) -> String { path + "/" + name }

  /// Not `system("rm -rf")`: system(3) ignores SIGINT in the whole test process while the
  /// command runs, and a peer another test spawns meanwhile inherits that (finding 9: `xl`
  /// rightly kept SIGINT ignored, and an interrupt test waited for its 60 s timeout).
  public func remove() {
    removeTree(path)
  }
}

/// Removes `path` and, if it is a directory (not a symbolic link to one), all it holds.
private func removeTree(_ path: String) {
  var info = stat()
  guard lstat(path, &info) == 0 else { return }
  if info.st_mode & S_IFMT == S_IFDIR, let directory = opendir(path) {
    var names: [String] = []
    while let entry = readdir(directory) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
      if name != "." && name != ".." { names.append(name) }
    }
    closedir(directory)
    for name in names { removeTree(path + "/" + name) }
    rmdir(path)
  } else {
    unlink(path)
  }
}

/// Writes `text` to `path` (created or truncated, mode 0644).
public func writeFile(_ path: String, _ text: String) {
  let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
  _ = Array(text.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
  close(fd)
}

/// Where SwiftPM put the package's executables: next to the test bundle, or in
/// `$XL_TEST_PRODUCTS` (scripts/test.sh points it at the release build, whose commands are
/// static executables, to run the end-to-end tests on what ships).
public enum BuiltProducts {
  public static var directory: String {
    if let products = getenv("XL_TEST_PRODUCTS").map({ String(cString: $0) }), !products.isEmpty { return products }
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    precondition(n > 0)
    let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return String(exe[..<exe.lastIndex(of: "/")!])
  }

  /// The path of the package executable `name` (xl, xenstored, xenstore, spawn-fixture).
  public static func path(_ name: String) -> String { directory + "/" + name }
}
