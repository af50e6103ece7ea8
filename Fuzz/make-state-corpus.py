#!/usr/bin/env python3
"""Turns xenstored state files (a --state-dir's snapshot-N and log-N) into seeds for the
XenStoreStateFuzzer target, in Fuzz/state-corpus/.

    Fuzz/make-state-corpus.py STATE_DIR

Each file gives two seeds: raw (mode byte 2|kind, then the file's bytes: the frame layer is
fuzzed) and framed (mode byte kind, then each record's payload as `length: u16 LE, payload`:
the fuzzer re-frames them with valid checksums, so mutations reach the record decoders).
kind is 0 for a snapshot, 1 for a log; logs are replayed as generation 1.
"""
import os
import struct
import sys


def records(data):
    offset = 0
    while offset + 12 <= len(data) and data[offset:offset + 4] == b"XSJ1":
        length = struct.unpack_from("<I", data, offset + 4)[0]
        yield data[offset + 12:offset + 12 + length]
        offset += 12 + length


def main(state_dir):
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "state-corpus")
    os.makedirs(out, exist_ok=True)
    for name in sorted(os.listdir(state_dir)):
        kind = 0 if name.startswith("snapshot-") else 1 if name.startswith("log-") else None
        if kind is None:
            continue
        data = open(os.path.join(state_dir, name), "rb").read()
        framed = bytes([kind]) + b"".join(struct.pack("<H", len(r)) + r for r in records(data) if len(r) < 65536)
        with open(os.path.join(out, f"{name}-raw"), "wb") as f:
            f.write(bytes([2 | kind]) + data)
        with open(os.path.join(out, f"{name}-framed"), "wb") as f:
            f.write(framed)
    print(f"seeds written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
