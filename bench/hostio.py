#!/usr/bin/env python3
"""What the VM's host charges for I/O, measured without the gateway (BENCHMARKS.md, twelfth session).

  bench/hostio.py steal SIZE RATE   write+fsync loops of SIZE bytes at RATE a second for 8 s while
                                    two shell loops keep both cores busy; prints the host's steal
  bench/hostio.py stall MODE PAGES  a WAL-like loop (16 KiB write + fsync, ~3,000/s) beside a
                                    checkpoint-like thread that every 500 ms writes PAGES random
                                    4 KiB pages of a 200 MB file and syncs it, for 10 s; prints the
                                    commit latencies. MODE: fsync, trickle (sync_file_range in
                                    1 MiB steps first), none (no checkpoint thread)
Files go to a temporary directory under DIR (default /var/tmp: the same disk as the store).
"""
import ctypes
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TMP = tempfile.mkdtemp(dir=os.environ.get("DIR", "/var/tmp"))


def filled(name, size):
    fd = os.open(os.path.join(TMP, name), os.O_RDWR | os.O_CREAT)
    block = os.urandom(1 << 20)
    for i in range(size >> 20):
        os.pwrite(fd, block, i << 20)
    os.fsync(fd)
    return fd


def steal_ms():
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) * 1000 // os.sysconf("SC_CLK_TCK")


def steal(size, rate, secs=8.0):
    fd = filled("wal", 256 << 20)
    burners = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(2)]
    try:
        time.sleep(0.5)
        buf, off, n = os.urandom(size), 0, 0
        s0, t0 = steal_ms(), time.perf_counter()
        due = t0
        while time.perf_counter() - t0 < secs:
            os.pwrite(fd, buf, off)
            os.fsync(fd)
            n += 1
            off = (off + size) % ((256 << 20) - size)
            due += 1 / rate
            if due > time.perf_counter():
                time.sleep(due - time.perf_counter())
        s1, el = steal_ms(), time.perf_counter() - t0
    finally:
        for p in burners:
            p.kill()
    print(f"{size >> 10} KiB + fsync: {n / el:.0f} a second, {n * size / el / 1e6:.1f} MB/s, "
          f"host steal {(s1 - s0) * 10 / el:.0f} ms per 10 s (both cores busy)")


def stall(mode, pages, secs=10.0):
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    dbsize, walsize = 200 << 20, 64 << 20
    db, wal = filled("db", dbsize), filled("wal", walsize)
    stop, lat, ck = [False], [], []

    def writer():
        off, buf = 0, os.urandom(16384)
        while not stop[0]:
            t = time.perf_counter()
            os.pwrite(wal, buf, off)
            os.fsync(wal)
            lat.append(time.perf_counter() - t)
            off = (off + 16384) % walsize
            time.sleep(0.0003)

    def checkpointer():
        page = os.urandom(4096)
        while not stop[0]:
            time.sleep(0.5)
            if mode == "none":
                continue
            t = time.perf_counter()
            for p in sorted(random.randrange(dbsize >> 12) for _ in range(pages)):
                os.pwrite(db, page, p << 12)
            if mode == "trickle":
                for s in range(0, dbsize, 1 << 20):
                    libc.sync_file_range(db, s, 1 << 20, 1 | 2 | 4)  # wait, write, wait
            os.fsync(db)
            ck.append(time.perf_counter() - t)

    threads = [threading.Thread(target=writer), threading.Thread(target=checkpointer)]
    for t in threads:
        t.start()
    time.sleep(secs)
    stop[0] = True
    for t in threads:
        t.join()
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3
    print(f"{mode}, {pages} random pages every 500 ms: {len(lat)} commits, p50 {q(.5):.2f} "
          f"p99 {q(.99):.2f} p99.9 {q(.999):.2f} max {lat[-1] * 1e3:.1f} ms, "
          f"{sum(x > 0.005 for x in lat)} over 5 ms; checkpoint {sum(ck) / max(1, len(ck)) * 1e3:.1f} ms")


if __name__ == "__main__":
    try:
        if len(sys.argv) == 4 and sys.argv[1] == "steal":
            steal(int(sys.argv[2]), float(sys.argv[3]))
        elif len(sys.argv) == 4 and sys.argv[1] == "stall" and sys.argv[2] in ("fsync", "trickle", "none"):
            stall(sys.argv[2], int(sys.argv[3]))
        else:
            sys.exit(__doc__)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
