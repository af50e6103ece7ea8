#!/usr/bin/env bash
# Installs the Debian peers the tests run against, when any is missing:
# xenstore-utils, test-xenstore (xen-utils-4.17), Xen's hotplug scripts (xen-utils-common),
# pyxs, libxenstore headers, QEMU, OVMF, iproute2; then the
# Linux test guest (scripts/guest-image.sh, cached in /var/cache/xenlight-guest).
set -euo pipefail
need=()
[[ -x /usr/bin/xenstore-read ]] || need+=(xenstore-utils)
[[ -x /usr/lib/xen-4.17/bin/test-xenstore ]] || need+=(xen-utils-4.17)
[[ -d /usr/lib/python3/dist-packages/pyxs ]] || need+=(python3-pyxs)
[[ -f /usr/include/xenstore.h ]] || need+=(libxen-dev)
[[ -x /usr/bin/qemu-system-x86_64 ]] || need+=(qemu-system-x86)
[[ -x /etc/xen/scripts/vif-bridge ]] || need+=(xen-utils-common)
[[ -f /usr/share/ovmf/OVMF.fd ]] || need+=(ovmf)
[[ -x /usr/sbin/ip ]] || need+=(iproute2)
command -v gcc >/dev/null || need+=(gcc)
[[ -x /usr/bin/xorriso ]] || need+=(xorriso)
command -v pkg-config >/dev/null || need+=(pkg-config)
[[ -x /usr/bin/systemd-analyze ]] || need+=(systemd)
[[ -x /usr/bin/man ]] || need+=(man-db)
if ((${#need[@]})); then
  echo "install-peers: installing ${need[*]}"
  sudo=""; [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  # policy-rc.d keeps postinst scripts from starting Xen's own daemons.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    xen-utils-4.17 xen-utils-common xenstore-utils python3-pyxs libxen-dev qemu-system-x86 ovmf iproute2 gcc pkg-config xorriso systemd man-db >/dev/null
fi
scripts/guest-image.sh >/dev/null
