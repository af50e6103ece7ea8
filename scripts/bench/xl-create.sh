#!/usr/bin/env bash
# `xl create` against QEMU alone, side by side in one run (release build), each xl run paired
# with the QEMU run right after it; the gap is the median of the pairs' differences (a
# machine whose speed drifts moves both of a pair alike):
#  1. success: `xl create -e examples/tiny.cfg` (the create path: records, QEMU, its
#     confirmation) and `xl create` (the same, then the domain monitor started and confirmed)
#     vs the same QEMU command line, given its two pre-opened QMP sockets as xl gives them,
#     timed to its QMP greeting + query-status (scripts/bench/qmp-greeting.py);
#  2. early failure: device_model_args=["-bogus"]: `xl create -e` and `xl create` until they
#     exit with the error vs that QEMU command line until it exits.
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
now() { echo "${EPOCHREALTIME/./}"; }   # microseconds

qemu_line() {  # the device-model command line xl would run, from `xl create -n`
  "$bin/xl" create -n examples/tiny.cfg "$@" 2>/dev/null | grep '^qemu-system' | head -1
}
ok_line=$(qemu_line)
bogus_line=$(qemu_line 'device_model_args=["-bogus"]')

# Warm-up (starts the embedded xenstored, fills caches).
"$bin/xl" create -q examples/tiny.cfg && "$bin/xl" destroy tiny >/dev/null

# timed NAME COMMAND...: runs it, appends its wall time in µs to $work/NAME.
timed() {
  local name=$1 t0 t1
  shift
  t0=$(now); "$@" >/dev/null 2>&1 || true; t1=$(now)
  echo $((t1 - t0)) >>"$work/$name"
}
qemu_ready() {  # QEMU alone to QMP ready, in µs, as qmp-greeting.py measures it
  /usr/bin/python3 scripts/bench/qmp-greeting.py "$work" -- $ok_line | awk '{printf "%d\n", $2 * 1000}' >>"$work/qemu-ok"
}

for ((i = 0; i < runs; i++)); do
  timed xl-ok "$bin/xl" create -q -e examples/tiny.cfg
  "$bin/xl" destroy tiny >/dev/null
  qemu_ready
  timed xl-monitor-ok "$bin/xl" create -q examples/tiny.cfg
  "$bin/xl" destroy tiny >/dev/null
  qemu_ready
  timed xl-bogus "$bin/xl" create -q -e examples/tiny.cfg 'device_model_args=["-bogus"]'
  timed qemu-bogus $bogus_line
  timed xl-monitor-bogus "$bin/xl" create -q examples/tiny.cfg 'device_model_args=["-bogus"]'
  timed qemu-bogus $bogus_line
done

ms() { awk '{printf "%.1f", $1 / 1000}'; }
# gap XL QEMU: the median of the pairs' differences, in ms. QEMU's runs alternate between the
# two xl variants of a case: xl run k is paired with QEMU run k of its own stream.
gap() { paste "$work/$1" "$2" | awk '{print $1 - $2}' | median | ms; }
awk 'NR % 2 == 1' "$work/qemu-ok" >"$work/qemu-ok-1"; awk 'NR % 2 == 0' "$work/qemu-ok" >"$work/qemu-ok-2"
awk 'NR % 2 == 1' "$work/qemu-bogus" >"$work/qemu-bogus-1"; awk 'NR % 2 == 0' "$work/qemu-bogus" >"$work/qemu-bogus-2"
verdict() { awk -v d="$1" 'BEGIN { printf "%+.1f ms (goal <= +10): %s", d, d <= 10 ? "met" : "NOT met" }'; }

printf "runs=%d (medians, ms; gap = median of paired differences)\n" "$runs"
printf "success, to ready:   QEMU alone %s\n" "$(median <"$work/qemu-ok" | ms)"
printf "  xl create -e       %s   gap %s\n" "$(median <"$work/xl-ok" | ms)" "$(verdict "$(gap xl-ok "$work/qemu-ok-1")")"
printf "  xl create          %s   gap %s   (monitor started and confirmed too)\n" \
  "$(median <"$work/xl-monitor-ok" | ms)" "$(verdict "$(gap xl-monitor-ok "$work/qemu-ok-2")")"
printf "early failure (-bogus), to exit:   QEMU alone %s\n" "$(median <"$work/qemu-bogus" | ms)"
printf "  xl create -e       %s   gap %s\n" "$(median <"$work/xl-bogus" | ms)" "$(verdict "$(gap xl-bogus "$work/qemu-bogus-1")")"
printf "  xl create          %s   gap %s\n" "$(median <"$work/xl-monitor-bogus" | ms)" "$(verdict "$(gap xl-monitor-bogus "$work/qemu-bogus-2")")"
