#!/usr/bin/env bash
# Installs xl, xenstored and xenstore the way Xen's tools are installed: commands, manual
# pages, bash completion, systemd units, xendomains, an example xl.conf.
#
#   scripts/install.sh                     # builds the release, installs under /usr/local
#   PREFIX=/usr DESTDIR=/tmp/pkg scripts/install.sh
#   BUILD_DIR=.build/debug scripts/install.sh --no-build   # what is built already
#
#   $PREFIX/sbin/xl, $PREFIX/sbin/xenstored, $PREFIX/bin/xenstore and its xenstore-<verb> links
#   $PREFIX/share/man/man1/xl.1, xenstore.1; man5/xl.cfg.5, xl.conf.5; man8/xenstored.8
#   $PREFIX/share/bash-completion/completions/xl
#   $PREFIX/lib/systemd/system/xenstored.service, xendomains.service
#   $PREFIX/lib/xen/bin/xendomains (Xen's LIBEXEC_BIN)
#   $SYSCONFDIR/xen/xl.conf, $SYSCONFDIR/default/xendomains (not replaced when present)
#
# PREFIX defaults to /usr/local, SYSCONFDIR to /etc; DESTDIR is prepended to every path.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc}
DESTDIR=${DESTDIR:-}
BUILD_DIR=${BUILD_DIR:-.build/release}
build=1
for argument in "$@"; do
  case $argument in
    --no-build) build=0 ;;
    *) echo "install.sh: unknown argument $argument (usage: install.sh [--no-build])" >&2; exit 64 ;;
  esac
done

if [[ $build == 1 ]]; then
  swift build -c release --product xl >&2
  swift build -c release --product xenstored >&2
  swift build -c release --product xenstore >&2
  BUILD_DIR=$(swift build -c release --show-bin-path)
fi
for command in xl xenstored xenstore; do
  [[ -x $BUILD_DIR/$command ]] || { echo "install.sh: $BUILD_DIR/$command is not built (run without --no-build, or set BUILD_DIR)" >&2; exit 1; }
done

root=$DESTDIR$PREFIX
etc=$DESTDIR$SYSCONFDIR
libexec=$PREFIX/lib/xen/bin
# Paths the installed files name: without DESTDIR, where they will run.
substitute() {
  sed -e "s|@SBINDIR@|$PREFIX/sbin|g" -e "s|@BINDIR@|$PREFIX/bin|g" -e "s|@LIBEXECBIN@|$libexec|g" \
    -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" "$1"
}

install -d "$root/sbin" "$root/bin" "$root/share/man/man1" "$root/share/man/man5" "$root/share/man/man8" \
  "$root/share/bash-completion/completions" "$root/lib/systemd/system" "$DESTDIR$libexec" "$etc/xen" "$etc/default"

install -m 0755 "$BUILD_DIR/xl" "$BUILD_DIR/xenstored" "$root/sbin/"
install -m 0755 "$BUILD_DIR/xenstore" "$root/bin/"
# xenstore-read and friends: one program, named by its link as Xen's xenstore-utils.
for verb in read write rm ls exists list chmod watch; do
  ln -sf xenstore "$root/bin/xenstore-$verb"
done

install -m 0644 packaging/man/xl.1 packaging/man/xenstore.1 "$root/share/man/man1/"
install -m 0644 packaging/man/xl.cfg.5 packaging/man/xl.conf.5 "$root/share/man/man5/"
install -m 0644 packaging/man/xenstored.8 "$root/share/man/man8/"
install -m 0644 packaging/bash-completion/xl "$root/share/bash-completion/completions/xl"

for unit in xenstored xendomains; do
  substitute "packaging/systemd/$unit.service.in" >"$root/lib/systemd/system/$unit.service"
  chmod 0644 "$root/lib/systemd/system/$unit.service"
done
substitute packaging/xendomains.in >"$DESTDIR$libexec/xendomains"
chmod 0755 "$DESTDIR$libexec/xendomains"

# Configuration: an operator's edits are kept.
[[ -e $etc/xen/xl.conf ]] || install -m 0644 packaging/xl.conf "$etc/xen/xl.conf"
if [[ ! -e $etc/default/xendomains ]]; then
  substitute packaging/default/xendomains >"$etc/default/xendomains"
  chmod 0644 "$etc/default/xendomains"
fi
echo "installed under ${DESTDIR:-/}: $PREFIX/sbin/xl, xenstored; $PREFIX/bin/xenstore; manuals, completion, systemd units, $libexec/xendomains"
