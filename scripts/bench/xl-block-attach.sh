#!/usr/bin/env bash
# `xl block-attach` against QEMU alone, side by side in one run (release build), on one running
# Linux guest (examples/linux.cfg's, TCG): each `xl block-attach <dom> <img>,raw,xvdb,rw` (the
# whole command: process start, xenstore, the image opened and passed with add-fd, blockdev-add,
# device_add, the records, the saved config) paired with a bare QMP client's run on the same
# QEMU, timed from its connect to QEMU's answer to device_add (scripts/bench/qmp-device-add.py:
# greeting, capabilities, blockdev-add by path, device_add). The gap is the median of the pairs'
# differences; the two take turns going first. Each disk is detached again, untimed, before the next.
# For the breakdown, `xl block-list` on the same domain is timed too: what any xl verb costs
# before it does anything (the process, the xenstore connection, finding the domain).
# Usage: scripts/bench/xl-block-attach.sh [RUNS]   (default 20). Prints medians in ms.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-20}
swift build -c release --product xl >/dev/null
swift build -c release --product xenstored >/dev/null
bin=$(swift build -c release --show-bin-path)
scripts/guest-image.sh >/dev/null
work=$(mktemp -d /tmp/xlbench-attach.XXXXXX)
export XENSTORED_PATH=$work/xs.sock XEN_RUN_DIR=$work/run XEN_LOG_DIR=$work/log XEN_LIB_DIR=$work/lib
cleanup() {
  "$bin/xl" destroy bench >/dev/null 2>&1 || true
  # The xenstored xl started for this run (its command line names this run's socket).
  for pid in $(pgrep -x xenstored || true); do
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$XENSTORED_PATH"; then kill "$pid"; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { echo "${EPOCHREALTIME/./}"; }   # microseconds

truncate -s 16M "$work/disk.img"
"$bin/xl" create -q examples/linux.cfg 'name="bench"' >/dev/null
qmp=$XEN_RUN_DIR/qmp-libxl-1   # the first domain of this run's fresh xenstore
# Let the guest boot (its ACPI hotplug handles the detaches).
timeout 120 grep -q -m1 "xenlight-guest: booted" <(tail -F "$XEN_LOG_DIR/console/guest-bench.log" 2>/dev/null)

xl_run() {
  local t0 t1
  t0=$(now); "$bin/xl" block-attach bench "$work/disk.img,raw,xvdb,rw"; t1=$(now)
  echo $((t1 - t0)) >>"$work/xl"
  "$bin/xl" block-detach bench xvdb
  # xl's own floor on this domain, for the breakdown: a process, xenstore, the domain found.
  t0=$(now); "$bin/xl" block-list bench >/dev/null; t1=$(now)
  echo $((t1 - t0)) >>"$work/floor"
}
qmp_run() { python3 scripts/bench/qmp-device-add.py "$qmp" "$work/disk.img" | awk '{printf "%d\n", $1 * 1000}' >>"$work/qmp"; }

xl_run; qmp_run; rm -f "$work/xl" "$work/qmp" "$work/floor"   # warm-up
for ((i = 0; i < runs; i++)); do
  if ((i % 2 == 0)); then xl_run; qmp_run; else qmp_run; xl_run; fi
done

ms() { awk '{printf "%.1f", $1 / 1000}'; }
gap=$(paste "$work/xl" "$work/qmp" | awk '{print $1 - $2}' | median | ms)
printf "runs=%d (medians, ms; gap = median of paired differences)\n" "$runs"
printf "bare QMP client to device_add's answer  %s\n" "$(median <"$work/qmp" | ms)"
printf "xl block-attach                         %s   gap %s\n" "$(median <"$work/xl" | ms)" \
  "$(awk -v d="$gap" 'BEGIN { printf "%+.1f ms (goal <= +5): %s", d, d <= 5 ? "met" : "NOT met" }')"
beyond=$(paste "$work/xl" "$work/floor" "$work/qmp" | awk '{print $1 - $2 - $3}' | median | ms)
printf "xl block-list (xl's floor: process, xenstore, domain found)  %s\n" "$(median <"$work/floor" | ms)"
printf "attach beyond xl's floor and QEMU's answer (median of paired)  %+.1f\n" "$beyond"
