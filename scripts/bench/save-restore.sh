#!/usr/bin/env bash
# `xl save`, `xl restore` and `xl migrate` of a booted 256 MiB Linux guest (TCG) against QEMU's
# own migration through a bare QMP client (scripts/bench/qemu-migration.py: getfd + fd:, the
# MIGRATION event), side by side in one run (release build), each xl run paired with the QEMU
# run right after it; the gap and the ratio are the medians of the pairs'.
#  1. save: `xl save -c` (whole process; the guest runs on) vs stop + migrate to a file + cont
#     on the same QEMU (from opening the file to cont); both files new (removed before, untimed).
#  2. restore: `xl restore -e FILE` to running (whole process) vs the same QEMU command line
#     started with -S -incoming defer, fed the same file (from the fork to cont).
#  3. migrate: `xl migrate -s '' … --debug` between two toolstacks here (whole process; the
#     receiver without a monitor), vs the same source QEMU migrated over a socket pair into a
#     destination QEMU the client starts (from the fork to the destination running). QEMU's
#     downtime, and the time the guest stood still at each end, from xl's --debug lines.
# Usage: scripts/bench/save-restore.sh [RUNS]   (default 10). Needs scripts/guest-image.sh's guest.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-10}
swift build -c release --product xl >/dev/null
swift build -c release --product xenstored >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d /tmp/xlbench-save.XXXXXX)
side() { echo "env XENSTORED_PATH=$work/$1/xs.sock XEN_RUN_DIR=$work/$1/run XEN_LOG_DIR=$work/$1/log XEN_LIB_DIR=$work/$1/lib"; }
A=$(side a) B=$(side b)
cleanup() {
  $A "$bin/xl" destroy bench >/dev/null 2>&1 || true
  $B "$bin/xl" destroy bench >/dev/null 2>&1 || true
  pkill -f -- "--socket $work/" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { echo "${EPOCHREALTIME/./}"; }   # microseconds
py=/usr/bin/python3
client=scripts/bench/qemu-migration.py
cat >"$work/bench.cfg" <<EOF
name = "bench"
type = "pvh"
kernel = "/var/cache/xenlight-guest/vmlinuz"
ramdisk = "/var/cache/xenlight-guest/initrd.cpio.gz"
extra = "console=ttyS0 panic=0 quiet"
memory = 256
serial = "pty"
device_model_accel = "tcg"
EOF
qemu_line=$($A "$bin/xl" create -n "$work/bench.cfg" 2>/dev/null | grep '^qemu-system' | head -1)
eval "qemu=($qemu_line)"   # the line is quoted as a shell would take it
$A "$bin/xl" create -q "$work/bench.cfg"
until grep -q "xenlight-guest: booted" "$work/a/log/console/guest-bench.log" 2>/dev/null; do sleep 0.2; done
sleep 2   # let the guest settle to its prompt

# pair NAME XL_MICROSECONDS QEMU_MILLISECONDS: keeps both and the pair's gap and ratio.
pair() {
  local qemu_us
  qemu_us=$(awk -v ms="$3" 'BEGIN {printf "%d", ms * 1000}')
  echo "$2" >>"$work/$1.xl"
  echo "$qemu_us" >>"$work/$1.qemu"
  echo $(($2 - qemu_us)) >>"$work/$1.gap"
  awk -v x="$2" -v q="$qemu_us" 'BEGIN {printf "%.3f\n", x / q}' >>"$work/$1.ratio"
}
report() {  # NAME: medians in ms, the ratio, and the target 1.1 x QEMU + 10 ms
  local x q g r
  x=$(median <"$work/$1.xl"); q=$(median <"$work/$1.qemu"); g=$(median <"$work/$1.gap"); r=$(median <"$work/$1.ratio")
  awk -v n="$1" -v x="$x" -v q="$q" -v g="$g" -v r="$r" -v runs="$runs" 'BEGIN {
    printf "%-8s xl %7.1f ms   QEMU %7.1f ms   gap %+6.1f ms   ratio %.3f   (%d pairs; goal: xl <= 1.1 x QEMU + 10 ms: %s)\n",
      n, x / 1000, q / 1000, g / 1000, r, runs, (x <= 1.1 * q + 10000) ? "met" : "NOT met" }'
}

# 1. save
for _ in $(seq "$runs"); do
  # Both write a new file: truncating the last run's 100 MB costs tens of ms, unevenly.
  rm -f "$work/xl.save" "$work/qemu.save"
  t0=$(now); $A "$bin/xl" save -c bench "$work/xl.save" 2>/dev/null; t1=$(now)
  ms=$($py $client save "$work/a/run/qmp-libxl-1" "$work/qemu.save" | awk '{print $2}')
  pair save $((t1 - t0)) "$ms"
done
report save

# 2. restore (the guest saved once more, destroyed by the save)
$A "$bin/xl" save bench "$work/restore.save" 2>/dev/null
offset=$((48 + $(od -An -t u4 -j 44 -N 4 "$work/restore.save")))
mkdir -p "$work/q"
for _ in $(seq "$runs"); do
  t0=$(now); $A "$bin/xl" restore -e "$work/restore.save" 2>/dev/null; t1=$(now)
  $A "$bin/xl" destroy bench >/dev/null
  ms=$($py $client restore "$work/q" "$work/restore.save" "$offset" -- "${qemu[@]}" -S -incoming defer | awk '{print $2}')
  pair restore $((t1 - t0)) "$ms"
done
report restore

# 3. migrate (there and back; only the way there is timed against QEMU)
$A "$bin/xl" restore "$work/restore.save" 2>/dev/null
: >"$work/migrate.debug"
for _ in $(seq "$runs"); do
  t0=$(now)
  $A "$bin/xl" migrate --debug -s '' bench "exec $B $bin/xl migrate-receive -e -d" 2>>"$work/migrate.debug"
  t1=$(now)
  $B "$bin/xl" migrate -s '' bench "exec $A $bin/xl migrate-receive" 2>/dev/null
  out=$($py $client migrate "$work/a/run/qmp-libxl-1" "$work/q" -- "${qemu[@]}" -S -incoming defer)
  pair migrate $((t1 - t0)) "$(echo "$out" | awk '{print $2}')"
  echo "$out" | awk '{print $4}' >>"$work/qemu-downtime"
done
report migrate
downtime=$(grep -o 'downtime [0-9]* ms' "$work/migrate.debug" | awk '{print $2}' | median)
stopped=$(grep -o 'the guest was stopped [0-9.]* ms' "$work/migrate.debug" | awk '{print $5}' | median)
held=$(grep -o 'paused here [0-9.]* ms' "$work/migrate.debug" | awk '{print $3}' | median)
echo "migrate  QEMU's downtime (xl) median ${downtime} ms, (QEMU alone) $(median <"$work/qemu-downtime") ms (goal <= 300 ms);"
echo "         guest stood still from the sender's last pass to the receiver's report: ${stopped} ms;"
echo "         at the receiver, loaded to started: ${held} ms"
