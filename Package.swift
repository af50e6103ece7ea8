// swift-tools-version: 6.1
import PackageDescription

let package = Package(
  name: "XenLight",
  platforms: [.macOS(.v15)],
  products: [
    // The event loop every library runs on: `EventLoop` appears in the public API of Spawn,
    // XenStore and XenLight (a loop to run on, `ReadinessContext.loop`), so it is a product too.
    .library(name: "Reactor", targets: ["Reactor"]),
    .library(name: "XenStore", targets: ["XenStore"]),
    .library(name: "XenStoreDaemon", targets: ["XenStoreDaemon"]),
    .library(name: "Spawn", targets: ["Spawn"]),
    .library(name: "XenLight", targets: ["XenLight"]),
    .executable(name: "xl", targets: ["xl"]),
    .executable(name: "xenstored", targets: ["xenstored"]),
    .executable(name: "xenstore", targets: ["xenstore"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    // `swift package generate-documentation`: the DocC catalogs, built by scripts/test.sh.
    .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
  ],
  targets: [
    // Everything between fork and exec: C, async-signal-safe only.
    .target(name: "CSpawn"),
    // One epoll thread per loop: fds, timers and cross-thread work, never the cooperative pool.
    // CReactor: the Linux calls Glibc does not export (thread names, accept4, NSS from files only).
    .target(name: "CReactor"),
    // The ioctls of a bridged vif: tap devices, links, bridge ports.
    .target(name: "CNetwork"),
    .target(name: "Reactor", dependencies: ["CReactor", .product(name: "HeapModule", package: "swift-collections")]),
    .target(name: "XenStore", dependencies: [
      "Reactor", .product(name: "Logging", package: "swift-log"),
    ]),
    .target(name: "XenStoreDaemon", dependencies: [
      "XenStore", "Reactor", "CReactor", "CSpawn",
      .product(name: "Logging", package: "swift-log"),
      .product(name: "HashTreeCollections", package: "swift-collections"),
    ]),
    // libxl's log rotation (log → log.1 … log.10), shared by Spawn's users and xenstored.
    .target(name: "RotatingLogs"),
    .target(name: "Spawn", dependencies: [
      "CSpawn", "CReactor", "Reactor", "RotatingLogs", .product(name: "Logging", package: "swift-log"),
    ]),
    .target(name: "XenLight", dependencies: [
      "XenStore", "Spawn", "Reactor", "CReactor", "CNetwork", .product(name: "Logging", package: "swift-log"),
    ]),
    .executableTarget(name: "xl", dependencies: [
      "XenLight", "XenStore", "Spawn", "CReactor",
      .product(name: "ArgumentParser", package: "swift-argument-parser"),
      .product(name: "Logging", package: "swift-log"),
    ], linkerSettings: shippedCommand),
    .executableTarget(name: "xenstored", dependencies: [
      "XenStoreDaemon", "XenStore", "RotatingLogs", "CSpawn",
      .product(name: "ArgumentParser", package: "swift-argument-parser"),
      .product(name: "Logging", package: "swift-log"),
    ], linkerSettings: shippedCommand),
    .executableTarget(name: "xenstore", dependencies: [
      "XenStore",
      .product(name: "ArgumentParser", package: "swift-argument-parser"),
    ], linkerSettings: shippedCommand),
    // A tiny daemon with scripted startup behaviours, for the spawn tests.
    .executableTarget(name: "spawn-fixture", dependencies: ["CSpawn", "Spawn"]),

    // Shared by the test targets: peers, temporary directories, built executables.
    .target(name: "TestSupport", dependencies: ["XenStore", "Reactor"], path: "Tests/TestSupport"),
    .testTarget(name: "ReactorTests", dependencies: ["Reactor"]),
    .testTarget(name: "XenStoreTests", dependencies: [
      // XenStoreDaemon: the documentation examples run against the daemon, in process.
      "TestSupport", "XenStore", "XenStoreDaemon", .product(name: "Logging", package: "swift-log"),
    ]),
    .testTarget(name: "XenStoreDaemonTests", dependencies: ["TestSupport", "XenStoreDaemon", "XenStore"]),
    .testTarget(name: "SpawnTests", dependencies: ["TestSupport", "Spawn", "CSpawn", "spawn-fixture"]),
    .testTarget(name: "XenLightTests", dependencies: ["TestSupport", "XenLight", "XenStore", "Spawn"]),
    // The xl command's own parts: its command-line fast path held to ArgumentParser's reading.
    .testTarget(name: "XLTests", dependencies: ["xl", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    // Shared by the process-level test targets below: daemons under test, raw clients, the xl
    // testbed, fault and stress helpers.
    .target(name: "InteropSupport", dependencies: [
      "TestSupport", "XenStore", "Reactor", "XenStoreDaemon", "Spawn", .product(name: "Logging", package: "swift-log"),
    ], path: "Tests/InteropSupport"),
    // Against the real peers: xenstore-utils, test-xenstore, pyxs, libxenstore, Xen's C xenstored, QEMU.
    .testTarget(name: "InteropTests", dependencies: [
      "InteropSupport", "TestSupport", "XenStore", "Spawn", "XenLight", "xenstored", "xenstore",
    ]),
    // The executables end to end: xl create/list/destroy, a Linux guest's whole life, xenstored's options.
    .testTarget(name: "EndToEndTests", dependencies: [
      "InteropSupport", "TestSupport", "XenStore", "Spawn", "XenLight", "xenstored", "xl",
    ]),
    // Real faults at the worst moment: killed daemons, crashes and restarts, hostile input.
    .testTarget(name: "FaultInjectionTests", dependencies: [
      "InteropSupport", "TestSupport", "XenStore", "Spawn", "xenstored", "xl",
    ]),
    // Load, protocol fuzzing, domain limits, socket ownership and state files (RELIABILITY.md).
    .testTarget(name: "ReliabilityTests", dependencies: [
      "InteropSupport", "TestSupport", "XenStore", "XenStoreDaemon", "xenstored",
    ]),
  ],
  swiftLanguageModes: [.v6]
)

/// Release builds of the shipped commands are static executables (Linux): an `xl` reaches
/// main about 1 ms sooner when nothing is loaded or relocated at run time, and every
/// `xl create` starts two of them (xl and its domain monitor). A static glibc cannot load
/// NSS modules, so users and groups come from /etc/passwd and /etc/group
/// (`DeviceModelUser`); scripts/test.sh runs the end-to-end tests on these builds too.
var shippedCommand: [LinkerSetting] { [.unsafeFlags(["-static-executable", "-l_FoundationCollections", "-l_FoundationCShims"], .when(platforms: [.linux], configuration: .release))] }
