#!/usr/bin/env bash
# The sanitizer pass of the test suite (RELIABILITY.md, "Sanitizers"); scripts/test.sh runs it
# after the normal suite.
#
#   scripts/sanitizers.sh            AddressSanitizer + LeakSanitizer over every suite
#   scripts/sanitizers.sh thread     ThreadSanitizer over the suites that spawn nothing: not part
#                                    of the default pass (Synchronization.Mutex false positives,
#                                    see RELIABILITY.md); for looking, not for gating
#
# Each sanitizer has its own build directory (.build-asan, .build-tsan). Every process the tests
# start from this build (xenstored, xl, xenstore, spawn-fixture, the startup monitors) is
# instrumented too and writes its reports to files under a temporary directory. Any report fails
# the pass, and so does a run of no test or a failed test: nothing is retried (a retry once hid
# a 45 s stall of the whole test process). XL_SANITIZERS=skip skips the pass, except under
# CI=true, where it never skips.
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
# A pass takes 2 to 5 minutes here; past this it hangs, and scripts/deadline.sh shows where.
test_deadline=${XL_TEST_DEADLINE:-1500}

# Tests that assert on the daemon's resident memory: ASan's redzones, shadow and quarantine
# (freed memory is held back to catch use-after-free) make RSS meaningless there.
asan_skip='ReliabilityLoadTests/sixtyFourClientsLoseNoUpdateAndMemoryStaysFlat|ReliabilityDomainLimitsTests/aDomainAtEveryQuotaCostsBoundedMemory'

# Fails (returns 1) if any file the sanitizer wrote for run NAME is a report. A forked child
# (a startup monitor) repeats its parent's warning count at _exit and nothing else: such a file
# is no report of its own.
check_reports() {
  local found
  found=$(grep -lsvxE 'ThreadSanitizer: reported [0-9]+ warnings' "$reports/san-$1".* 2>/dev/null || true)
  [[ -z $found ]] && return 0
  echo "sanitizers: $1: REPORTS in:" >&2
  echo "$found" >&2
  grep -h -E 'SUMMARY|ERROR: |WARNING: ' $found | sort | uniq -c | sort -rn | head -20 >&2
  return 1
}

# guarded_test LOG LABEL [swift test arguments...]: the sanitized `swift test` of `run` (with its
# environment, scratch and sanitizer, which bash lets a called function see), output
# to LOG, under scripts/deadline.sh; on a hang, what it found is shown and 124 returned.
guarded_test() {
  local log=$1 label=$2 status=0
  shift 2
  DEADLINE_EVENTS="$log.events" scripts/deadline.sh "$test_deadline" "$label" \
    env "$environment" swift test --disable-xctest --scratch-path "$scratch" --sanitize="$sanitizer" --skip-build \
    --event-stream-output-path "$log.events" --event-stream-version 0 "$@" >"$log" 2>&1 || status=$?
  [[ $status == 124 ]] && sed -n '/^deadline:/,$p' "$log" | head -400 >&2
  return $status
}

# run NAME SCRATCH SANITIZER OPTIONS_VARIABLE OPTIONS [swift test arguments...]
run() {
  local name=$1 scratch=$2 sanitizer=$3 variable=$4 options=$5
  shift 5
  local log="$reports/$name.log" started=$SECONDS status=0
  local environment="$variable=$options:log_path=$reports/san-$name:log_exe_name=1"
  echo "sanitizers: $name: building ($scratch)"
  swift build --build-tests --scratch-path "$scratch" --sanitize="$sanitizer" >"$reports/$name-build.log" 2>&1 ||
    status=$?
  grep -v "ld.gold: warning: Cannot export local symbol" "$reports/$name-build.log" | tail -3
  [[ $status == 0 ]] || { echo "sanitizers: $name: build failed (see $reports/$name-build.log)" >&2; return 1; }
  echo "sanitizers: $name: testing (log: $log)"
  guarded_test "$log" "sanitizers $name" "$@" || status=$?
  [[ $status == 124 ]] && return 1
  grep -E '^(✔|✘) Test run with|✘ Test .* (failed|recorded an issue)' "$log" | tail -20 || true
  local ran
  ran=$(sed -nE 's/.*Test run with ([0-9]+) tests?.*/\1/p' "$log" | tail -1)
  echo "sanitizers: $name: ${ran:-no} tests, exit $status, $((SECONDS - started)) s"
  check_reports "$name" || return 1
  if [[ -z $ran || $ran == 0 ]]; then
    echo "sanitizers: $name: no test ran (see $log)" >&2
    return 1
  fi
  if [[ $status != 0 ]]; then
    echo "sanitizers: $name: tests failed (see $log)" >&2
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
      --filter '^(ReactorTests|XenStoreTests|XenStoreDaemonTests|XenLightTests)\.'
    ;;
  *)
    echo "usage: scripts/sanitizers.sh [address|thread]" >&2
    exit 2
    ;;
esac
echo "sanitizers: $mode: clean (logs in $reports)"
