#!/usr/bin/env bash
# The whole test suite: installs the real peers when missing, builds, runs every test, then the
# sanitizer pass (scripts/sanitizers.sh: every suite again under AddressSanitizer, in .build-asan).
# With arguments (say --filter X) only `swift test` runs, with them, except under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-peers.sh
swift build --build-tests
# About 1 to 2 minutes here; a hang is reported with every thread's stack, then killed.
events=$(mktemp /tmp/xl-test-events.XXXXXX)
DEADLINE_EVENTS=$events scripts/deadline.sh "${XL_TEST_DEADLINE:-1200}" "swift test" \
  swift test --disable-xctest --event-stream-output-path "$events" --event-stream-version 0 "$@"
rm -f "$events"
if (($# == 0)) || [[ ${CI:-} == true ]]; then
  scripts/sanitizers.sh address
else
  echo "test.sh: sanitizer pass not run (arguments given): scripts/sanitizers.sh" >&2
fi
