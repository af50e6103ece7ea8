#!/usr/bin/env python3
"""QEMU alone, the floor for `xl create`: start the given QEMU command line and time until its
QMP greeting arrives and `query-status` answers (the same proof `xl create` waits for), or
until it exits. Prints milliseconds. Usage: qmp-greeting.py QMP_SOCKET -- QEMU ARGS..."""
import json, os, socket, subprocess, sys, time

sock_path = sys.argv[1]
argv = sys.argv[sys.argv.index("--") + 1:]
if os.path.exists(sock_path):
    os.unlink(sock_path)
start = time.monotonic()
proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
outcome = "exited"
while proc.poll() is None:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock_path)
        f = s.makefile("rw")
        json.loads(f.readline())                       # greeting
        f.write('{"execute":"qmp_capabilities"}\n'); f.flush(); json.loads(f.readline())
        f.write('{"execute":"query-status"}\n'); f.flush(); json.loads(f.readline())
        outcome = "ready"
        break
    except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, ValueError):
        time.sleep(0.0005)
elapsed = (time.monotonic() - start) * 1000
if outcome == "exited":
    proc.wait()
    elapsed = (time.monotonic() - start) * 1000
else:
    proc.kill(); proc.wait()
print(f"{outcome} {elapsed:.1f}")
