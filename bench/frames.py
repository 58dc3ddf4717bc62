#!/usr/bin/env python3
"""WAL frames per commit for the embedded store's intake pattern, counted, not timed.

The store's real schema (the SCHEMA block of src/store/sqlite.rs) with the statements an intake
group and the relay's results run: per group the day's sequence, then an order row and an
outbox row per order; the outbox rows delivered 200 orders earlier are marked as the relay
would. A store already holding 100,000 orders takes 60,000 more in groups of K, from callers
numbered in order or scattered (as bench/web.lua and examples/loadgen send them), and the WAL
frames (one 4 KiB page each) are summed over checkpoints. Variants edit the schema text:
  wr      orders WITHOUT ROWID (one B-tree instead of the table and its primary-key index)
  noauto  no AUTOINCREMENT (no sqlite_sequence row to rewrite per commit)
  nokey   outbox.key without UNIQUE (its index gone)
Usage: bench/frames.py [variant[-variant...],...]   e.g. bench/frames.py current,wr-noauto
BY_TREE=1 also prints, per run, the frames per order of each table and index (the WAL's page
numbers, mapped to their B-trees through the dbstat table at each checkpoint).
Python's sqlite3 module links the system SQLite, not the bundled one; the page layout is the
same file format, so the counts carry over.
"""
import collections
import json
import os
import re
import sqlite3
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = open(os.path.join(HERE, "..", "src", "store", "sqlite.rs"), encoding="utf-8").read()
SCHEMA = re.search(r'const SCHEMA: &str = r#"(.*?)"#;', SOURCE, re.S).group(1)
CONTENT = "定速第1000123号：道路井盖缺失，存在安全隐患"
# An order body as dispatch-sim receives one from the web form (~550 bytes).
BODY = json.dumps({
    "account": "", "attachments": [], "category": "help", "channel": "web", "channel_ref": "",
    "confidential": False, "content": CONTENT,
    "emergency_review": None, "handling_hint": None, "idempotency_key": "2026120701000001",
    "item": {"count": 1, "index": 1}, "location": {"address": "", "lat": None, "lon": None},
    "number": "2026120701000001", "received_at": "2026-12-07T03:59:26+08:00",
    "submission_id": "9b6b6ba52ffe465d9382e4133484e8ab",
    "submitter": {"email": "", "identity": "phone:13712345678", "name": "", "phone": "13712345678"},
}, ensure_ascii=False)


def edit(s, old, new, count=-1):
    if old not in s:
        sys.exit(f"the schema in src/store/sqlite.rs no longer holds {old!r}: update bench/frames.py")
    return s.replace(old, new, count)


def schema(variant):
    s = SCHEMA
    if "wr" in variant:
        s = edit(s, "    created_at  INTEGER NOT NULL\n);", "    created_at  INTEGER NOT NULL\n) WITHOUT ROWID;", 1)
    if "noauto" in variant:
        s = edit(s, " AUTOINCREMENT", "")
    if "nokey" in variant:
        s = edit(s, "key          TEXT NOT NULL UNIQUE", "key          TEXT NOT NULL")
    return s


BY_TREE = os.environ.get("BY_TREE") == "1"
TREES = collections.Counter()  # frames by the table or index their page belongs to


def count_trees(c, frames):
    """Adds the WAL's first `frames` frames to TREES by the B-tree of their page."""
    owner = dict((page, name) for name, page in c.execute("SELECT name, pageno FROM dbstat"))
    with open(c.execute("PRAGMA database_list").fetchone()[2] + "-wal", "rb") as f:
        wal = f.read(32 + frames * (24 + 4096))
    for i in range(frames):
        off = 32 + i * (24 + 4096)  # the WAL header, then per frame a 24-byte header and a page
        TREES[owner.get(struct.unpack(">I", wal[off:off + 4])[0], "(new or free)")] += 1


def checkpoint(c):
    """Frames in the WAL (a PASSIVE checkpoint reports them), then starts it over."""
    frames = c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    if BY_TREE:
        count_trees(c, frames)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return frames


ORDERS = 60_000  # measured, after a store of 100,000


def run(variant, k, scattered, path, orders=ORDERS, before=100_000):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA wal_autocheckpoint=0")
    c.execute("PRAGMA synchronous=OFF")  # frames are the same; fsyncs would only make it slow
    c.executescript(schema(variant))
    state = {"t": 0, "pending": []}

    def identity(i):
        digits = (i * 73_939_133) % 100_000_000 if scattered else i
        return f"phone:137{digits:08d}"

    def group(ids, relay):
        c.execute("BEGIN")
        nxt = c.execute(
            "INSERT INTO order_seq(day, next) VALUES ('20261206', ?1) "
            "ON CONFLICT(day) DO UPDATE SET next = next + ?1 RETURNING next", (len(ids),)).fetchone()[0]
        for n, who in enumerate(ids):
            number = f"2026120601{nxt - len(ids) + 1 + n:06d}"
            c.execute("INSERT INTO orders(number, identity, category, content, created_at) "
                      "VALUES (?1, ?2, 'help', ?3, ?4)", (number, who, CONTENT, state["t"]))
            c.execute("INSERT INTO outbox(kind, key, path, body, next_at_ms, created_at) "
                      "VALUES ('order', ?1, '/work-orders', ?2, 0, ?3)", (number, BODY, state["t"]))
            state["pending"].append(c.execute("SELECT last_insert_rowid()").fetchone()[0])
        while relay and len(state["pending"]) > 200:
            for rowid in state["pending"][:16]:
                c.execute("UPDATE outbox SET state = 1, attempts = attempts + 1, delivered_at = ?2, "
                          "last_error = '' WHERE id = ?1 AND state = 0", (rowid, state["t"]))
            del state["pending"][:16]
        c.execute("COMMIT")
        state["t"] += 1

    i = 0
    while i < before:
        group([identity(j) for j in range(i, i + 500)], False)
        i += 500
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    frames = commits = 0
    while i < before + orders:
        group([identity(j) for j in range(i, i + k)], True)
        i += k
        commits += 1
        if commits % 200 == 0:  # the gateway checkpoints every 500 ms
            frames += checkpoint(c)
    frames += checkpoint(c)
    c.close()
    return frames / commits, frames / orders


def main():
    variants = (sys.argv[1] if len(sys.argv) > 1 else "current").split(",")
    with tempfile.TemporaryDirectory() as tmp:
        for v in variants:
            for k in (1, 4, 20):
                for scattered in (False, True):
                    TREES.clear()
                    per_commit, per_order = run(v, k, scattered, os.path.join(tmp, "frames.db"))
                    print(f"{v:16} {k:2} per group, callers {'scattered ' if scattered else 'in order  '}: "
                          f"{per_commit:5.1f} frames per commit, {per_order:4.2f} per order", flush=True)
                    if BY_TREE:
                        print("    per order: " + ", ".join(
                            f"{name} {frames / ORDERS:.2f}" for name, frames in TREES.most_common()), flush=True)


if __name__ == "__main__":
    main()
