#!/usr/bin/env bash
# `xl create` of examples/tiny.cfg with and without a confined device model, alternating in
# one run (each create timed alone, the destroy after it untimed). Needs root and a user for
# the device model: BENCH_DM_USER (default: creates xldm-bench, uid 231500, and removes it).
# Usage: scripts/bench/dm-restrict.sh [RUNS] [BUILD_DIR]   (default 20, .build/debug). Medians in ms.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-20}
bin=${2:-.build/debug}
user=${BENCH_DM_USER:-xldm-bench}
made_user=0
if ! getent passwd "$user" >/dev/null; then
  useradd --system --uid 231500 --user-group --no-create-home --shell /usr/sbin/nologin "$user" 2>/dev/null
  made_user=1
fi
work=$(mktemp -d /tmp/dmbench.XXXXXX)
chmod 755 "$work"
export XENSTORED_PATH=$work/xs.sock XEN_RUN_DIR=$work/run XEN_LOG_DIR=$work/log XEN_LIB_DIR=$work/lib
cleanup() {
  pkill -f -- "--socket $XENSTORED_PATH" 2>/dev/null || true   # the xenstored xl started, as xl-create.sh
  rm -rf "$work"
  [ "$made_user" = 1 ] && userdel "$user" || true
}
trap cleanup EXIT
cp examples/tiny.cfg "$work/plain.cfg"
{ cat examples/tiny.cfg; echo "device_model_user = \"$user\""; } >"$work/restricted.cfg"
"$bin/xl" create -q "$work/plain.cfg" && "$bin/xl" destroy tiny >/dev/null
"$bin/xl" create -q "$work/restricted.cfg" && "$bin/xl" destroy tiny >/dev/null
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s%N; }
for ((i = 0; i < runs; i++)); do
  for kind in plain restricted; do
    t0=$(now); "$bin/xl" create -q "$work/$kind.cfg"; t1=$(now)
    echo $(((t1 - t0) / 1000)) >>"$work/$kind"
    "$bin/xl" destroy tiny >/dev/null
  done
done
p=$(median <"$work/plain"); r=$(median <"$work/restricted")
echo "xl create, median of $runs: plain $((p / 1000)).$(((p % 1000) / 100)) ms, restricted $((r / 1000)).$(((r % 1000) / 100)) ms, difference $(((r - p) / 1000)).$((((r - p) % 1000 + 1000) % 1000 / 100)) ms"
d=$(paste "$work/plain" "$work/restricted" | awk '{print $2 - $1}' | median)
echo "paired difference (restricted - plain), median: $((d / 1000)) ms"
