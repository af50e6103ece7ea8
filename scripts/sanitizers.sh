#!/usr/bin/env bash
# The sanitizer pass of the test suite (RELIABILITY.md, "Sanitizers"); scripts/test.sh runs it
# after the normal suite.
#
#   scripts/sanitizers.sh            AddressSanitizer + LeakSanitizer over every suite
#   scripts/sanitizers.sh thread     ThreadSanitizer over the reactor and xenstore suites: not part
#                                    of the default pass (Synchronization.Mutex false positives,
#                                    see RELIABILITY.md); for looking, not for gating
#
# Each sanitizer has its own build directory (.build-asan, .build-tsan). Every process the tests
# start from this build (xenstored, xl, xenstore, spawn-fixture, the startup monitors) is
# instrumented too and writes its reports to files under a temporary directory; any report, a
# failed test or a run of no test fails the pass. Under CI=true it never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-address}
if [[ ${XL_SANITIZERS:-} == skip ]]; then
  if [[ ${CI:-} == true ]]; then
    echo "sanitizers: XL_SANITIZERS=skip is refused under CI=true" >&2
    exit 1
  fi
  echo "sanitizers: SKIPPED (XL_SANITIZERS=skip)" >&2
  exit 0
fi

reports=$(mktemp -d /tmp/xl-sanitizers.XXXXXX)

# Tests that assert on the daemon's resident memory: ASan's redzones, shadow and quarantine
# (freed memory is held back to catch use-after-free) make RSS meaningless there.
asan_skip='ReliabilityLoadTests/sixtyFourClientsLoseNoUpdateAndMemoryStaysFlat|ReliabilityDomainLimitsTests/aDomainAtEveryQuotaCostsBoundedMemory'

# run NAME SCRATCH SANITIZER OPTIONS_VARIABLE OPTIONS [swift test arguments...]
run() {
  local name=$1 scratch=$2 sanitizer=$3 variable=$4 options=$5
  shift 5
  local log="$reports/$name.log" started=$SECONDS
  echo "sanitizers: $name: building ($scratch)"
  local status=0
  swift build --build-tests --scratch-path "$scratch" --sanitize="$sanitizer" >"$reports/$name-build.log" 2>&1 ||
    status=$?
  grep -v "ld.gold: warning: Cannot export local symbol" "$reports/$name-build.log" | tail -3
  [[ $status == 0 ]] || { echo "sanitizers: $name: build failed (see $reports/$name-build.log)" >&2; return 1; }
  echo "sanitizers: $name: testing (log: $log)"
  env "$variable=$options:log_path=$reports/san-$name:log_exe_name=1" \
    swift test --disable-xctest --scratch-path "$scratch" --sanitize="$sanitizer" --skip-build "$@" \
    >"$log" 2>&1 || status=$?
  grep -E '^(✔|✘) Test run with|✘ Test .* (failed|recorded an issue)' "$log" | tail -20 || true
  local ran
  ran=$(sed -nE 's/.*Test run with ([0-9]+) tests?.*/\1/p' "$log" | tail -1)
  # A forked child (startup monitor) repeats its parent's count at _exit and nothing else: that
  # file is no report of its own. Anything else a sanitizer wrote is.
  local found
  found=$(grep -lsvxE 'ThreadSanitizer: reported [0-9]+ warnings' "$reports/san-$name".* 2>/dev/null || true)
  echo "sanitizers: $name: ${ran:-no} tests, exit $status, $((SECONDS - started)) s"
  if [[ -n $found ]]; then
    echo "sanitizers: $name: REPORTS in:" >&2
    echo "$found" >&2
    grep -h -E 'SUMMARY|ERROR: |WARNING: ' $found | sort | uniq -c | sort -rn | head -20 >&2
    return 1
  fi
  if [[ $status != 0 || -z $ran || $ran == 0 ]]; then
    echo "sanitizers: $name: tests failed or none ran (see $log)" >&2
    return 1
  fi
}

case $mode in
  address)
    # LeakSanitizer stays on (ASan's default on Linux): no leak is reported today.
    run address .build-asan address ASAN_OPTIONS "detect_leaks=1" --skip "$asan_skip"
    ;;
  thread)
    run thread .build-tsan thread TSAN_OPTIONS "suppressions=$PWD/scripts/tsan-suppressions.txt" \
      --filter '^(ReactorTests|XenStoreTests|XenStoreDaemonTests)\.'
    ;;
  *)
    echo "usage: scripts/sanitizers.sh [address|thread]" >&2
    exit 2
    ;;
esac
echo "sanitizers: $mode: clean (logs in $reports)"
