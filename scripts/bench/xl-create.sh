#!/usr/bin/env bash
# `xl create` against QEMU alone, side by side in one run (release build):
#  1. success: `xl create -e examples/tiny.cfg` (the create path: records, QEMU, its
#     confirmation) and `xl create` (the same, then the domain monitor started and confirmed)
#     vs the same QEMU command line, given its two pre-opened QMP sockets as xl gives them,
#     timed to its QMP greeting + query-status (scripts/bench/qmp-greeting.py);
#  2. early failure: device_model_args=["-bogus"]: `xl create` until it exits with the error
#     vs that QEMU command line until it exits.
# Usage: scripts/bench/xl-create.sh [RUNS]   (default 20). Prints medians in ms.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-20}
swift build -c release --product xl >/dev/null
swift build -c release --product xenstored >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d /tmp/xlbench.XXXXXX)
export XENSTORED_PATH=$work/xs.sock XEN_RUN_DIR=$work/run XEN_LOG_DIR=$work/log XEN_LIB_DIR=$work/lib
trap 'pkill -f -- "--socket $XENSTORED_PATH" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin/xl" list >/dev/null 2>&1 || true   # xl list does not start xenstored; create below will
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

qemu_line() {  # the device-model command line xl would run, from `xl create -n`
  "$bin/xl" create -n examples/tiny.cfg "$@" 2>/dev/null | grep '^qemu-system' | head -1
}

# Warm-up (starts the embedded xenstored, fills caches).
"$bin/xl" create -q examples/tiny.cfg && "$bin/xl" destroy tiny >/dev/null

for ((i = 0; i < runs; i++)); do
  t0=${EPOCHREALTIME/./}000; "$bin/xl" create -q -e examples/tiny.cfg; t1=${EPOCHREALTIME/./}000
  echo $(((t1 - t0) / 1000)) >>"$work/xl-ok"
  "$bin/xl" destroy tiny >/dev/null
  t0=${EPOCHREALTIME/./}000; "$bin/xl" create -q examples/tiny.cfg; t1=${EPOCHREALTIME/./}000
  echo $(((t1 - t0) / 1000)) >>"$work/xl-monitor-ok"
  "$bin/xl" destroy tiny >/dev/null
  line=$(qemu_line)
  /usr/bin/python3 scripts/bench/qmp-greeting.py "$work" -- $line | awk '{print $2 * 1000}' >>"$work/qemu-ok"

  t0=${EPOCHREALTIME/./}000; "$bin/xl" create -q examples/tiny.cfg 'device_model_args=["-bogus"]' 2>/dev/null || true; t1=${EPOCHREALTIME/./}000
  echo $(((t1 - t0) / 1000)) >>"$work/xl-bogus"
  line=$(qemu_line 'device_model_args=["-bogus"]')
  t0=${EPOCHREALTIME/./}000; $line >/dev/null 2>&1 || true; t1=${EPOCHREALTIME/./}000
  echo $(((t1 - t0) / 1000)) >>"$work/qemu-bogus"
done
printf "runs=%d (medians, ms)\n" "$runs"
ok=$(median <"$work/xl-ok" | awk '{print $1/1000}'); alone=$(median <"$work/qemu-ok" | awk '{print $1/1000}')
printf "success: xl create -e %.1f  | xl create (monitor confirmed too) %.1f  | QEMU alone to QMP ready %.1f\n" \
  "$ok" "$(median <"$work/xl-monitor-ok" | awk '{print $1/1000}')" "$alone"
awk -v a="$ok" -v b="$alone" 'BEGIN { d = a - b; printf "  xl create -e - QEMU alone = %+.1f ms (goal <= +10): %s\n", d, d <= 10 ? "met" : "NOT met" }'
bogus=$(median <"$work/xl-bogus" | awk '{print $1/1000}'); bogus_alone=$(median <"$work/qemu-bogus" | awk '{print $1/1000}')
printf "early failure (-bogus): xl create %.1f  | QEMU alone to exit %.1f\n" "$bogus" "$bogus_alone"
awk -v a="$bogus" -v b="$bogus_alone" 'BEGIN { d = a - b; printf "  xl create - QEMU alone = %+.1f ms (goal <= +10): %s\n", d, d <= 10 ? "met" : "NOT met" }'
