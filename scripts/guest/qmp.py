#!/usr/bin/env python3
"""Drive the xenlight test guest (scripts/guest-image.sh) in QEMU directly, over QMP and the
serial console, and print what happens, with times from QEMU's start.

  scripts/guest/qmp.py check [SCENARIO...]   # boot powerdown ignore reboot poweroff reset panic idle
  scripts/guest/qmp.py cmd SOCKET CMD [ARGS-JSON]   # one QMP command on a running QEMU

Nothing here is part of the test suite: it is how scripts/guest/README.md was checked.
"""
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

CACHE = os.environ.get("XL_GUEST_DIR", "/var/cache/xenlight-guest")
APPEND = "console=ttyS0 panic=0 quiet"
MARKER = b"xenlight-guest: booted"
PROMPT = b"xlguest# "


class QMP:
    def __init__(self, path, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.buf = b""
        self.events = []  # (time.monotonic(), event dict)
        self.greeting = self._read()
        self.execute("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("QMP closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def pump(self):
        """Read whatever is available (the socket is readable) into self.events."""
        self.buf += self.sock.recv(65536)
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            msg = json.loads(line)
            if "event" in msg:
                self.events.append((time.monotonic(), msg))

    def execute(self, cmd, args=None):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append((time.monotonic(), reply))
                continue
            if "error" in reply:
                raise RuntimeError(f"{cmd}: {reply['error']}")
            return reply["return"]


class Guest:
    def __init__(self, append=APPEND, mem=128, accel="tcg", extra=()):
        self.tmp = tempfile.mkdtemp(prefix="xlguest.")
        qmp_path = os.path.join(self.tmp, "qmp")
        self.argv = [
            "qemu-system-x86_64", "-machine", "pc", "-accel", accel, "-m", str(mem),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-shutdown",
            "-chardev", "stdio,id=ser0,signal=off", "-serial", "chardev:ser0",
            "-kernel", f"{CACHE}/vmlinuz", "-initrd", f"{CACHE}/initrd.cpio.gz",
            "-append", append, "-device", "pvpanic",
            "-action", "reboot=shutdown,panic=pause",
            "-qmp", f"unix:{qmp_path},server=on,wait=off", *extra,
        ]
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(os.path.join(self.tmp, "stderr"), "wb"))
        self.console = b""
        self.qmp = QMP(qmp_path)
        self.seen = 0  # events already reported

    def t(self, when=None):
        return (when if when is not None else time.monotonic()) - self.t0

    def pump(self, timeout):
        r, _, _ = select.select([self.proc.stdout, self.qmp.sock], [], [], max(timeout, 0))
        if self.proc.stdout in r:
            data = os.read(self.proc.stdout.fileno(), 65536)
            if not data:
                raise EOFError("QEMU closed the serial console")
            self.console += data
        if self.qmp.sock in r:
            self.qmp.pump()
        for when, ev in self.qmp.events[self.seen:]:
            print(f"  {self.t(when):7.3f}s  QMP {json.dumps({k: ev[k] for k in ('event', 'data') if k in ev})}")
        self.seen = len(self.qmp.events)

    def wait_console(self, needle, timeout=60, start=0):
        deadline = time.monotonic() + timeout
        while needle not in self.console[start:]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {needle!r} on the console; last: {self.console[-600:]!r}")
            self.pump(deadline - time.monotonic())
        return self.t()

    def wait_event(self, name, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            for when, ev in self.qmp.events:
                if ev["event"] == name:
                    return self.t(when), ev
            if time.monotonic() > deadline:
                return None, None
            self.pump(deadline - time.monotonic())

    def idle(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.pump(deadline - time.monotonic())

    def send(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def boot(self):
        t = self.wait_console(MARKER)
        self.wait_console(PROMPT)
        return t

    def status(self):
        return self.qmp.execute("query-status")

    def close(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


def scenario(name, append=APPEND, mem=128, accel="tcg"):
    print(f"== {name} (-m {mem}, -accel {accel}, -append {append!r})")
    g = Guest(append=append, mem=mem, accel=accel)
    try:
        t = g.boot()
    except BaseException:
        g.close()
        raise
    print(f"  {t:7.3f}s  boot marker; console line: "
          f"{[l for l in g.console.splitlines() if MARKER in l][0].decode(errors='replace')!r}")
    return g


def check_boot():
    for _ in range(3):
        g = scenario("boot")
        mark = len(g.console)
        g.send("echo hello-$((6*7))")
        t = g.wait_console(b"hello-42\r\n", start=mark + len("echo hello-$((6*7))"))
        print(f"  {t:7.3f}s  shell answered 'hello-42'")
        g.close()


def print_console(g, keys=(b"xenlight-guest:", b"Kernel panic", b"reboot:", b"ACPI: PM:")):
    for line in g.console.splitlines():
        if any(k in line for k in keys) and MARKER not in line:
            print(f"  console: {line.decode(errors='replace')!r}")


def check_powerdown():
    g = scenario("powerdown")
    print(f"  system_powerdown -> {g.qmp.execute('system_powerdown')}")
    t, ev = g.wait_event("SHUTDOWN", 30)
    g.idle(0.5)
    print(f"  query-status: {g.status()}; QEMU alive: {g.proc.poll() is None}")
    print_console(g)
    g.close()


def check_ignore():
    g = scenario("ignore", append=APPEND + " xlguest.ignore_powerbutton")
    print(f"  system_powerdown -> {g.qmp.execute('system_powerdown')}")
    t, ev = g.wait_event("SHUTDOWN", 10)
    print(f"  after 10 s: SHUTDOWN seen: {ev is not None}; query-status: {g.status()}")
    mark = len(g.console)
    g.send("echo still-$((1+1))")
    g.wait_console(b"still-2\r\n", start=mark + 20, timeout=10)
    print("  shell still answers")
    g.close()


def check_guest_cmd(name, cmd, event):
    g = scenario(name)
    g.send(cmd)
    print(f"  sent {cmd!r}")
    t, ev = g.wait_event(event, 30)
    g.idle(0.5)
    print(f"  query-status: {g.status()}; QEMU alive: {g.proc.poll() is None}")
    print_console(g)
    g.close()


def check_reset():
    g = scenario("reset")
    print(f"  system_reset -> {g.qmp.execute('system_reset')}")
    t, ev = g.wait_event("SHUTDOWN", 10)
    if ev is None:
        t, ev = g.wait_event("RESET", 1)
    g.idle(0.5)
    print(f"  query-status: {g.status()}")
    g.close()


def check_idle():
    for mem in (128, 256):
        g = scenario("idle", mem=mem)
        g.idle(10)
        c0, w0 = cpu_seconds(g.proc.pid), time.monotonic()
        g.idle(20)
        c1, w1 = cpu_seconds(g.proc.pid), time.monotonic()
        ps = subprocess.run(["ps", "-o", "%cpu=,rss=", "-p", str(g.proc.pid)],
                            capture_output=True, text=True).stdout.split()
        print(f"  idle 20 s: QEMU CPU {100 * (c1 - c0) / (w1 - w0):.1f}% of a core; "
              f"VmRSS {rss_kib(g.proc.pid)} KiB; ps %cpu (lifetime) {ps[0]} rss {ps[1]} KiB")
        g.close()


CHECKS = {
    "boot": check_boot,
    "powerdown": check_powerdown,
    "ignore": check_ignore,
    "reboot": lambda: check_guest_cmd("reboot -f", "reboot -f", "SHUTDOWN"),
    "poweroff": lambda: check_guest_cmd("poweroff -f", "poweroff -f", "SHUTDOWN"),
    "reset": check_reset,
    "panic": lambda: check_guest_cmd("panic", "echo c > /proc/sysrq-trigger", "GUEST_PANICKED"),
    "idle": check_idle,
}


def main(argv):
    if argv[:1] == ["cmd"] and len(argv) in (3, 4):
        q = QMP(argv[1])
        print(json.dumps(q.execute(argv[2], json.loads(argv[3]) if len(argv) == 4 else None)))
        return 0
    if argv[:1] == ["check"]:
        for name in argv[1:] or list(CHECKS):
            CHECKS[name]()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
