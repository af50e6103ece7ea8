#!/usr/bin/env bash
# Fuzzes xenstored for SECONDS.
#
#   scripts/fuzz.sh SECONDS [libFuzzer flags...]   the libFuzzer target (Fuzz/): wire codec and
#                                                  request handling, address sanitizer on
#   scripts/fuzz.sh --protocol SECONDS             random and mutated messages over many
#                                                  connections against a running xenstored
#   scripts/fuzz.sh --state SECONDS                the libFuzzer target over xenstored's state
#                                                  files (snapshot decoding, log replay, restore)
#
# libFuzzer keeps what it learns in fuzz-out/corpus (seeded from the committed Fuzz/corpus) and
# writes crashing inputs to fuzz-out/; replay one with
#   Fuzz/.build/release/XenStoreFuzzer fuzz-out/crash-...
# Known findings (RELIABILITY.md) are reported once and tolerated; XS_FUZZ_STRICT=1 makes them fatal.
set -euo pipefail
cd "$(dirname "$0")/.."
# The build directory of the tests (SwiftPM's default unless SWIFT_SCRATCH_PATH says otherwise).
scratch=${SWIFT_SCRATCH_PATH:-.build}

if [[ ${1:-} == --protocol ]]; then
  seconds=${2:?usage: scripts/fuzz.sh --protocol SECONDS}
  swift build --scratch-path "$scratch" --build-tests
  XS_PROTOCOL_FUZZ_SECONDS=$seconds swift test --scratch-path "$scratch" --skip-build \
    --disable-xctest --filter ReliabilityProtocolFuzzTests
  exit
fi

if [[ ${1:-} == --state ]]; then
  seconds=${2:?usage: scripts/fuzz.sh --state SECONDS}
  shift 2
  # A debug build: the target reaches the decoders through a testable import.
  (cd Fuzz && swift build --scratch-path .build-state -c debug --product XenStoreStateFuzzer \
    -Xswiftc -sanitize=fuzzer,address) 2> >(grep -v "Cannot export local symbol" >&2)
  mkdir -p fuzz-out/state-corpus
  SWIFT_BACKTRACE=enable=no Fuzz/.build-state/debug/XenStoreStateFuzzer \
    -max_total_time="$seconds" -max_len=16384 -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix=fuzz-out/state- "$@" fuzz-out/state-corpus Fuzz/state-corpus
  exit
fi

seconds=${1:?usage: scripts/fuzz.sh SECONDS [libFuzzer flags...]}
shift
(cd Fuzz && swift build --scratch-path .build -c release --product XenStoreFuzzer -Xswiftc -sanitize=fuzzer,address) \
  2> >(grep -v "Cannot export local symbol" >&2)
mkdir -p fuzz-out/corpus
# Swift's backtracer would turn each crash into a long interactive pause: libFuzzer reports them.
SWIFT_BACKTRACE=enable=no Fuzz/.build/release/XenStoreFuzzer \
  -max_total_time="$seconds" -max_len=8192 -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
  -artifact_prefix=fuzz-out/ "$@" fuzz-out/corpus Fuzz/corpus
