#!/usr/bin/env python3
"""Shares of a hub profile by owner: which part of the hub each sample
was working for (docs/BENCHMARKS.md, "Where an order's CPU goes").

Reads `perf script` output of a DWARF profile on stdin:

    perf record -F 299 --call-graph dwarf,16384 -p HUB -o perf.data -- sleep 5
    perf script -i perf.data | scripts/perf-owners.py

A sample belongs to the deepest frame of its stack that matches an owner
below (so a store read inside the order handler is a store read, and the
handler's own serde work is the handler's); a sample that matches none is
"unattributed" (the kernel's own work, allocator frames with no caller
kept, and the like). Prints each thread name's and owner's share of all
samples, largest first.
"""

import collections
import re
import sys

OWNERS = [
    ("store commit: write-ahead log append and sync", r"store::embedded::wal::Wal::append"),
    ("store checkpoint (redb commit and sync)", r"store::embedded::checkpoint::write"),
    ("store commit: redb commit and sync", r"redb::transactions::WriteTransaction::commit"),
    ("store commit: applying batches", r"store::embedded::group::apply_batch"),
    ("store commit: the rest", r"store::embedded::group::run"),
    ("store reads", r"EmbeddedStore::(read|blocking)"),
    ("HTTP connection (hyper)", r"hub::listener::connection::serve"),
    ("HTTP middleware", r"api::http::(ratelimit|access|request_id)::middleware"),
    ("POST /orders", r"api::trading::place::place"),
    ("DELETE /orders", r"api::trading::orders::cancel"),
    ("other handlers", r"axum::handler"),
    ("auth", r"api::auth::"),
    ("sandbox venue", r"feeds::sandbox"),
    ("order sync", r"api::trading::sync::"),
    ("outbox relay", r"api::events::relay"),
    ("queue consumers", r"api::queue::run"),
    ("event log reads", r"api::queue::log::"),
    ("audit archive", r"worker::audit"),
    ("market archive", r"api::market_archive"),
    ("fan-out", r"hub::(fanout|session|pairs|ingest)"),
    ("idle and waking", r"(park|Parker|Condvar|futex_wait)"),
    ("tokio scheduler", r"tokio::runtime"),
]
PATTERNS = [(name, re.compile(pattern)) for name, pattern in OWNERS]


def owner(stack):
    """The owner of the deepest matching frame (`stack` is leaf first)."""
    for frame in stack:
        for name, pattern in PATTERNS:
            if pattern.search(frame):
                return name
    return "unattributed"


def samples(lines):
    """(thread name, frames leaf first) per sample of `perf script`."""
    thread, stack = None, []
    for line in lines:
        if not line.strip():
            if thread is not None:
                yield thread, stack
            thread, stack = None, []
        elif not line[0].isspace():
            thread = line.split()[0]
        else:
            parts = line.split(None, 1)
            if len(parts) == 2:
                stack.append(parts[1])
    if thread is not None:
        yield thread, stack


def main():
    threads, owners = collections.Counter(), collections.Counter()
    for thread, stack in samples(sys.stdin):
        threads[thread] += 1
        owners[owner(stack)] += 1
    total = sum(threads.values())
    if total == 0:
        sys.exit("no samples on stdin (perf script of a profile with call graphs)")
    print(f"{total} samples")
    for title, counts in (("thread", threads), ("owner", owners)):
        print(f"\nby {title}:")
        for name, n in counts.most_common():
            print(f"{100 * n / total:6.1f} %  {name}")


if __name__ == "__main__":
    main()
