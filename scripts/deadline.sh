#!/usr/bin/env bash
# deadline.sh SECONDS LABEL COMMAND [ARGUMENTS...]
#
# Runs COMMAND in a session of its own and returns its exit status. If it is still running
# after SECONDS, it is a hang: the processes it left (its session and every descendant, with
# their kernel wait channels) and every thread's stack of each test runner (gdb, when
# installed) are printed to stderr, the session and the descendants are killed, and the exit
# status is 124, as timeout(1)'s. The test command must end with a reason, never hang CI.
# With DEADLINE_EVENTS naming a Swift Testing event stream (`swift test --event-stream-output-path
# FILE --event-stream-version 0`, written as it happens), the tests still running are named too:
# the test output itself is block-buffered and lost with the killed process.
set -uo pipefail

if (($# < 3)); then
  echo "usage: scripts/deadline.sh SECONDS LABEL COMMAND [ARGUMENTS...]" >&2
  exit 2
fi
limit=$1 label=$2
shift 2

setsid "$@" &
leader=$!
# The command is out of our process group: pass an interrupt (^C) or a stop on to it.
trap 'kill -TERM -- "-$leader" 2>/dev/null' INT TERM HUP

# The session's processes and, recursively, their children: startup monitors and the daemons
# they watch leave the session (setsid) but stay descendants until they are reparented.
descendants() {
  local pids
  pids=$(ps -e -o pid=,sid= | awk -v s="$leader" '$2 == s { print $1 }')
  local frontier=$pids
  while [[ -n $frontier ]]; do
    local next
    next=$(for p in $frontier; do ps -o pid= --ppid "$p"; done | tr -s ' \n' '\n' | sed '/^$/d')
    frontier=$next
    pids+=$'\n'$next
  done
  echo "$pids" | tr -s ' \n' '\n' | sed '/^$/d' | sort -un
}

# The tests (not suites) that started and have not ended, with how long they have run.
unfinished_tests() {
  [[ -n ${DEADLINE_EVENTS:-} && -s $DEADLINE_EVENTS ]] || return 0
  echo "deadline: $label: tests still running:" >&2
  python3 - "$DEADLINE_EVENTS" >&2 <<'PYTHON' || true
import json, sys, time
running = {}
for line in open(sys.argv[1], errors="replace"):
    try:
        record = json.loads(line)
    except ValueError:
        continue
    payload = record.get("payload", {})
    kind, test = payload.get("kind"), payload.get("testID", "")
    if record.get("kind") != "event" or "/" not in test:
        continue
    if kind == "testStarted":
        running[test] = payload["instant"]["since1970"]
    elif kind in ("testEnded", "testSkipped"):
        running.pop(test, None)
for test, started in sorted(running.items(), key=lambda item: item[1]):
    print(f"  {test} (for {time.time() - started:.0f} s)")
PYTHON
}

report_hang() {
  unfinished_tests
  command -v ps >/dev/null || { echo "deadline: $label: still running after $limit s (no ps: no details)" >&2; return; }
  local pids
  pids=$(descendants)
  echo "deadline: $label: still running after $limit s: a hang. Its processes:" >&2
  # shellcheck disable=SC2086
  [[ -n $pids ]] && ps -o pid,ppid,sid,stat,etimes,wchan:24,args -p "$(echo $pids | tr ' ' ',')" >&2
  command -v gdb >/dev/null || { echo "deadline: gdb not installed: no stacks" >&2; return; }
  for pid in $pids; do
    local name
    name=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
    # The test runners: SwiftPM's test binary (comm is cut to 15 characters) and its helper.
    case $name in *Package* | *xctest* | swiftpm-testing*) ;; *) continue ;; esac
    echo "deadline: $label: threads of $pid ($name):" >&2
    timeout 60 gdb -p "$pid" -batch -nx -ex 'set pagination off' -ex 'thread apply all bt 25' 2>&1 |
      grep -E '^(Thread|#)' | cut -c1-220 >&2
  done
}

# Polls each second rather than one long sleep: a sleep left behind would hold the caller's
# output pipe open after the command ended.
marker=$(mktemp)
(
  for ((waited = 0; waited < limit; waited++)); do
    sleep 1
    kill -0 "$leader" 2>/dev/null || exit 0
  done
  report_hang
  pids=$(command -v ps >/dev/null && descendants)
  echo killed >"$marker"
  kill -KILL -- "-$leader" 2>/dev/null
  # shellcheck disable=SC2086
  [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
  exit 0
) &
watchdog=$!

status=0
wait "$leader" || status=$?
# A trapped signal ends the wait early; the command is still ending: wait for its status.
while kill -0 "$leader" 2>/dev/null; do wait "$leader" || status=$?; done
wait "$watchdog"
if [[ -s $marker ]]; then
  status=124
  echo "deadline: $label: killed after $limit s" >&2
fi
rm -f "$marker"
exit "$status"
