"""SQLite shared by several worker processes (``serve --workers N``): concurrent writers
from different processes wait for each other (WAL, ``BEGIN IMMEDIATE``, busy timeout)
instead of failing with "database is locked"."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import UTC, datetime, timedelta
    from leakguard.holds.model import HoldRecord, HoldState, Via
    from leakguard.store import open_store, sqlite_url
    from leakguard.store.sql import sha256_hex

    async def main(db: str, me: str, n: int) -> None:
        store = await open_store(sqlite_url(db))
        errors = 0

        async def one(i: int) -> None:
            nonlocal errors
            raw = f"Subject: {me}-{i}\\r\\n\\r\\nbody\\r\\n".encode()
            now = datetime.now(UTC)
            hold = HoldRecord(
                id=f"H-{me}-{i}", state=HoldState.HELD, created_at=now,
                expires_at=now + timedelta(hours=1), due_at=None, escalate_at=None,
                message_sha256=sha256_hex(raw), mail_from="a@city.example.lg.jp",
                rcpts=("b@partner.example",), auth_user=None, subject="s", action="hold",
                rules=("r",), verdict_json="{}", approvers=(), offer_bcc=False,
                language="ja", escalated=False,
            )
            try:
                await store.create_hold(hold, raw)
                # read, then write, in one transaction: the case a deferred BEGIN loses
                await store.transition(
                    hold.id, from_states=[HoldState.HELD], to_state=HoldState.RELEASED,
                    actor="t", via=Via.WEB, deliver=(raw, "a@city.example.lg.jp", ["b@x.example"]),
                )
                await store.enqueue_delivery(raw, "a@city.example.lg.jp", ["c@x.example"])
            except Exception as exc:
                errors += 1
                print("ERROR", repr(exc)[:300], file=sys.stderr)

        for start in range(0, n, 8):
            await asyncio.gather(*(one(i) for i in range(start, min(n, start + 8))))
        await store.close()
        print("errors", errors)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


def test_writers_in_several_processes_never_see_database_locked(tmp_path: Path) -> None:
    db = tmp_path / "lg.db"
    init = subprocess.run(
        [sys.executable, "-c", _WRITER, str(db), "init", "1"], capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr  # the schema exists before the race starts
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(db), f"w{i}", "120"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "errors 0" in out, err[-2000:]
        assert "locked" not in err, err[-2000:]

    import asyncio

    from leakguard.store import open_store, sqlite_url

    async def count() -> int:
        store = await open_store(sqlite_url(db))
        try:
            return len(await store.list_deliveries())
        finally:
            await store.close()

    assert asyncio.run(count()) == 1 * 2 + 3 * 120 * 2  # every write of every process landed


_SAME_BYTES = textwrap.dedent(
    """
    import asyncio, sys
    from leakguard.store import open_store, sqlite_url

    async def main(db: str, n: int) -> None:
        store = await open_store(sqlite_url(db))
        errors = 0
        for i in range(n):  # the same bytes as the other processes, at the same moment
            raw = f"Subject: same {i}\\r\\n\\r\\nbody\\r\\n".encode()
            try:
                await store.enqueue_delivery(raw, "a@x.example", ["b@x.example"])
            except Exception as exc:
                errors += 1
                print("ERROR", repr(exc)[:300], file=sys.stderr)
        await store.close()
        print("errors", errors)

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def test_processes_storing_the_same_bytes_at_once_do_not_collide(tmp_path: Path) -> None:
    """Two workers may store identical bytes (a retry on a sibling, the same notice): the
    look-then-insert of the message row must not fail with a UNIQUE violation."""
    db = tmp_path / "lg.db"
    init = subprocess.run(
        [sys.executable, "-c", _SAME_BYTES, str(db), "0"], capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SAME_BYTES, str(db), "300"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0 and "errors 0" in out, err[-2000:]
