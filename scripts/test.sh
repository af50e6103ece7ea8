#!/usr/bin/env bash
# The whole test suite: installs the real peers when missing, checks the documentation's code
# against the tests', builds, runs every test, then the end-to-end tests again on the release
# build (static executables, as shipped), builds the documentation (DocC, warnings as
# errors), then the sanitizer pass (scripts/sanitizers.sh: every suite again under
# AddressSanitizer, in .build-asan).
# With arguments (say --filter X) only `swift test` runs, with them, except under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-peers.sh
# The catalogs' code is the documentation tests' code, word for word.
scripts/check-doc-snippets.sh
swift build --build-tests
# About 1 to 2 minutes here; a hang is reported with every thread's stack, then killed.
events=$(mktemp /tmp/xl-test-events.XXXXXX)
DEADLINE_EVENTS=$events scripts/deadline.sh "${XL_TEST_DEADLINE:-1200}" "swift test" \
  swift test --disable-xctest --event-stream-output-path "$events" --event-stream-version 0 "$@"
rm -f "$events"
if (($# == 0)) || [[ ${CI:-} == true ]]; then
  # What ships: release builds are static executables (Package.swift), which a debug test run
  # never starts. The end-to-end suites run again on them: about 1 to 3 minutes here.
  started=$SECONDS
  swift build -c release
  release=$(swift build -c release --show-bin-path)
  XL_TEST_PRODUCTS=$release scripts/deadline.sh 900 "swift test (release products)" \
    swift test --disable-xctest --skip-build --filter EndToEndTests
  echo "test.sh: end-to-end tests on the release build in $((SECONDS - started)) s"
  # The DocC catalogs (Sources/*/*.docc), any warning an error: about 20 s to 1 min here.
  started=$SECONDS
  swift package generate-documentation --target Spawn --target XenStore --target XenLight --warnings-as-errors
  echo "test.sh: documentation built in $((SECONDS - started)) s"
  scripts/sanitizers.sh address
else
  echo "test.sh: documentation and sanitizer pass not run (arguments given): scripts/sanitizers.sh" >&2
fi
