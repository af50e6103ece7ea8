#!/usr/bin/env bash
# Memory of the domain monitors with N guests running at once (default 50): the PSS of each
# `xl monitor` (/proc/<pid>/smaps_rollup: shared pages split among the processes sharing
# them), with the device models' PSS and xenstored's beside it. Release build, tiny guests
# (examples/tiny.cfg with 32 MiB each).  Usage: scripts/bench/monitor-memory.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-50}
swift build -c release --product xl >/dev/null && swift build -c release --product xenstored >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/xl-mem.XXXXXX)
export XENSTORED_PATH=$dir/xs.sock XEN_RUN_DIR=$dir/run XEN_LOG_DIR=$dir/log XEN_LIB_DIR=$dir/lib
cleanup() {
  for ((i = 0; i < n; i++)); do "$bin/xl" destroy "m$i" >/dev/null 2>&1 || true; done
  pkill -f -- "--socket $XENSTORED_PATH" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
for ((i = 0; i < n; i++)); do "$bin/xl" create -q examples/tiny.cfg "name=\"m$i\"" memory=32; done
pss() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }
stats() { sort -n | awk '{ a[NR] = $1; s += $1 } END { printf "median %d kB, max %d kB, total %d kB over %d", a[int((NR + 1) / 2)], a[NR], s, NR }'; }
monitors=(); models=()
for ((i = 0; i < n; i++)); do
  monitors+=("$(xenstore-read "/libxl/$((i + 1))/monitor-identity" | cut -d: -f1)")
  models+=("$(xenstore-read "/libxl/$((i + 1))/device-model-identity" | cut -d: -f1)")
done
echo "$n guests running"
echo "domain monitor PSS: $(for p in "${monitors[@]}"; do pss "$p"; done | stats) (goal: <= 4096 kB each)"
echo "device model (QEMU) PSS: $(for p in "${models[@]}"; do pss "$p"; done | stats)"
echo "xenstored PSS: $(pss "$(pgrep -f -- "--socket $XENSTORED_PATH")") kB"
