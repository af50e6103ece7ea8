#!/usr/bin/env bash
# The whole test suite: installs the real peers when missing, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-peers.sh
swift build --build-tests
swift test --disable-xctest "$@"
