"""Cost of the thread-record lookup on the relay path (issue 8).

The relay's decision thread asks the event loop for the groups of a mail's In-Reply-To /
References (``asyncio.run_coroutine_threadsafe(store.thread_groups(...)).result()``), as
``Relay._thread_lookup`` does. Measured here over a store holding ``--records`` entries,
for a hit (the thread's mail is known) and a miss, on SQLite and optionally PostgreSQL.

    .venv/bin/python bench/thread_lookup_bench.py [--records 100000] [--lookups 2000]
        [--postgres postgresql://postgres@127.0.0.1:5432/DB]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from leakguard.store import SqlStore, ThreadEntry, open_store, sqlite_url  # noqa: E402


async def fill(store: SqlStore, n: int) -> None:
    batch: list[ThreadEntry] = []
    for i in range(n):
        batch.append(
            ThreadEntry(
                f"<{i}.bench@city.example.lg.jp>",
                (f"u{i % 500}@city.example.lg.jp", f"a{i}@org{i % 97}.example", f"b{i}@x.example"),
            )
        )
        if len(batch) == 2000:
            await store.record_threads(batch)
            batch = []
    if batch:
        await store.record_threads(batch)


def measure(store: SqlStore, loop: asyncio.AbstractEventLoop, n: int, hit: bool) -> list[float]:
    since = datetime.now(UTC) - timedelta(days=180)
    out = []
    for i in range(n):
        ids = (f"{i}.bench@city.example.lg.jp" if hit else f"{i}.none@x", f"r{i}@mail.example")
        t0 = time.perf_counter()
        fut = asyncio.run_coroutine_threadsafe(store.thread_groups(ids, since=since), loop)
        groups = fut.result(5)
        out.append((time.perf_counter() - t0) * 1e6)
        assert bool(groups) == hit
    return out


async def run(url: str, records: int, lookups: int, label: str) -> None:
    store = await open_store(url)
    try:
        await fill(store, records)
        loop = asyncio.get_running_loop()
        for hit in (True, False):
            result: list[list[float]] = []
            t = threading.Thread(
                target=lambda h=hit, r=result: r.append(measure(store, loop, lookups, h))
            )
            t.start()
            while t.is_alive():
                await asyncio.sleep(0.001)
            us = sorted(result[0])
            print(
                f"{label:10} {'hit ' if hit else 'miss'}: median {statistics.median(us):7.0f} µs, "
                f"p95 {us[int(len(us) * 0.95)]:7.0f} µs over {lookups} lookups, {records} records"
            )
    finally:
        await store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100000)
    ap.add_argument("--lookups", type=int, default=2000)
    ap.add_argument("--postgres", help="URL of an empty PostgreSQL database")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(sqlite_url(Path(tmp) / "b.db"), args.records, args.lookups, "sqlite"))
    if args.postgres:
        asyncio.run(run(args.postgres, args.records, args.lookups, "postgresql"))


if __name__ == "__main__":
    main()
