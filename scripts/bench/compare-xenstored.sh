#!/usr/bin/env bash
# The same load generator (scripts/bench/xs-load.c) against our xenstored and Xen's C
# xenstored (run without a hypervisor by ../shared/peers/ref-xenstored.sh), one after the other.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d /tmp/xsbench.XXXXXX)
trap 'rm -rf "$work"' EXIT
gcc -O2 -Wall -pthread -o "$work/xs-load" scripts/bench/xs-load.c

measure() {  # name socket pid
  local name=$1 sock=$2 pid=$3
  echo "== $name"
  "$work/xs-load" "$sock" latency 20000
  "$work/xs-load" "$sock" throughput 1 3
  "$work/xs-load" "$sock" throughput 8 3
  "$work/xs-load" "$sock" watchers 1000
  "$work/xs-load" "$sock" nodes 100000
  echo "rss after 100k nodes: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
  echo "test-xenstore -i 1000:"
  XENSTORED_PATH=$sock /usr/lib/xen-4.17/bin/test-xenstore -i 1000 | sed 's/^/  /'
}

.build/release/xenstored -N --socket "$work/ours.sock" >"$work/ours.log" 2>&1 &
ours=$!
for _ in $(seq 100); do [[ -S $work/ours.sock ]] && break; sleep 0.02; done
measure "ours (Swift xenstored)" "$work/ours.sock" "$ours"
kill "$ours"; wait "$ours" 2>/dev/null || true

ref_script=../shared/peers/ref-xenstored.sh
if [[ -x $ref_script || -f $ref_script ]]; then
  ref=$(bash "$ref_script" "$work/ref.sock")
  measure "reference (Xen 4.17 C xenstored)" "$work/ref.sock" "$ref"
  kill "$ref" 2>/dev/null || true
else
  echo "reference skipped: $ref_script not found"
fi
