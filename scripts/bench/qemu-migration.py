#!/usr/bin/env python3
"""QEMU's own migration through a bare QMP client: the floor for `xl save`, `xl restore` and
`xl migrate` (scripts/bench/save-restore.sh). Descriptors as xl hands them (getfd with
SCM_RIGHTS, then fd:), the end by the MIGRATION event; prints milliseconds.

  save SOCKET FILE            the running QEMU on SOCKET: stop, migrate into FILE, cont
  restore DIR FILE OFFSET -- QEMU ARGS
                              start QEMU (its QMP sockets fd=3/4 made in DIR first, as xl does;
                              ARGS end in -S -incoming defer), load FILE from OFFSET, cont:
                              from the fork to running
  migrate SOCKET DIR -- QEMU ARGS
                              start a destination QEMU as above, and migrate the QEMU on SOCKET
                              into it over a socket pair (live, uncapped), cont it: from the
                              fork to the destination running; then the source is resumed and
                              the destination stopped (the guest stays where it was)
"""
import json, os, signal, socket, sys, time


class QMP:
    def __init__(self, path=None, sock=None):
        self.sock = sock or socket.socket(socket.AF_UNIX)
        if path:
            self.sock.connect(path)
        self.buffer = b""
        self.events = []
        self.next()  # greeting
        self.execute("qmp_capabilities")

    def next(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("QMP closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, fd=None, **arguments):
        message = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        data = json.dumps(message).encode() + b"\n"
        if fd is None:
            self.sock.sendall(data)
        else:
            socket.send_fds(self.sock, [data], [fd])
        while True:
            reply = self.next()
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                raise RuntimeError(f"{command}: {reply['error']}")
            elif "return" in reply:
                return reply["return"]

    def wait_migration(self):
        while True:
            event = self.events.pop(0) if self.events else self.next()
            if event.get("event") == "MIGRATION" and event["data"]["status"] in ("completed", "failed", "cancelled"):
                return event["data"]["status"]

    def resume(self):
        """cont, once QEMU has left finish-migrate (it says "not finalized yet" until then)."""
        while True:
            try:
                return self.execute("cont")
            except RuntimeError as error:
                if "not finalized yet" not in str(error):
                    raise
                time.sleep(0.001)

    def prepare(self, uncapped):
        self.execute("migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])
        if uncapped:
            self.execute("migrate-set-parameters", **{"max-bandwidth": 2**63 - 1})


def start_qemu(directory, argv):
    """Forks QEMU with listening QMP sockets on descriptors 3 and 4; returns (pid, command QMP)."""
    listeners = []
    for name in ("bench-qmp-cmd", "bench-qmp-events"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        listener.listen(16)
        listeners.append((listener, path))
    pid = os.fork()
    if pid == 0:
        os.dup2(listeners[0][0].fileno(), 3)
        os.dup2(listeners[1][0].fileno(), 4)
        for fd in (3, 4):
            os.set_inheritable(fd, True)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0); os.dup2(null, 1); os.dup2(null, 2)
        os.execvp(argv[0], argv)
    for listener, _ in listeners:
        listener.close()
    return pid, QMP(listeners[0][1])


def stop(pid):
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def main():
    verb = sys.argv[1]
    if verb == "save":
        qmp = QMP(sys.argv[2])
        qmp.prepare(uncapped=True)
        start = time.monotonic()
        fd = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)  # as xl does, timed
        qmp.execute("stop")
        qmp.execute("getfd", fd=fd, fdname="bench")
        qmp.execute("migrate", uri="fd:bench")
        status = qmp.wait_migration()
        qmp.resume()
        elapsed = time.monotonic() - start
        print(f"{status} {elapsed * 1000:.1f}")
    elif verb == "restore":
        directory, path, offset = sys.argv[2], sys.argv[3], int(sys.argv[4])
        argv = sys.argv[sys.argv.index("--") + 1:]
        fd = os.open(path, os.O_RDONLY)
        os.lseek(fd, offset, os.SEEK_SET)
        start = time.monotonic()
        pid, qmp = start_qemu(directory, argv)
        qmp.prepare(uncapped=False)
        qmp.execute("getfd", fd=fd, fdname="bench")
        qmp.execute("migrate-incoming", uri="fd:bench")
        status = qmp.wait_migration()
        qmp.execute("cont")
        elapsed = time.monotonic() - start
        stop(pid)
        print(f"{status} {elapsed * 1000:.1f}")
    elif verb == "migrate":
        source_path, directory = sys.argv[2], sys.argv[3]
        argv = sys.argv[sys.argv.index("--") + 1:]
        source = QMP(source_path)
        source.prepare(uncapped=True)
        ours, theirs = socket.socketpair()
        start = time.monotonic()
        pid, destination = start_qemu(directory, argv)
        destination.prepare(uncapped=False)
        destination.execute("getfd", fd=theirs.fileno(), fdname="bench")
        destination.execute("migrate-incoming", uri="fd:bench")
        source.execute("getfd", fd=ours.fileno(), fdname="bench")
        source.execute("migrate", uri="fd:bench")
        status = source.wait_migration()
        incoming = destination.wait_migration()
        destination.execute("cont")
        elapsed = time.monotonic() - start
        downtime = source.execute("query-migrate").get("downtime", -1)
        stop(pid)
        source.resume()
        print(f"{status}/{incoming} {elapsed * 1000:.1f} downtime {downtime}")
    else:
        sys.exit(__doc__)


main()
