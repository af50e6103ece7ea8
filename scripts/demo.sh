#!/usr/bin/env bash
# The main job, end to end: installs QEMU if missing, builds, then `xl create`s
# examples/tiny.cfg on the embedded xenstored (started by xl itself), lists it, destroys it.
# Everything lives in a private directory (sockets, logs), removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v qemu-system-x86_64 >/dev/null; then
  sudo=""; [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq qemu-system-x86 >/dev/null
fi
swift build --product xl
swift build --product xenstored
bin=$(swift build --show-bin-path)

demo=$(mktemp -d /tmp/xl-demo.XXXXXX)
export XENSTORED_PATH=$demo/xenstored.sock XEN_RUN_DIR=$demo/run XEN_LOG_DIR=$demo/log XEN_LIB_DIR=$demo/lib
cleanup() {
  # The embedded xenstored outlives xl by design; the demo stops it.
  pkill -f -- "--socket $XENSTORED_PATH" 2>/dev/null || true
  rm -rf "$demo"
}
trap cleanup EXIT

set -x
"$bin/xl" create -v examples/tiny.cfg
"$bin/xl" list
"$bin/xl" list -l
"$bin/xl" destroy tiny
"$bin/xl" list
set +x
echo "demo: create, list and destroy of examples/tiny.cfg succeeded"
