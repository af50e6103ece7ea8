#!/usr/bin/env bash
# The guest's fate → the monitor's action, end to end (release build, N rounds, medians):
#  1. shutdown: the Linux guest powers off (QMP SHUTDOWN, QEMU's own timestamp in the monitor's
#     log) → the domain is gone and `xl shutdown -w` has returned (wall clock after it returns);
#  2. crash: QEMU SIGKILLed (wall clock just before kill) → on_crash destroy applied and the
#     domain's home gone (xenstore-watch, the real peer, exits on the removal).
# Usage: scripts/bench/lifecycle.sh [N]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-10}
scripts/guest-image.sh >/dev/null
swift build -c release --product xl >/dev/null && swift build -c release --product xenstored >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/xl-bench.XXXXXX)
export XENSTORED_PATH=$dir/xs.sock XEN_RUN_DIR=$dir/run XEN_LOG_DIR=$dir/log XEN_LIB_DIR=$dir/lib
cleanup() { rm -rf /tmp/bench-log; cp -r "$dir/log" /tmp/bench-log 2>/dev/null;  pkill -f -- "--socket $XENSTORED_PATH" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

# Until `file` holds `text` (outside every measured interval; 60 s at most).
wait_for() {
  python3 - "$1" "$2" <<'PY'
import sys, time
text, path = sys.argv[1], sys.argv[2]
for _ in range(6000):
    try:
        if text in open(path, errors="replace").read(): sys.exit(0)
    except FileNotFoundError: pass
    time.sleep(0.01)
sys.exit("the guest never showed %r in %s" % (text, path))
PY
}

shutdowns=()
for ((i = 0; i < n; i++)); do
  "$bin/xl" create -q examples/linux.cfg
  wait_for "xlguest# " "$XEN_LOG_DIR/console/guest-linux.log"
  "$bin/xl" shutdown -w linux 2>/dev/null
  done_at=$EPOCHREALTIME
  event=$(grep -o 'QMP event SHUTDOWN .* at [0-9.]*' "$XEN_LOG_DIR/xl-linux.log" | tail -1 | awk '{ print $NF }')
  shutdowns+=("$(awk -v a="$event" -v b="$done_at" 'BEGIN { printf "%.3f", (b - a) * 1000 }')")
done

crashes=(); after_exit=()
for ((i = 0; i < n; i++)); do
  "$bin/xl" create -q examples/tiny.cfg 'device_model_accel="tcg"'
  qemu=$(xenstore-read /libxl/1/device-model-identity | cut -d: -f1)
  coproc watcher { exec xenstore-watch -n 2 /local/domain/1/name; }
  read -r _ <&"${watcher[0]}"   # the watch's first firing: it is registered
  # When QEMU is dead (its pidfd readable: the kernel has torn it down), as a baseline.
  python3 -c 'import os, select, sys, time
fd = os.pidfd_open(int(sys.argv[1])); open(sys.argv[2] + ".armed", "w").close()
select.select([fd], [], []); t = time.time(); open(sys.argv[2], "w").write("%.6f" % t)' "$qemu" "$dir/died" &
  exitwatch=$!
  while [[ ! -e $dir/died.armed ]]; do sleep 0.01; done
  start=$EPOCHREALTIME
  kill -9 "$qemu"
  wait "$watcher_PID" || true
  end=$EPOCHREALTIME
  wait "$exitwatch"; died=$(cat "$dir/died"); rm -f "$dir/died" "$dir/died.armed"
  crashes+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) * 1000 }')")
  after_exit+=("$(awk -v a="$died" -v b="$end" 'BEGIN { printf "%.3f", (b - a) * 1000 }')")
done

echo "guest poweroff (QMP SHUTDOWN) -> domain gone and 'xl shutdown -w' returned, ms: ${shutdowns[*]}"
echo "  median $(printf '%s\n' "${shutdowns[@]}" | median) ms (goal <= 10)"
echo "QEMU SIGKILLed -> on_crash destroy applied, domain gone, ms: ${crashes[*]}"
echo "  median $(printf '%s\n' "${crashes[@]}" | median) ms (goal <= 10)"
echo "  of which after QEMU was dead (pidfd readable) -> domain gone, ms: ${after_exit[*]}"
echo "  median $(printf '%s\n' "${after_exit[@]}" | median) ms"
