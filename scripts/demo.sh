#!/usr/bin/env bash
# The main job, end to end: installs QEMU and builds the Linux test guest if missing, builds,
# then shows a real guest's life on the embedded xenstored (started by xl itself): create the
# Linux guest (examples/linux.cfg), its first console lines, list, pause and unpause, then
# `xl shutdown -w` (the ACPI power button; the guest powers off, its monitor destroys it).
# Everything lives in a private directory (sockets, logs), removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v qemu-system-x86_64 >/dev/null; then
  sudo=""; [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq qemu-system-x86 >/dev/null
fi
scripts/guest-image.sh >/dev/null
swift build --product xl
swift build --product xenstored
bin=$(swift build --show-bin-path)

demo=$(mktemp -d /tmp/xl-demo.XXXXXX)
export XENSTORED_PATH=$demo/xenstored.sock XEN_RUN_DIR=$demo/run XEN_LOG_DIR=$demo/log XEN_LIB_DIR=$demo/lib
cleanup() {
  "$bin/xl" destroy linux >/dev/null 2>&1 || true
  # The embedded xenstored outlives xl by design; the demo stops it.
  pkill -f -- "--socket $XENSTORED_PATH" 2>/dev/null || true
  rm -rf "$demo"
}
trap cleanup EXIT

set -x
"$bin/xl" create -v examples/linux.cfg
set +x
# The console log fills as the guest boots (TCG: a few seconds); wait for its marker line.
log=$XEN_LOG_DIR/console/guest-linux.log
timeout 60 sh -c 'tail -n +1 -F "$0" 2>/dev/null | grep -m1 -q "xenlight-guest: booted"' "$log" ||
  { echo "demo: the guest did not boot" >&2; exit 1; }
echo "--- first console lines ($log):"; head -n 5 "$log"; echo "---"
set -x
"$bin/xl" list
"$bin/xl" pause linux
"$bin/xl" list
"$bin/xl" unpause linux
"$bin/xl" shutdown -w linux
"$bin/xl" list
cat "$XEN_LOG_DIR/xl-linux.log"
set +x
echo "demo: the Linux guest booted, paused, unpaused and powered itself off; nothing is left"
