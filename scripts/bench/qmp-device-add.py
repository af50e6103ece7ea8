#!/usr/bin/env python3
"""The floor for `xl block-attach`: a bare QMP client on the domain's command socket, timed from
connect to QEMU's answer to `device_add` (greeting, qmp_capabilities, blockdev-add of the image by
path, device_add virtio-blk-pci). Prints milliseconds. Then, untimed, takes the disk away again
(device_del, DEVICE_DELETED from the guest, blockdev-del).
Usage: qmp-device-add.py QMP-SOCKET IMAGE"""
import json, socket, sys, time

path, image = sys.argv[1], sys.argv[2]
start = time.monotonic()
s = socket.socket(socket.AF_UNIX)
s.connect(path)
f = s.makefile("rwb", buffering=0)
events = []

def ask(command, **arguments):
    f.write(json.dumps({"execute": command, "arguments": arguments}).encode() + b"\n")
    while True:
        reply = json.loads(f.readline())
        if "event" in reply:
            events.append(reply)
            continue
        if "error" in reply:
            sys.exit(f"{command}: {reply['error']['desc']}")
        return reply["return"]

json.loads(f.readline())  # greeting
ask("qmp_capabilities")
ask("blockdev-add", driver="raw", **{"node-name": "bench-disk"}, file={"driver": "file", "filename": image})
ask("device_add", driver="virtio-blk-pci", id="benchdisk", drive="bench-disk")
elapsed = time.monotonic() - start
print(f"{elapsed * 1000:.3f}")

ask("device_del", id="benchdisk")
while not any(e["event"] == "DEVICE_DELETED" and e.get("data", {}).get("device") == "benchdisk" for e in events):
    events.append(json.loads(f.readline()))
ask("blockdev-del", **{"node-name": "bench-disk"})
