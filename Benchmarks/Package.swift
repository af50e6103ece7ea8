// swift-tools-version: 6.1
// Benchmarks live in their own package (as in swift-nio) so the main build stays small.
// Run: cd Benchmarks && swift package benchmark
import PackageDescription

let package = Package(
  name: "XenLightBenchmarks",
  platforms: [.macOS(.v15)],
  dependencies: [
    .package(name: "XenLight", path: "../"),
    .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
  ],
  targets: [
    .executableTarget(
      name: "XenStoreBenchmarks",
      dependencies: [
        .product(name: "Benchmark", package: "benchmark"),
        .product(name: "XenStore", package: "XenLight"),
        .product(name: "XenStoreDaemon", package: "XenLight"),
      ],
      path: "Benchmarks/XenStoreBenchmarks",
      plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    ),
    .executableTarget(
      name: "SpawnBenchmarks",
      dependencies: [
        .product(name: "Benchmark", package: "benchmark"),
        .product(name: "Spawn", package: "XenLight"),
      ],
      path: "Benchmarks/SpawnBenchmarks",
      plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    ),
  ],
  swiftLanguageModes: [.v6]
)
