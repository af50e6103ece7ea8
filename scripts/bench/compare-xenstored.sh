#!/usr/bin/env bash
# The same load generator (scripts/bench/xs-load.c) against our xenstored and Xen's C
# xenstored (run without a hypervisor by ../shared/peers/ref-xenstored.sh), one after the other,
# then each measure beside its goal (issue 11). Also the Swift client's round trip against our
# daemon (scripts/bench/xs-client-latency.swift, built from the release build's objects).
#
#   scripts/bench/compare-xenstored.sh              # needs `swift build -c release --product xenstored`
#   BASELINE_XENSTORED=/path/to/old/xenstored scripts/bench/compare-xenstored.sh   # an older build too
#   ROUNDS=3 ...                                    # each daemon's whole measure that many times, interleaved
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d /tmp/xsbench.XXXXXX)
trap 'rm -rf "$work"' EXIT
gcc -O2 -Wall -pthread -o "$work/xs-load" scripts/bench/xs-load.c
rounds=${ROUNDS:-1}

client_bench=""
if [[ -d .build/release/XenStore.build && -d .build/release/Reactor.build ]]; then
  if swiftc -O -parse-as-library -I .build/release/Modules -Xcc -fmodule-map-file=.build/release/CReactor.build/module.modulemap \
       scripts/bench/xs-client-latency.swift .build/release/XenStore.build/*.o .build/release/Reactor.build/*.o \
       .build/release/CReactor.build/*.o .build/release/HeapModule.build/*.o .build/release/InternalCollectionsUtilities.build/*.o \
       -o "$work/xs-client-latency" 2>"$work/swiftc.log"; then
    client_bench="$work/xs-client-latency"
  else
    echo "(Swift client benchmark not built: $(head -3 "$work/swiftc.log"))"
  fi
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

measure() {  # name socket pid key
  local name=$1 sock=$2 pid=$3 key=$4 out
  echo "== $name"
  out=$("$work/xs-load" "$sock" latency 20000); echo "$out"
  echo "$out" | sed -n 's/.*write p50=\([0-9.]*\)us.*read p50=\([0-9.]*\)us.*/\1 \2/p' >>"$work/$key.latency"
  if [[ -n $client_bench && $key != ref ]]; then
    out=$("$client_bench" "$sock" 5000); echo "$out" | sed 's/^/swift client /'
    echo "$out" >>"$work/$key.client"
  fi
  "$work/xs-load" "$sock" throughput 1 3
  local t0 t1 ops
  t0=$(cpu_ticks "$pid")
  out=$("$work/xs-load" "$sock" throughput 8 3); echo "$out"
  t1=$(cpu_ticks "$pid")
  ops=$(echo "$out" | sed -n 's/.* ops=\([0-9]*\) .*/\1/p')
  echo "$out" | sed -n 's/.*ops\/s=\([0-9]*\).*/\1/p' >>"$work/$key.ops8"
  awk -v t="$((t1 - t0))" -v n="$ops" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "daemon CPU per request, 8 clients: %.2f us (%d ticks / %d requests)\n", t / hz / n * 1e6, t, n }' | tee -a "$work/$key.cpu.txt"
  awk -v t="$((t1 - t0))" -v n="$ops" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.4f\n", t / hz / n * 1e6 }' >>"$work/$key.cpu"
  "$work/xs-load" "$sock" watchers 1000
  local before after
  before=$(rss_kb "$pid")
  "$work/xs-load" "$sock" nodes 100000
  after=$(rss_kb "$pid")
  echo "rss before 100k nodes: $before kB, after: $after kB, growth: $((after - before)) kB"
  echo "$((after - before))" >>"$work/$key.rss"
  if [[ -x /usr/lib/xen-4.17/bin/test-xenstore ]]; then
    echo "test-xenstore -i 1000:"
    XENSTORED_PATH=$sock /usr/lib/xen-4.17/bin/test-xenstore -i 1000 | sed 's/^/  /'
  fi
}

run_swift() {  # binary name key
  "$1" -N --socket "$work/$3.sock" >"$work/$3.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do [[ -S $work/$3.sock ]] && break; sleep 0.02; done
  measure "$2" "$work/$3.sock" "$pid" "$3"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$work/$3.sock"
}

ref_script=../shared/peers/ref-xenstored.sh
for round in $(seq "$rounds"); do
  [[ $rounds -gt 1 ]] && echo "######## round $round"
  run_swift .build/release/xenstored "ours (Swift xenstored)" ours
  if [[ -n ${BASELINE_XENSTORED:-} ]]; then
    run_swift "$BASELINE_XENSTORED" "baseline (Swift xenstored, $BASELINE_XENSTORED)" base
  fi
  if [[ -f $ref_script ]]; then
    ref=$(bash "$ref_script" "$work/ref.sock")
    measure "reference (Xen 4.17 C xenstored)" "$work/ref.sock" "$ref" ref
    kill "$ref" 2>/dev/null || true
    rm -f "$work/ref.sock"
  else
    echo "reference skipped: $ref_script not found"
  fi
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
verdict() { awk -v r="$1" -v g="$2" -v op="$3" 'BEGIN { ok = (op == "<=") ? (r <= g) : (r >= g); print (ok ? "met" : "NOT met") }'; }

echo
echo "== goals (medians over $rounds round(s); ratio = ours / reference)"
if [[ -f $work/ref.ops8 ]]; then
  for key in ours ${BASELINE_XENSTORED:+base}; do
    o=$(median <"$work/$key.ops8"); r=$(median <"$work/ref.ops8")
    ratio=$(awk -v a="$o" -v b="$r" 'BEGIN { printf "%.2f", a / b }')
    echo "[$key] 8-client ops/s: $o vs C $r = ${ratio}x   goal >= 1.5x: $(verdict "$ratio" 1.5 ">=")"
    o=$(median <"$work/$key.cpu"); r=$(median <"$work/ref.cpu")
    ratio=$(awk -v a="$o" -v b="$r" 'BEGIN { printf "%.2f", a / b }')
    echo "[$key] daemon CPU per request (8 clients): $o vs C $r us = ${ratio}x   goal <= 0.8x: $(verdict "$ratio" 0.8 "<=")"
    o=$(median <"$work/$key.rss"); r=$(median <"$work/ref.rss")
    ratio=$(awk -v a="$o" -v b="$r" 'BEGIN { printf "%.2f", a / b }')
    echo "[$key] RSS growth for 100,000 nodes: $o vs C $r kB = ${ratio}x   goal <= 1.0x: $(verdict "$ratio" 1.0 "<=")"
  done
fi
if [[ -f $work/ours.client ]]; then
  own=$(awk '{print $1}' "$work/ours.latency" | median)
  for label in "pool task: WRITE" "loop executor: WRITE"; do
    c=$(grep "^$label" "$work/ours.client" | sed -n 's/.*p50=\([0-9.]*\)us.*/\1/p' | median)
    ratio=$(awk -v a="$c" -v b="$own" 'BEGIN { printf "%.2f", a / b }')
    echo "Swift client round trip ($label) p50: $c us vs the daemon's own (xs-load WRITE p50) $own us = ${ratio}x   goal <= 2x: $(verdict "$ratio" 2 "<=")"
  done
  c=$(grep "^pipelined" "$work/ours.client" | sed -n 's/.*p50=\([0-9.]*\)us.*/\1/p' | median)
  echo "Swift client, pipelined batches of 100 WRITEs: $c us per WRITE"
fi
