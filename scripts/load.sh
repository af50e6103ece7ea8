#!/usr/bin/env bash
# Load on xenstored for SECONDS, memory-only and then durable (--state-dir): 64 clients
# mixing reads, writes, listings, watches and transactions, a client that never reads its
# events and one that never reads its replies.
# Prints clients, operations, commits, EAGAIN retries, lost updates and the daemon's RSS after
# warm-up and at the end (see RELIABILITY.md). XS_STRESS_SEED=N replays a run's choices.
#
#   scripts/load.sh SECONDS
set -euo pipefail
cd "$(dirname "$0")/.."
# The build directory of the tests (SwiftPM's default unless SWIFT_SCRATCH_PATH says otherwise).
scratch=${SWIFT_SCRATCH_PATH:-.build}
seconds=${1:?usage: scripts/load.sh SECONDS}
swift build --scratch-path "$scratch" --build-tests
XS_LOAD_SECONDS=$seconds swift test --scratch-path "$scratch" --skip-build \
  --disable-xctest --filter ReliabilityLoadTests
