#!/bin/bash
# Soak: N create/destroy cycles of one guest against one embedded xenstored, then checks
# that nothing is left: processes, records, sockets, xenstored descriptors, logs beyond
# rotation; and prints xenstored's descriptors and RSS before and after.
#
#   scripts/soak.sh [--fast] [N]     N defaults to 1000
#
# By default the guest is examples/tiny.cfg on real QEMU. --fast uses a device model that
# confirms at once through xenstore (as QEMU does under Xen) and then sleeps.
# Builds into $SWIFT_SCRATCH_PATH (default .build). Exits 1 if any check fails.
set -euo pipefail

fast=0
if [[ "${1:-}" == "--fast" ]]; then fast=1; shift; fi
cycles="${1:-1000}"
root="$(cd "$(dirname "$0")/.." && pwd)"
scratch="${SWIFT_SCRATCH_PATH:-$root/.build}"

swift build --package-path "$root" --scratch-path "$scratch" --product xl >&2
swift build --package-path "$root" --scratch-path "$scratch" --product xenstored >&2
bin="$(swift build --package-path "$root" --scratch-path "$scratch" --show-bin-path)"
xl="$bin/xl"

dir="$(mktemp -d /tmp/soak.XXXXXX)"
export XENSTORED_PATH="$dir/xs.sock" XEN_RUN_DIR="$dir/run" XEN_LOG_DIR="$dir/log" XEN_LIB_DIR="$dir/lib"
xenstored=""
cleanup() {
  [[ -n "$xenstored" ]] && kill "$xenstored" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

args=("$root/examples/tiny.cfg" 'name="soak"' 'memory=32')
if ((fast)); then
  cat >"$dir/fast-dm" <<'EOF'
#!/bin/bash
# Confirms through /local/domain/0/device-model/<domid>/state, then waits to be stopped.
for arg in "$@"; do
  case "$arg" in unix:*/qmp-libxl-*) domid=${arg##*qmp-libxl-}; domid=${domid%%,*} ;; esac
done
/usr/bin/xenstore-write "/local/domain/0/device-model/$domid/state" running || exit 1
exec -a "$0" sleep 600
EOF
  chmod +x "$dir/fast-dm"
  args+=("device_model_override=\"$dir/fast-dm\"")
fi

fds() { ls "/proc/$1/fd" | wc -l; }
rss() { awk '/^VmRSS/ { print $2 " kB" }' "/proc/$1/status"; }
# Processes other than xenstored whose command line names this soak's directory.
strays() {
  for p in /proc/[0-9]*; do
    pid="${p#/proc/}"
    [[ "$pid" == "$xenstored" || "$pid" == "$$" ]] && continue
    state="$(awk '{ print $3 }' "$p/stat" 2>/dev/null || true)"
    [[ -z "$state" || "$state" == Z ]] && continue
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "$dir/"; then echo "$pid $(tr '\0' ' ' <"$p/cmdline")"; fi
  done
}

# The first cycle starts the embedded xenstored; its state after it is the baseline.
cycle() {
  "$xl" create -q "${args[@]}" || { echo "cycle $1: create failed" >&2; return 1; }
  out="$("$xl" destroy soak)"
  [[ "$out" == "Domain 1 (soak) destroyed: device model stopped" ]] || { echo "cycle $1: $out" >&2; return 1; }
}
cycle 1
xenstored="$(pgrep -f -- "--socket $XENSTORED_PATH" | head -1)"
fds_before="$(fds "$xenstored")" rss_before="$(rss "$xenstored")"
start=$(date +%s.%N)
for ((i = 2; i <= cycles; i++)); do
  cycle "$i"
  ((i % 100 == 0)) && echo "cycle $i: xenstored fds $(fds "$xenstored"), RSS $(rss "$xenstored")" >&2
done
duration=$(echo "$(date +%s.%N) - $start" | bc)

failed=0
check() { if [[ "$2" == "$3" ]]; then echo "ok   $1"; else echo "FAIL $1: got '$2', expected '$3'"; failed=1; fi; }
sleep 0.5  # the last client's close reaches xenstored
fds_after="$(fds "$xenstored")" rss_after="$(rss "$xenstored")"
for path in /local/domain /vm /libxl /local/domain/0/device-model; do
  left="$(/usr/bin/xenstore-list "$path" 2>/dev/null | grep -vx 0 | tr '\n' ' ' || true)"
  check "no records under $path" "$left" ""
done
check "no leftover processes" "$(strays)" ""
check "no sockets in XEN_RUN_DIR" "$(find "$XEN_RUN_DIR" -type s)" ""
check "no domain sockets" "$(find "$XENSTORED_PATH.d" -type s 2>/dev/null)" ""
check "xenstored descriptors" "$fds_after" "$fds_before"
expected_logs="qemu-dm-soak.log"
for ((n = 1; n <= 10 && n < cycles; n++)); do expected_logs+=" qemu-dm-soak.log.$n"; done
check "logs within rotation" "$(ls "$XEN_LOG_DIR" | grep -v '^xenstored\.log' | sort | tr '\n' ' ' | sed 's/ $//')" "$(tr ' ' '\n' <<<"$expected_logs" | sort | tr '\n' ' ' | sed 's/ $//')"
# xenstored rotates its own log past 1 MiB (--log-file), keeping ten old ones.
check "xenstored's logs within rotation" "$(ls "$XEN_LOG_DIR" | grep -c '^xenstored\.log' | awk '{print ($1 <= 11)}')" "1"
echo "cycles: $cycles ($( ((fast)) && echo fast || echo QEMU)), ${duration} s after the first"
echo "xenstored's own logs: $(cat "$XEN_LOG_DIR"/xenstored.log* 2>/dev/null | wc -c) bytes in $(ls "$XEN_LOG_DIR" | grep -c '^xenstored\.log') files"
echo "xenstored [$xenstored] descriptors: $fds_before -> $fds_after; RSS: $rss_before -> $rss_after"
exit $failed
