#!/usr/bin/env bash
# Builds (once) and caches a tiny real Linux test guest: Debian's cloud kernel plus a
# busybox-static initramfs whose /init prints a boot marker, powers off on the ACPI power
# button, and runs a root shell on the serial console. See scripts/guest/README.md for the
# validated QEMU command line and what the guest does.
#
#   scripts/guest-image.sh            # prints the kernel path, then the initrd path
#
# Cache: $XL_GUEST_DIR (default /var/cache/xenlight-guest), outside the build tree:
#   vmlinuz         the kernel (linux-image-<abi>-cloud-amd64)
#   initrd.cpio.gz  busybox-static + the kernel's button/evdev/pvpanic, virtio, IDE/CD modules + /init
#   stamp           versions it was built from; written last, so no stamp = not built
# A cache whose stamp matches this script is used as is (no apt, no network): delete the
# stamp, or set XL_GUEST_REFRESH=1, to rebuild with the newest packages apt knows of.
# Everything is built in a temporary directory inside the cache, then renamed into place
# (stamp removed first, written last); a lock serialises concurrent runs.
set -euo pipefail

dir=${XL_GUEST_DIR:-/var/cache/xenlight-guest}
kernel_meta=linux-image-cloud-amd64
self_hash=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)

die() { echo "guest-image: $*" >&2; exit 1; }

cached() {
  [[ -f $dir/stamp && -s $dir/vmlinuz && -s $dir/initrd.cpio.gz ]] &&
    grep -qx "script=$self_hash" "$dir/stamp"
}

done_paths() { echo "$dir/vmlinuz"; echo "$dir/initrd.cpio.gz"; exit 0; }

if [[ ${XL_GUEST_REFRESH:-0} != 1 ]] && cached; then done_paths; fi

mkdir -p "$dir" 2>/dev/null || die "cannot create the cache directory $dir (set XL_GUEST_DIR, or run as root)"
[[ -w $dir ]] || die "cache directory $dir is not writable (set XL_GUEST_DIR, or run as root)"
exec 9>"$dir/.lock"
flock 9
# Another run may have finished the job while we waited for the lock.
if [[ ${XL_GUEST_REFRESH:-0} != 1 ]] && cached; then done_paths; fi

work=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

for tool in apt-get apt-cache dpkg-deb gzip; do
  command -v "$tool" >/dev/null || die "needs $tool (a Debian-based host)"
done

sudo=()
[[ $(id -u) == 0 ]] || ! command -v sudo >/dev/null || sudo=(sudo -n)

# The candidate version of a package, or nothing when apt does not know it.
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'; }

if [[ -z $(candidate "$kernel_meta") || -z $(candidate busybox-static) ]]; then
  echo "guest-image: apt does not know $kernel_meta/busybox-static yet: apt-get update" >&2
  "${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
fi
[[ -n $(candidate "$kernel_meta") ]] || die "no $kernel_meta package in the configured apt sources"
[[ -n $(candidate busybox-static) ]] || die "no busybox-static package in the configured apt sources"

# apt-get download as root warns that _apt cannot write here; the download still works.
fetch() {
  local out
  out=$(cd "$work/debs" && apt-get download -qq "$@" 2>&1) || die "apt-get download $* failed: $out"
  for p in "$@"; do
    compgen -G "$work/debs/${p%%=*}_*.deb" >/dev/null || die "apt-get download $p produced no .deb"
  done
}

mkdir -p "$work/debs" "$work/kernel" "$work/busybox" "$work/root"
fetch "$kernel_meta" busybox-static

# The metapackage depends on the versioned kernel package: linux-image-<abi>-cloud-amd64 (= v).
meta_deb=$(echo "$work"/debs/"$kernel_meta"_*.deb)
kpkg=$(dpkg-deb -f "$meta_deb" Depends | tr ',' '\n' |
  sed -n 's/^ *\(linux-image-[0-9][^ ]*\) *(= *\([^)]*\)).*/\1=\2/p' | head -n1)
[[ -n $kpkg ]] || die "cannot find the versioned kernel package in $kernel_meta's Depends: $(dpkg-deb -f "$meta_deb" Depends)"
fetch "$kpkg"

