#!/usr/bin/env bash
# Regenerates the command manuals in packaging/man from the commands' own definitions
# (swift-argument-parser's generate-manual plugin): xl(1), xenstore(1), xenstored(8).
# xl.cfg(5) is written by hand (packaging/man/xl.cfg.5). Run after changing a command's
# options or help; ManualPageTests fails while xl(1) misses a subcommand.
#
#   scripts/man-pages.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build/plugins/GenerateManual/outputs
swift package --allow-writing-to-package-directory generate-manual --date "$(date -u +%Y-%m-%d)" >/dev/null
# mandoc and groff warn about empty lines in mdoc: they are paragraph breaks.
fix() { sed -e 's/^$/.Pp/' "$1"; }
fix "$out/xl/xl.1" >packaging/man/xl.1
fix "$out/xenstore/xenstore.1" >packaging/man/xenstore.1
fix "$out/xenstored/xenstored.1" | sed -e 's/^\.Dt XENSTORED 1$/.Dt XENSTORED 8/' >packaging/man/xenstored.8
echo "packaging/man: xl.1 xenstore.1 xenstored.8"
