#!/usr/bin/env bash
# What a guest's network costs, each beside its yardstick in one run (release build), timed
# from outside by farm-bench (whole processes, A and B in turn, medians):
#  1. `xl network-attach tiny` (records, QMP netdev_add + device_add, the saved config) vs a
#     bare QMP client sending the same netdev_add + device_add to the same QEMU
#     (scripts/bench/qmp-device-add.c); goal: within 5 ms. Once with a user-mode NIC (the same
#     two commands exactly), once bridged (xl also creates the tap, bridges it, passes it).
#     In batches of RUNS pairs per guest: QEMU's PCI bus has about 30 free slots.
#  2. `xl create -e` of examples/tiny.cfg (a new name each run) with a bridged vif connected
#     natively vs with a user-mode vif; goal: +2 ms.
#  3. the same with script=vif-bridge (Xen's) vs user-mode, beside vif-bridge add's own run
#     (on a tap of its own, its records written); goal: no more than the script's time on top.
# Needs root (a bridge, taps). Usage: scripts/bench/network.sh [RUNS] [BATCHES]  (default 5, 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5}
batches=${2:-3}
swift build -c release --product xl >/dev/null
swift build -c release --product xenstored >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d /tmp/xlnetbench.XXXXXX)
bridge=xlbr-bench$((RANDOM % 9000 + 1000))
export XENSTORED_PATH=$work/xs.sock XEN_RUN_DIR=$work/run XEN_LOG_DIR=$work/log XEN_LIB_DIR=$work/lib
cleanup() {
  "$bin/xl" list 2>/dev/null | awk 'NR > 1 { print $1 }' | while read -r d; do "$bin/xl" destroy "$d" >/dev/null 2>&1; done
  ip link del "$bridge" 2>/dev/null || true
  ip link del vif99.0-emu 2>/dev/null || true
  pkill -f -- "--socket $XENSTORED_PATH" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip link add "$bridge" type bridge && ip link set "$bridge" up
cc -O2 -o "$work/qmp-device-add" scripts/bench/qmp-device-add.c
"$bin/xl" create -q examples/tiny.cfg && "$bin/xl" destroy tiny >/dev/null   # starts xenstored, warms caches

echo "## 1. network-attach vs a bare QMP client's device_add, same QEMU ($batches batches of $runs pairs)"
for variant in user "bridge=$bridge"; do
  for ((batch = 1; batch <= batches; batch++)); do
    "$bin/xl" create -q -e examples/tiny.cfg
    echo "# $variant, batch $batch"
    attach=("$bin/xl" network-attach tiny)
    [[ $variant == user ]] || attach+=("$variant")
    farm-bench -n "$runs" --warmup 1 --vs "$work/qmp-device-add $XEN_RUN_DIR/qmp-libxl-1" -- "${attach[@]}"
    "$bin/xl" destroy tiny >/dev/null
  done
done

cfg() {  # cfg NAME VIF: examples/tiny.cfg with one vif
  sed "s/^name = .*/name = \"tiny\"/" examples/tiny.cfg >"$work/$1.cfg"
  echo "vif = [ '$2' ]" >>"$work/$1.cfg"
}
cfg user 'mac=00:16:3e:7e:00:01'
cfg native "bridge=$bridge,mac=00:16:3e:7e:00:01"
cfg script "bridge=$bridge,mac=00:16:3e:7e:00:01,script=vif-bridge"
for name in user native script; do  # one create, a domain of its own name each run, for farm-bench
  printf '#!/bin/sh\nexec %s create -q -e %s "name=\\"%s$$\\""\n' "$bin/xl" "$work/$name.cfg" "$name" >"$work/create-$name"
  chmod +x "$work/create-$name"
done
destroy_all() { "$bin/xl" list | awk 'NR > 1 { print $1 }' | while read -r d; do "$bin/xl" destroy "$d" >/dev/null; done; }

echo "## 2. xl create: bridged vif (native) vs user-mode vif (the domains live until the call ends)"
farm-bench -n "$((runs * batches))" --warmup 1 --vs "$work/create-user" -- "$work/create-native"
destroy_all
echo "## 3. xl create: bridged vif by script=vif-bridge vs user-mode vif"
farm-bench -n "$((runs * batches))" --warmup 1 --vs "$work/create-user" -- "$work/create-script"
destroy_all
echo "## 3'. vif-bridge add alone (its tap and records ready), as libxl runs it"
ip tuntap add vif99.0-emu mode tap
backend=/local/domain/0/backend/vif/99/0
xenstore-write $backend/bridge "$bridge" $backend/mac 00:16:3e:7e:00:02 $backend/handle 0 $backend/type vif_ioemu
mkdir -p /var/log/xen
XENBUS_PATH=backend/vif/99/0 XENBUS_TYPE=vif XENBUS_BASE_PATH=backend INTERFACE=vif99.0-emu vif=vif99.0 netdev= \
  script=/etc/xen/scripts/vif-bridge farm-bench -n "$((runs * batches))" --warmup 1 -- /etc/xen/scripts/vif-bridge add type_if=tap
xenstore-rm /local/domain/0/backend/vif/99