dpkg-deb -x "$(echo "$work"/debs/"${kpkg%%=*}"_*.deb)" "$work/kernel"
dpkg-deb -x "$(echo "$work"/debs/busybox-static_*.deb)" "$work/busybox"
kver=${kpkg%%=*}; kver=${kver#linux-image-}
bbver=$(dpkg-deb -f "$(echo "$work"/debs/busybox-static_*.deb)" Version)

vmlinuz=$work/kernel/boot/vmlinuz-$kver
config=$work/kernel/boot/config-$kver
moddir=$work/kernel/lib/modules/$kver
[[ -s $vmlinuz && -s $config && -d $moddir ]] || die "${kpkg%%=*} has no boot/vmlinuz-$kver, boot/config-$kver or lib/modules/$kver"
busybox=$work/busybox/bin/busybox
[[ -x $busybox ]] || die "busybox-static has no bin/busybox"

# --- Kernel modules: only what the cloud kernel builds as modules, with their dependencies.
# A module's dependencies, from its .modinfo section (modinfo when installed).
mod_depends() {
  if command -v modinfo >/dev/null; then modinfo -F depends "$1"
  else tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n1; fi | tr ',' ' '
}
# The module file for a name (- and _ are the same in module names).
mod_file() {
  local pat=${1//[-_]/[-_]}
  find "$moddir/kernel" -type f \( -name "$pat.ko" -o -name "$pat.ko.xz" -o -name "$pat.ko.zst" -o -name "$pat.ko.gz" \) | head -n1
}
order=()   # dependencies first
visit() {
  local name=$1 f dep
  for m in "${order[@]}"; do [[ $m == "$name" ]] && return 0; done
  f=$(mod_file "$name"); [[ -n $f ]] || die "module $name not found in ${kpkg%%=*}"
  for dep in $(mod_depends "$f"); do visit "$dep"; done
  order+=("$name")
  mkdir -p "$work/root/lib/modules"
  case $f in   # busybox insmod loads plain .ko only: decompress here
    *.ko.xz) xz -dc "$f" >"$work/root/lib/modules/$name.ko" ;;
    *.ko.zst) zstd -qdc "$f" >"$work/root/lib/modules/$name.ko" ;;
    *.ko.gz) gzip -dc "$f" >"$work/root/lib/modules/$name.ko" ;;
    *) cp "$f" "$work/root/lib/modules/$name.ko" ;;
  esac
}
# config symbol of each module the guest needs
# (devices that change while the guest runs: virtio net/blk/balloon/console, IDE disks and CDs,
# ISO 9660; ACPI PCI and CPU hotplug are built in)
declare -A wanted=([button]=CONFIG_ACPI_BUTTON [evdev]=CONFIG_INPUT_EVDEV
  [pvpanic-mmio]=CONFIG_PVPANIC_MMIO [pvpanic-pci]=CONFIG_PVPANIC_PCI
  [virtio_pci]=CONFIG_VIRTIO_PCI [virtio_net]=CONFIG_VIRTIO_NET [virtio_blk]=CONFIG_VIRTIO_BLK
  [virtio_balloon]=CONFIG_VIRTIO_BALLOON [virtio_console]=CONFIG_VIRTIO_CONSOLE
  [ata_piix]=CONFIG_ATA_PIIX [sd_mod]=CONFIG_BLK_DEV_SD [sr_mod]=CONFIG_BLK_DEV_SR
  [isofs]=CONFIG_ISO9660_FS)
builtin=()
for name in evdev button pvpanic-mmio pvpanic-pci virtio_pci virtio_net virtio_blk virtio_balloon \
  virtio_console ata_piix sd_mod sr_mod isofs; do
  setting=$(sed -n "s/^${wanted[$name]}=//p" "$config")
  case $setting in
    m) visit "$name" ;;
    y) builtin+=("$name") ;;
    *) [[ $name == pvpanic-pci ]] || die "$kver has ${wanted[$name]} unset: the guest needs $name" ;;
  esac
done
printf '%s\n' "${order[@]}" >"$work/root/etc.modules"

# --- The initramfs tree
r=$work/root
mkdir -p "$r"/{bin,dev,proc,sys,tmp,root,etc/acpi/PWRF,var/log,var/run}
mv "$r/etc.modules" "$r/etc/modules"
cp "$busybox" "$r/bin/busybox"
for applet in $("$busybox" --list); do
  [[ $applet == busybox ]] || ln -sf busybox "$r/bin/$applet"
done
ln -s bin "$r/sbin"; mkdir -p "$r/usr"; ln -s ../bin "$r/usr/bin"; ln -s ../bin "$r/usr/sbin"

# busybox acpid turns the power button's input event (KEY_POWER, from the button module via
# evdev) into "PWRF", maps it through /etc/acpid.conf to PWRF/00000080 and runs
# /etc/acpi/PWRF/00000080 (run-parts when it is a directory).
echo 'PWRF PWRF/00000080' >"$r/etc/acpid.conf"
cat >"$r/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
echo "xenlight-guest: power button: poweroff" >/dev/console
exec poweroff -f
EOF
chmod 755 "$r/etc/acpi/PWRF/00000080"

cat >"$r/init" <<'EOF'
#!/bin/sh
# xenlight test guest. Kernel command line words it reads:
#   xlguest.ignore_powerbutton   do not start acpid: the ACPI power button does nothing
export PATH=/bin HOME=/root TERM=linux PS1='xlguest# '
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo 1 >/proc/sys/kernel/sysrq
for m in $(cat /etc/modules); do
  insmod "/lib/modules/$m.ko" || echo "xenlight-guest: insmod $m failed"
done
echo "xenlight-guest: booted, uptime $(cut -d' ' -f1 /proc/uptime) s"
case " $(cat /proc/cmdline) " in
  *" xlguest.ignore_powerbutton "*) echo "xenlight-guest: ignoring the power button" ;;
  *) acpid -c /etc/acpi -a /etc/acpid.conf -l /var/log/acpid.log ;;
esac
tty=/dev/ttyS0
[ -c $tty ] || tty=/dev/console
while :; do
  setsid -c sh -l <$tty >$tty 2>&1
  sleep 1
done
EOF
chmod 755 "$r/init"

(cd "$r" && find . -mindepth 1 | LC_ALL=C sort | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) |
  gzip -9n >"$work/initrd.cpio.gz"
cp "$vmlinuz" "$work/vmlinuz"

cat >"$work/stamp" <<EOF
kernel=${kpkg%%=*} ${kpkg#*=}
busybox=busybox-static $bbver
modules=${order[*]}
builtin=${builtin[*]}
script=$self_hash
EOF

# Into place: the stamp goes first and comes back last, so a half-replaced cache is never used.
rm -f "$dir/stamp"
mv -f "$work/vmlinuz" "$dir/vmlinuz"
mv -f "$work/initrd.cpio.gz" "$dir/initrd.cpio.gz"
mv -f "$work/stamp" "$dir/stamp"
sed 's/^/guest-image: /' "$dir/stamp" >&2
done_paths
