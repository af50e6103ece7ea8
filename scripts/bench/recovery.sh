#!/usr/bin/env bash
# Recovery at scale: how long a durable xenstored (--state-dir) takes to come back with NODES
# nodes, and what it holds then. For each binary, each round, on a fresh state directory:
#   load      start (empty), write NODES nodes /bench/n/<i> (20-byte values, pipelined 1000
#             deep: setup, timed as setup_s), SIGTERM; RSS and state size after the writes
#   replay    start again: no snapshot yet, the whole log is replayed, then snapshot-2 written
#   snapshot  start again: snapshot-2 is loaded (empty log), then snapshot-3 written
# Per start, times from fork+exec: tmp_ms the new snapshot-<gen>.tmp appears (state loaded,
# replayed, checked and encoded), snap_ms it is renamed to snapshot-<gen> (written and
# fsync'ed; the directory fsync follows, before the socket listens), ready_ms the --ready-fd
# newline, read_ms a new connection's READ of the last node answered correctly; then the
# daemon's VmRSS and VmHWM, the state directory's allocated size (du: the log is preallocated)
# and the snapshot's size, and stop_ms from SIGTERM to exit. The directory is polled every
# 0.25 ms by the measuring helper (C, built here), so tmp_ms/snap_ms are that coarse.
# Binaries are interleaved round by round; each has its own state directory (formats may differ).
#
#   scripts/bench/recovery.sh [NODES] [ROUNDS]            # default 100000 nodes, 3 rounds
#   BASELINE=/path/to/old/xenstored scripts/bench/recovery.sh   # beside an older build
#   CURRENT=/path/to/xenstored ...                        # instead of this tree's release build
#   FANOUT=1000 ...                  # nodes /bench/n/<i/1000>/<i%1000> instead of one flat directory
#
# Prints one line of context (date, CPUs, load average, filesystem), a row per start and the
# median of each column per binary and phase. The state directory is on $TMPDIR (default /tmp),
# read back from the page cache (caches are not dropped).
set -euo pipefail
cd "$(dirname "$0")/../.."
nodes=${1:-100000} rounds=${2:-3}
export FANOUT=${FANOUT:-0}
if [[ -z ${CURRENT:-} ]]; then
  swift build -c release --product xenstored >/dev/null
  CURRENT=$PWD/.build/release/xenstored
fi
binaries=(current)
declare -A path=([current]=$CURRENT)
if [[ -n ${BASELINE:-} ]]; then binaries+=(baseline); path[baseline]=$BASELINE; fi
for b in "${binaries[@]}"; do [[ -x ${path[$b]} ]] || { echo "not executable: ${path[$b]}" >&2; exit 1; }; done
work=$(mktemp -d "${TMPDIR:-/tmp}/xsrecovery.XXXXXX")
# The helper is each daemon's parent and the daemon dies with it (PR_SET_PDEATHSIG): removing
# the directory is all that is left to do.
trap 'rm -rf "$work"' EXIT

gcc -O2 -Wall -pthread -o "$work/xs-recovery" scripts/bench/xs-recovery.c

rows=$work/rows
fmt='%-8s %5s %-8s %7s %9s %8s %8s %8s %8s %8s %9s %8s %7s %7s\n'
echo "$(date -u +%FT%TZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), state on $(df -T "$work" | awk 'NR==2 {print $2, $1}'), $nodes nodes ($( ((FANOUT > 0)) && echo "$FANOUT per directory" || echo "one directory")), $rounds rounds"
for b in "${binaries[@]}"; do echo "  $b: ${path[$b]}"; done
# shellcheck disable=SC2059
printf "$fmt" binary round phase nodes ready_ms read_ms tmp_ms snap_ms rss_kB hwm_kB state_kB snap_kB setup_s stop_ms
for round in $(seq "$rounds"); do
  for b in "${binaries[@]}"; do
    state=$work/$b-state
    rm -rf "$state"
    for phase in load replay snapshot; do
      mode=check; [[ $phase == load ]] && mode=load
      out=$("$work/xs-recovery" cycle "${path[$b]}" "$work/$b.sock" "$state" "$work/$b.log" "$nodes" "$mode")
      # shellcheck disable=SC2086,SC2059
      printf "$fmt" "$b" "$round" "$phase" "$nodes" $out
      echo "$b $phase $out" >>"$rows"
    done
  done
done
echo "medians (load average now $(cut -d' ' -f1-3 /proc/loadavg)):"
for b in "${binaries[@]}"; do
  for phase in load replay snapshot; do
    # shellcheck disable=SC2046,SC2059
    printf "$fmt" "$b" median "$phase" "$nodes" $(awk -v b="$b" -v p="$phase" '$1 == b && $2 == p' "$rows" |
      awk '{ for (i = 3; i <= NF; i++) v[i, NR] = $i; rows = NR; f = NF }
           END { for (i = 3; i <= f; i++) {   # the median of what was seen ("-": not seen)
                   n = 0; for (r = 1; r <= rows; r++) if (v[i, r] != "-") a[++n] = v[i, r] + 0
                   for (r = 1; r <= n; r++) for (s = r + 1; s <= n; s++) if (a[s] < a[r]) { t = a[r]; a[r] = a[s]; a[s] = t }
                   if (n == 0) { printf "- "; continue }
                   m = sprintf("%.2f", n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2)
                   sub(/0$/, "", m); sub(/\.0$/, "", m); printf "%s ", m } }')
  done
done
