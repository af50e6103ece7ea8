#!/usr/bin/env python3
"""Prints a XenStoreFuzzer input (a corpus file or a crash) as the messages each slot sends."""
import struct
import sys

NAMES = ["CONTROL", "DIRECTORY", "READ", "GET_PERMS", "WATCH", "UNWATCH", "TRANSACTION_START",
         "TRANSACTION_END", "INTRODUCE", "RELEASE", "GET_DOMAIN_PATH", "WRITE", "MKDIR", "RM",
         "SET_PERMS", "WATCH_EVENT", "ERROR", "IS_DOMAIN_INTRODUCED", "RESUME", "SET_TARGET",
         "RESTRICT", "RESET_WATCHES", "DIRECTORY_PART", "GET_FEATURE", "SET_FEATURE"]
SLOTS = ["dom0/a", "dom0/b", "dom1", "dom2"]


def main(path):
    data = open(path, "rb").read()
    streams = {}
    i = 0
    while i < len(data):
        control = data[i]
        length = int.from_bytes(data[i + 1:i + 3].ljust(2, b"\0"), "little")
        chunk = data[i + 3:i + 3 + length]
        i += 3 + len(chunk)
        slot = control & 3
        if (control >> 2) & 3 == 3:
            print(f"{SLOTS[slot]}: close")
            streams[slot] = b""
            continue
        buf = streams.get(slot, b"") + chunk
        while len(buf) >= 16:
            kind, req, tx, n = struct.unpack("<IIII", buf[:16])
            if n > 4096:
                print(f"{SLOTS[slot]}: header announcing {n} bytes (connection dropped)")
                buf = b""
                break
            if len(buf) < 16 + n:
                break
            name = NAMES[kind] if kind < len(NAMES) else f"TYPE({kind})"
            print(f"{SLOTS[slot]}: {name} req={req} tx={tx} {buf[16:16 + n]!r}")
            buf = buf[16 + n:]
        streams[slot] = buf
    for slot, rest in streams.items():
        if rest:
            print(f"{SLOTS[slot]}: {len(rest)} bytes left undecoded")


if __name__ == "__main__":
    main(sys.argv[1])
