// swift-tools-version: 6.1
// libFuzzer targets live in their own package (as the benchmarks do), so the main build never
// compiles them with the fuzzer and address sanitizers. Build and run: scripts/fuzz.sh SECONDS.
import PackageDescription

let package = Package(
  name: "XenLightFuzz",
  platforms: [.macOS(.v15)],
  dependencies: [
    // Named, so the product references hold whatever the checkout directory is called.
    .package(name: "XenLight", path: "../"),
  ],
  targets: [
    // libFuzzer's driver and invariant reports, shared by the targets.
    .target(name: "FuzzSupport"),
    // Wire codec and xenstored request handling: byte streams from several connections.
    .executableTarget(
      name: "XenStoreFuzzer",
      dependencies: [
        "FuzzSupport",
        .product(name: "XenStore", package: "XenLight"),
        .product(name: "XenStoreDaemon", package: "XenLight"),
      ]
    ),
    // xenstored's state files: snapshot decoding and log replay (internal API, hence a debug
    // build with testable imports: scripts/fuzz.sh --state SECONDS).
    .executableTarget(
      name: "XenStoreStateFuzzer",
      dependencies: [
        "FuzzSupport",
        .product(name: "XenStore", package: "XenLight"),
        .product(name: "XenStoreDaemon", package: "XenLight"),
      ]
    ),
  ],
  swiftLanguageModes: [.v6]
)
