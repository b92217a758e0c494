#!/usr/bin/env python3
"""What one `write` + `fdatasync` of a write-ahead log record costs on this
disk, appending to a new file against writing over blocks the file
already has (docs/BENCHMARKS.md, "A write-ahead log and an overlay in
front of redb"). Each mode writes N records of SIZE bytes to a file in
DIR (default /tmp), one sync each, and prints syncs per second, wall
time per sync and CPU time (user + system) per sync. Modes alternate so
that a noisy machine shows in the spread.

    scripts/fsync-bench.py [DIR] [N] [SIZE]
"""

import os
import sys
import time


def run(path, mode, n, size):
    if os.path.exists(path):
        os.remove(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if mode == "overwrite":
            os.write(fd, b"\0" * (size * n))
            os.fsync(fd)
            os.lseek(fd, 0, os.SEEK_SET)
        record = b"x" * size
        t0, c0 = time.monotonic(), os.times()
        for _ in range(n):
            os.write(fd, record)
            os.fdatasync(fd)
        t1, c1 = time.monotonic(), os.times()
    finally:
        os.close(fd)
        os.remove(path)
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    print(f"{mode:9s} {n / (t1 - t0):7.0f} syncs/s  wall/sync {1e6 * (t1 - t0) / n:6.1f} us"
          f"  cpu/sync {1e6 * cpu / n:5.1f} us")


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    path = os.path.join(directory, f"fsync-bench-{os.getpid()}.dat")
    for mode in ["append", "overwrite"] * 3:
        run(path, mode, n, size)


if __name__ == "__main__":
    main()
