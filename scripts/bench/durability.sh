#!/usr/bin/env bash
# Durability's cost: the same load (scripts/bench/xs-load.c) against our release xenstored
# memory-only and with --state-dir (every acknowledged change fdatasync'ed, group commit),
# interleaved round by round so both see the same disk and machine load.
# Usage: scripts/bench/durability.sh [ROUNDS] [SECONDS]   (default 3 rounds of 3 s per case)
# The state directory is on the filesystem of $TMPDIR (default /tmp); set it to measure another disk.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3} secs=${2:-3}
swift build -c release --product xenstored >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/xsdurable.XXXXXX")
daemon=
trap '[[ -n $daemon ]] && kill "$daemon" 2>/dev/null; rm -rf "$work"' EXIT
gcc -O2 -Wall -pthread -o "$work/xs-load" scripts/bench/xs-load.c

start() {  # extra xenstored arguments...
  rm -f "$work/xs.sock"
  .build/release/xenstored -N --socket "$work/xs.sock" "$@" >>"$work/xenstored.log" 2>&1 &
  daemon=$!
  for _ in $(seq 500); do [[ -S $work/xs.sock ]] && return; sleep 0.01; done
  echo "xenstored did not start: $(cat "$work/xenstored.log")" >&2
  exit 1
}
stop() { kill "$daemon"; wait "$daemon" 2>/dev/null || true; daemon=; }

echo "$(date -u +%FT%TZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), state on $(df -T "$work" | awk 'NR==2 {print $2, $1}')"
for round in $(seq "$rounds"); do
  for mode in memory durable; do
    rm -rf "$work/state"
    if [[ $mode == durable ]]; then start --state-dir "$work/state"; else start; fi
    echo "== round $round, $mode"
    "$work/xs-load" "$work/xs.sock" latency 2000
    for clients in 1 8 32; do "$work/xs-load" "$work/xs.sock" throughput "$clients" "$secs"; done
    stop
  done
done
