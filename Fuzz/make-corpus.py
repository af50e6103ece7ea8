#!/usr/bin/env python3
"""Writes the seed corpus of the XenStoreFuzzer target into Fuzz/corpus/.

Each seed is a sequence of chunks (see Sources/XenStoreFuzzer/FuzzInput.swift):
control byte (slot in bits 0-1, action in bits 2-3: 3 closes the slot), a little-endian
16-bit length, then that many bytes fed to the slot's connection. Slots: 0 and 1 are dom0,
2 is domain 1, 3 is domain 2 (both introduced, each owning /local/domain/<id>).
"""
import os
import struct
import sys

T = dict(CONTROL=0, DIRECTORY=1, READ=2, GET_PERMS=3, WATCH=4, UNWATCH=5, TRANSACTION_START=6,
         TRANSACTION_END=7, INTRODUCE=8, RELEASE=9, GET_DOMAIN_PATH=10, WRITE=11, MKDIR=12, RM=13,
         SET_PERMS=14, WATCH_EVENT=15, ERROR=16, IS_DOMAIN_INTRODUCED=17, RESUME=18, SET_TARGET=19,
         RESTRICT=20, RESET_WATCHES=21, DIRECTORY_PART=22, GET_FEATURE=23, SET_FEATURE=24)


def msg(kind, *strings, req=1, tx=0, raw=None):
    payload = raw if raw is not None else b"".join(s.encode() + b"\0" for s in strings)
    return struct.pack("<IIII", T[kind] if isinstance(kind, str) else kind, req, tx, len(payload)) + payload


def write(path, value, req=1, tx=0):
    return msg("WRITE", raw=path.encode() + b"\0" + value.encode(), req=req, tx=tx)


def chunk(slot, data, close=False):
    return bytes([slot | (0xC if close else 0)]) + struct.pack("<H", len(data)) + data


def seed(*parts):
    return b"".join(chunk(slot, data) for slot, data in parts)


def split(slot, data, size):
    return [(slot, data[i:i + size]) for i in range(0, len(data), size)]


