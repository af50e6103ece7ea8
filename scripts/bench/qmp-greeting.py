#!/usr/bin/env python3
"""QEMU alone, the floor for `xl create`: start the given QEMU command line and time until its
QMP greeting arrives and `query-status` answers (the same proof `xl create` waits for), or
until it exits. Prints the outcome and milliseconds.

As xl does, the two QMP sockets the command line names as `fd=3` and `fd=4` are opened and
listening before QEMU starts, and passed to it; the first is the one asked.
Usage: qmp-greeting.py DIRECTORY -- QEMU ARGS..."""
import json, os, socket, sys, time

directory = sys.argv[1]
argv = sys.argv[sys.argv.index("--") + 1:]
start = time.monotonic()
listeners = []
for name in ("qmp-cmd", "qmp-events"):
    path = os.path.join(directory, name)
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(16)
    listeners.append((listener, path))
fds = [l.fileno() for l, _ in listeners]

pid = os.fork()
if pid == 0:
    try:
        os.dup2(fds[0], 3); os.dup2(fds[1], 4)
        for fd in (3, 4): os.set_inheritable(fd, True)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2): os.dup2(null, fd)
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
for listener, _ in listeners:
    listener.close()
outcome = "exited"
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(listeners[0][1])                          # listening already: no retry
    f = s.makefile("rw")
    json.loads(f.readline())                             # greeting (or EOF if QEMU exits)
    f.write('{"execute":"qmp_capabilities"}\n'); f.flush(); json.loads(f.readline())
    f.write('{"execute":"query-status"}\n'); f.flush(); json.loads(f.readline())
    outcome = "ready"
except (ConnectionResetError, ValueError, BrokenPipeError):
    pass
if outcome == "exited":
    os.waitpid(pid, 0)
elapsed = (time.monotonic() - start) * 1000
if outcome == "ready":
    os.kill(pid, 9); os.waitpid(pid, 0)
for _, path in listeners:
    os.unlink(path)
print(f"{outcome} {elapsed:.1f}")
