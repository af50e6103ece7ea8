#!/usr/bin/env bash
# Benchmarks: package-benchmark microbenchmarks (Benchmarks/), then the same raw-protocol load
# against our xenstored and Xen's C xenstored side by side (needs xen-utils-4.17 and gcc),
# durability's cost (memory-only beside --state-dir, scripts/bench/durability.sh), and recovery
# with 100,000 nodes (scripts/bench/recovery.sh).
# Usage: scripts/bench.sh [micro|xenstore|durability|recovery|all]   (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
scripts/install-peers.sh
swift build -c release --product spawn-fixture >/dev/null
swift build -c release --product xenstored >/dev/null
if [[ $what == micro || $what == all ]]; then
  (cd Benchmarks && SPAWN_FIXTURE=$PWD/../.build/release/spawn-fixture swift package benchmark --no-progress --format markdown)
fi
if [[ $what == xenstore || $what == all ]]; then
  scripts/bench/compare-xenstored.sh
fi
if [[ $what == durability || $what == all ]]; then
  scripts/bench/durability.sh
fi
if [[ $what == recovery || $what == all ]]; then
  scripts/bench/recovery.sh
fi
