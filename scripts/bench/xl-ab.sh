#!/usr/bin/env bash
# Two builds of xl, create then destroy, in alternating pairs (A B, then B A, ...): the median of
# the pairs' differences says what a change to xl is worth on this noisy machine, where two
# runs of scripts/bench/xl-create.sh differ by ±2 ms.
# Usage: scripts/bench/xl-ab.sh XL_A XL_B [PAIRS] [create arguments...]
#   (default 40 pairs of `create -q examples/tiny.cfg`; EXTRA_A="-e" adds options to A's runs
#   only, e.g. the same binary with and without its monitor). Prints medians in ms.
# Both run from copies beside the release build's xenstored (xl starts the one next to it).
set -euo pipefail
cd "$(dirname "$0")/../.."
a=$1 b=$2 pairs=${3:-40}
shift $(($# < 3 ? $# : 3))
(($# > 0)) || set -- examples/tiny.cfg
work=$(mktemp -d /tmp/xlab.XXXXXX)
swift build -c release --product xenstored >/dev/null
mkdir "$work/A" "$work/B"
cp "$a" "$work/A/xl"; cp "$b" "$work/B/xl"
ln -s "$(swift build -c release --show-bin-path)/xenstored" "$work/A/xenstored"
ln -s "$(swift build -c release --show-bin-path)/xenstored" "$work/B/xenstored"
a=$work/A/xl b=$work/B/xl
export XENSTORED_PATH=$work/xs.sock XEN_RUN_DIR=$work/run XEN_LOG_DIR=$work/log XEN_LIB_DIR=$work/lib
trap 'pkill -f -- "--socket $XENSTORED_PATH" 2>/dev/null || true; rm -rf "$work"' EXIT
now() { echo "${EPOCHREALTIME/./}"; }
"$a" create -q -e "$@" >/dev/null 2>&1 || true; "$a" destroy tiny >/dev/null 2>&1 || true  # warm-up
run() {  # run BINARY FILE [extra options]
  local bin=$1 file=$2 t0 t1
  shift 2
  t0=$(now); "$bin" create -q "$@" >/dev/null 2>&1 || true; t1=$(now)
  echo $((t1 - t0)) >>"$work/$file"
  "$bin" destroy tiny >/dev/null 2>&1 || true
}
for ((i = 0; i < pairs; i++)); do
  # shellcheck disable=SC2086
  if ((i % 2)); then run "$b" b "$@"; run "$a" a ${EXTRA_A:-} "$@"; else run "$a" a ${EXTRA_A:-} "$@"; run "$b" b "$@"; fi
done
median() { sort -n | awk '{v[NR]=$1} END {printf "%.2f", v[int((NR+1)/2)] / 1000}'; }
printf "pairs=%d  A %s ms  B %s ms  A-B (median of paired differences) %s ms\n" "$pairs" \
  "$(median <"$work/a")" "$(median <"$work/b")" "$(paste "$work/a" "$work/b" | awk '{print $1 - $2}' | median)"
