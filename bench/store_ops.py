"""CPU per store operation on SQLite through the async layer (SQLAlchemy + aiosqlite):
the delivery queue's operations a notice costs, and an empty transaction.

    .venv/bin/python bench/store_ops.py [--n 300]

CPU is ``time.process_time`` of the whole process (the driver's thread included), per call.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from leakguard.holds.model import DeliveryState
from leakguard.store import open_store, sqlite_url

RAW = b"From: a@b\r\nTo: c@d\r\nSubject: x\r\n\r\n" + b"x" * 3000


async def main(n: int) -> None:
    store = await open_store(sqlite_url(Path(tempfile.mkdtemp()) / "s.db"))
    now = datetime.now(UTC)

    async def enqueue_claimed(i: int) -> None:
        await store.enqueue_claimed(RAW + b"c%d" % i, "a@b", ["c@d"], kind="notice", worker="w")

    async def finish(i: int) -> None:
        await store.finish_delivery(i + 1, state=DeliveryState.DONE, worker="w")

    async def enqueue(i: int) -> None:
        await store.enqueue_delivery(RAW + b"q%d" % i, "a@b", ["c@d"], kind="notice")

    async def claim(_i: int) -> None:
        await store.claim_deliveries("w2", now, 1)

    async def read_back(_i: int) -> None:
        await store.get_message(hashlib.sha256(RAW + b"c0").hexdigest())

    async def empty_tx(_i: int) -> None:
        async with store._tx():
            pass

    ops = [enqueue_claimed, finish, enqueue, claim, read_back, empty_tx]
    try:
        for op in ops:
            await op(10**6)  # warm: statement caches, pages
            c0 = time.process_time()
            for i in range(n):
                await op(i)
            print(f"{op.__name__:16s} {1000 * (time.process_time() - c0) / n:.2f} ms CPU a call")
    finally:
        await store.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    asyncio.run(main(ap.parse_args().n))