SEEDS = {
    # One valid request of every type, from dom0.
    **{f"dom0-{kind.lower()}": seed((0, m)) for kind, m in [
        ("CONTROL", msg("CONTROL", "check")),
        ("DIRECTORY", msg("DIRECTORY", "/local/domain")),
        ("READ", msg("READ", "/secret/key")),
        ("GET_PERMS", msg("GET_PERMS", "/local/domain/1")),
        ("WATCH", msg("WATCH", "/local", "tok")),
        ("TRANSACTION_START", msg("TRANSACTION_START", "")),
        ("INTRODUCE", msg("INTRODUCE", "7", "0", "0")),
        ("RELEASE", msg("RELEASE", "1")),
        ("GET_DOMAIN_PATH", msg("GET_DOMAIN_PATH", "3")),
        ("WRITE", write("/a/b/c", "value")),
        ("MKDIR", msg("MKDIR", "/made")),
        ("RM", msg("RM", "/local/domain/2")),
        ("SET_PERMS", msg("SET_PERMS", "/secret/key", "n0", "r1", "w2")),
        ("IS_DOMAIN_INTRODUCED", msg("IS_DOMAIN_INTRODUCED", "1")),
        ("RESUME", msg("RESUME", "2")),
        ("SET_TARGET", msg("SET_TARGET", "2", "1")),
        ("RESET_WATCHES", msg("RESET_WATCHES", "")),
        ("DIRECTORY_PART", msg("DIRECTORY_PART", "/local/domain", "0")),
        ("UNKNOWN", msg(99, "x")),
        ("RESTRICT", msg("RESTRICT", "1")),
        ("WATCH_EVENT", msg("WATCH_EVENT", "/a", "t")),
    ]},
    # A domain in its home, and at the door of everything else.
    "dom1-home": seed((2, write("data/x", "1") + msg("READ", "data/x", req=2) + msg("DIRECTORY", "data", req=3)
                          + msg("SET_PERMS", "data/x", "n1", "r2", req=4) + msg("RM", "data", req=5))),
    "dom1-hostile": seed((2, msg("READ", "/secret/key") + write("/secret/key", "x", req=2)
                          + msg("RM", "/local/domain/2", req=3) + msg("MKDIR", "/local/domain/2/in", req=4)
                          + msg("SET_PERMS", "/secret", "n1", req=5) + msg("GET_PERMS", "/secret", req=6)
                          + msg("INTRODUCE", "9", "0", "0", req=7) + msg("RELEASE", "2", req=8)
                          + msg("SET_TARGET", "1", "2", req=9) + msg("CONTROL", "check", req=10)
                          + msg("WATCH", "@introduceDomain", "i", req=11) + msg("WATCH", "@releaseDomain", "r", req=12)
                          + msg("WATCH", "/secret", "s", req=13))),
    "dom2-shared": seed((3, write("/shared/open/x", "v") + msg("WATCH", "/shared", "w", req=2)),
                        (2, write("/shared/open/y", "w")), (3, msg("READ", "/shared/open/y", req=3))),
    # Transactions: commit, abort, conflict, nesting, a domain's quota.
    "tx-commit": seed((0, msg("TRANSACTION_START", "")),
                      (0, write("/t/a", "1", req=2, tx=1) + msg("READ", "/t/a", req=3, tx=1)
                          + msg("TRANSACTION_END", "T", req=4, tx=1))),
    "tx-conflict": seed((0, msg("TRANSACTION_START", "")), (0, msg("READ", "/secret/key", req=2, tx=1)),
                        (1, write("/secret/key", "other")),
                        (0, write("/secret/key", "mine", req=3, tx=1) + msg("TRANSACTION_END", "T", req=4, tx=1))),
    "tx-abort-nested": seed((0, msg("TRANSACTION_START", "") + msg("TRANSACTION_START", "", req=2, tx=1)
                                + msg("RM", "/local", req=3, tx=1) + msg("TRANSACTION_END", "F", req=4, tx=1)
                                + msg("TRANSACTION_END", "T", req=5, tx=1))),
    "tx-dom1": seed((2, msg("TRANSACTION_START", "") + msg("TRANSACTION_START", "", req=2)
                        + msg("TRANSACTION_START", "", req=3) + msg("TRANSACTION_START", "", req=4)
                        + write("n", "1", req=5, tx=2) + msg("TRANSACTION_END", "T", req=6, tx=2))),
    # Watches: relative, depth, events from another connection, unwatch, special paths.
    "watches": seed((1, msg("WATCH", "/local/domain", "d", "1") + msg("WATCH", "@releaseDomain", "r", req=2)
                        + msg("WATCH", "@introduceDomain", "i", req=3)),
                    (2, msg("WATCH", "data", "rel")),
                    (0, write("/local/domain/1/data/deep", "x") + msg("INTRODUCE", "5", "0", "0", req=2)
                        + msg("RELEASE", "1", req=3)),
                    (1, msg("UNWATCH", "/local/domain", "d", req=4))),
    "special-perms": seed((0, msg("SET_PERMS", "@releaseDomain", "n0", "r1")),
                          (2, msg("WATCH", "@releaseDomain", "r")), (0, msg("RELEASE", "2", req=2))),
    # Domains: release closes the domain's connections and removes what it owned; reintroduce.
    "release-reintroduce": seed((2, write("owned/a", "1")), (0, msg("RELEASE", "1")),
                                (2, msg("READ", "owned/a")), (0, msg("INTRODUCE", "1", "0", "0", req=2)),
                                (2, msg("READ", "/local/domain/1", req=3))),
    # The codec: a message split into single bytes, pipelined requests, an oversized header, close.
    "split-bytes": seed(*split(0, write("/split", "value") + msg("READ", "/split", req=2), 1)),
    "oversized": seed((1, struct.pack("<IIII", 11, 1, 0, 5000) + b"A" * 64), (0, msg("READ", "/"))),
    "close-midway": seed((0, write("/half", "v")[:10]), (0, b"", ), (1, msg("READ", "/half"))) + chunk(0, b"", close=True),
    "quota-nodes": seed((2, b"".join(write(f"n{i}", "", req=i) for i in range(40)))),
    "big-value": seed((2, write("big", "x" * 3000)), (0, write("/big", "y" * 4000))),
    "long-token-watch": seed((0, msg("WATCH", "/", "t" * 3000)),
                             (0, write("/" + "p" * 1000 + "/" + "q" * 1000, "v", req=2))),
    "many-perms": seed((0, write("/p", "") + msg("SET_PERMS", "/p", *(["n0"] + ["r-1"] * 400), req=2)
                           + msg("GET_PERMS", "/p", req=3))),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
