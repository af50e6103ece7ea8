#!/usr/bin/env bash
# `xl create` against QEMU alone, side by side in one run (release build), each xl run paired
# with the QEMU run right after it; the gap is the median of the pairs' differences (a
# machine whose speed drifts moves both of a pair alike). The two variants of each case take
# turns going first:
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
qemu_ready() {  # QEMU alone to QMP ready, in µs, as qmp-greeting.py measures it, into file $1
  /usr/bin/python3 scripts/bench/qmp-greeting.py "$work" -- $ok_line | awk '{printf "%d\n", $2 * 1000}' >>"$work/$1"
}
# One xl run and the QEMU run paired with it (the one right after), per variant:
# ok VARIANT [options]: to ready (then destroyed); bogus VARIANT [options]: to exit.
ok() {
  local name=$1
  shift
  timed "$name" "$bin/xl" create -q "$@" examples/tiny.cfg
  "$bin/xl" destroy tiny >/dev/null
  qemu_ready "qemu-$name"
}
bogus() {
  local name=$1
  shift
  timed "$name" "$bin/xl" create -q "$@" examples/tiny.cfg 'device_model_args=["-bogus"]'
  timed "qemu-$name" $bogus_line
}

# The two variants of a case take turns going first: whichever runs second after a QEMU run
# to ready measured ~2.5 ms slower here, whatever it was (the monitor or -e).
for ((i = 0; i < runs; i++)); do
  if ((i % 2 == 0)); then
    ok xl-ok -e; ok xl-monitor-ok
    bogus xl-bogus -e; bogus xl-monitor-bogus
  else
    ok xl-monitor-ok; ok xl-ok -e
    bogus xl-monitor-bogus; bogus xl-bogus -e
  fi
done

ms() { awk '{printf "%.1f", $1 / 1000}'; }
# gap VARIANT: the median of the differences between its runs and their paired QEMU runs, in ms.
gap() { paste "$work/$1" "$work/qemu-$1" | awk '{print $1 - $2}' | median | ms; }
verdict() { awk -v d="$1" 'BEGIN { printf "%+.1f ms (goal <= +10): %s", d, d <= 10 ? "met" : "NOT met" }'; }

printf "runs=%d (medians, ms; gap = median of paired differences)\n" "$runs"
printf "success, to ready:   QEMU alone %s\n" "$(cat "$work/qemu-xl-ok" "$work/qemu-xl-monitor-ok" | median | ms)"
printf "  xl create -e       %s   gap %s\n" "$(median <"$work/xl-ok" | ms)" "$(verdict "$(gap xl-ok)")"
printf "  xl create          %s   gap %s   (monitor started and confirmed too)\n" \
  "$(median <"$work/xl-monitor-ok" | ms)" "$(verdict "$(gap xl-monitor-ok)")"
printf "early failure (-bogus), to exit:   QEMU alone %s\n" "$(cat "$work/qemu-xl-bogus" "$work/qemu-xl-monitor-bogus" | median | ms)"
printf "  xl create -e       %s   gap %s\n" "$(median <"$work/xl-bogus" | ms)" "$(verdict "$(gap xl-bogus)")"
printf "  xl create          %s   gap %s\n" "$(median <"$work/xl-monitor-bogus" | ms)" "$(verdict "$(gap xl-monitor-bogus)")"
