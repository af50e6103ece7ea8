#!/usr/bin/env bash
# xl list, xl uptime and xl info with 50 domains, each against a minimal C program making the
# same reads over libxenstore (scripts/bench/xl-queries.c): alternating pairs (A B, then B A),
# the median of each side and the median of the pairs' ratios A/B. Goal: A/B <= 1.5.
#
#   scripts/bench/xl-queries.sh [PAIRS]      # default 100 pairs per command
#
# The 50 domains: domain 1 is a real one (examples/tiny.cfg, its QEMU running, no monitor);
# domains 2-50 are its records cloned (name, uuid, domid, paths), each with a device model
# that is a real process (sleep) recorded by its identity, so that xl list reads the same
# records and /proc files for every domain as for a real one. Needs the release build's
# xl and xenstored, gcc, libxen-dev and xenstore-utils.
set -euo pipefail
cd "$(dirname "$0")/../.."
pairs=${1:-100}
swift build -c release --product xl >/dev/null
swift build -c release --product xenstored >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d /tmp/xlq.XXXXXX)
gcc -O2 -o "$work/xl-queries" scripts/bench/xl-queries.c -lxenstore
export XENSTORED_PATH=$work/xs.sock XEN_RUN_DIR=$work/run XEN_LOG_DIR=$work/log XEN_LIB_DIR=$work/lib XL_CONF=$work/none
sleepers=()
cleanup() {
  "$bin/xl" destroy tiny >/dev/null 2>&1 || true
  for pid in "${sleepers[@]}"; do kill "$pid" 2>/dev/null || true; done
  pkill -f -- "--socket $XENSTORED_PATH" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$bin/xl" create -q -e examples/tiny.cfg
boot=$(cat /proc/sys/kernel/random/boot_id)
uuid=$(xenstore-read /local/domain/1/vm | sed 's|/vm/||')
{ xenstore-ls -f /local/domain/1; xenstore-ls -f /libxl/1; xenstore-ls -f "/vm/$uuid"; xenstore-ls -f /local/domain/0/device-model/1; } >"$work/dump"
for n in $(seq 2 50); do
  sleep 3600 &
  pid=$!
  sleepers+=("$pid")
  identity="$pid:$(awk '{print $22}' "/proc/$pid/stat"):$boot"
  new=$(printf '%08x-0000-4000-8000-%012x' "$n" "$n")
  python3 - "$n" "$uuid" "$new" "$identity" "$work/dump" >"$work/records" <<'PY'
import sys, shlex
n, old, new, identity, dump = sys.argv[1:]
for line in open(dump):
    path, _, value = line.rstrip("\n").partition(" = ")
    value = value[1:-1] if value.startswith('"') else value
    path = path.replace("/local/domain/1", "/local/domain/" + n).replace("/libxl/1", "/libxl/" + n)
    path = path.replace("/device-model/1", "/device-model/" + n).replace(old, new)
    if path.endswith("/name"): value = "tiny-" + n
    elif path.endswith("/domid"): value = n
    elif path.endswith("/vm") and value.startswith("/vm/"): value = "/vm/" + new
    elif path.endswith("/uuid"): value = new
    elif path.endswith("device-model-identity"): value = identity
    elif path.endswith("device-model-pid"): value = identity.split(":")[0]
    print(shlex.quote(path), shlex.quote(value), end=" ")
PY
  eval xenstore-write "$(cat "$work/records")"
done
[[ $("$bin/xl" list | wc -l) == 51 ]] || { echo "xl-queries: expected 50 domains" >&2; "$bin/xl" list >&2; exit 1; }
"$bin/xl" info >/dev/null  # the device model's version, cached once

now() { echo "${EPOCHREALTIME/./}"; }
measure() {  # measure NAME XL-ARGS C-ARG
  local name=$1 c=$3 t0 t1 i
  local -a args
  read -ra args <<<"$2"
  : >"$work/a"; : >"$work/b"
  for ((i = 0; i < 5; i++)); do "$bin/xl" "${args[@]}" >/dev/null; "$work/xl-queries" "$c" >/dev/null; done
  for ((i = 0; i < pairs; i++)); do
    if ((i % 2)); then
      t0=$(now); "$work/xl-queries" "$c" >/dev/null; t1=$(now); echo $((t1 - t0)) >>"$work/b"
      t0=$(now); "$bin/xl" "${args[@]}" >/dev/null; t1=$(now); echo $((t1 - t0)) >>"$work/a"
    else
      t0=$(now); "$bin/xl" "${args[@]}" >/dev/null; t1=$(now); echo $((t1 - t0)) >>"$work/a"
      t0=$(now); "$work/xl-queries" "$c" >/dev/null; t1=$(now); echo $((t1 - t0)) >>"$work/b"
    fi
  done
  median() { sort -g | awk '{v[NR]=$1} END {printf "%.3f", v[int((NR+1)/2)]}'; }
  printf "%-10s pairs=%d  xl %s ms  C %s ms  xl/C (median of pair ratios) %s\n" "$name" "$pairs" \
    "$(awk '{print $1 / 1000}' "$work/a" | median)" "$(awk '{print $1 / 1000}' "$work/b" | median)" \
    "$(paste "$work/a" "$work/b" | awk '{print $1 / $2}' | median)"
}
measure "xl list" "list" list
measure "xl uptime" "uptime" uptime
measure "xl info" "info" info
