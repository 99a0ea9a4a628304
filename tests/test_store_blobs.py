"""Large blobs (a held mail, a sealed retained mail) reach the store without SQLite binding
them as a parameter (issue 11, "Memory"; leakguard/store/blobs.py), and read back intact."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from test_journal import entry
from test_store import _hold, store  # noqa: F401  (the sqlite + postgres fixture)

from leakguard.store import SqlStore, sha256_hex
from leakguard.store.blobs import BLOB_PIECE, BLOB_STREAM_MIN
from leakguard.store.journal import Retained

BIG = BLOB_STREAM_MIN * 3 + 12345  # several pieces and a partial last one


def big_mail() -> bytes:
    return b"Subject: big\r\n\r\n" + os.urandom(BIG)


class BoundBlobs:
    """The sizes of the bytes parameters SQLAlchemy hands the driver."""

    def __init__(self, target: SqlStore) -> None:
        self.sizes: list[int] = []
        event.listen(target._engine.sync_engine, "before_cursor_execute", self._seen)
        if target._sync_engine is not None:  # SQLite's busiest writes: the store's own thread
            event.listen(target._sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cur: Any, _sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        rows = params if isinstance(params, list) else [params]
        for row in rows:
            values = row.values() if isinstance(row, dict) else row
            self.sizes += [len(v) for v in values if isinstance(v, bytes | bytearray | memoryview)]

    @property
    def largest(self) -> int:
        return max(self.sizes, default=0)


async def test_a_large_message_is_stored_and_read_back(store: SqlStore) -> None:  # noqa: F811
    assert BIG > BLOB_PIECE
    raw = big_mail()
    bound = BoundBlobs(store)
    digest = await store.put_message(raw)
    assert digest == sha256_hex(raw)
    assert await store.put_message(raw) == digest  # stored once: the second is a no-op
    assert await store.get_message(digest) == raw
    if store.dialect == "sqlite":  # written through blob I/O, never bound as a parameter
        assert bound.largest < BLOB_STREAM_MIN
    else:
        assert bound.largest == len(raw)


async def test_a_hold_with_a_large_message(store: SqlStore) -> None:  # noqa: F811
    raw = big_mail()
    bound = BoundBlobs(store)
    stored = await store.create_hold(_hold(raw=raw), raw)
    assert await store.get_message(stored.message_sha256) == raw
    if store.dialect == "sqlite":
        assert bound.largest < BLOB_STREAM_MIN


async def test_small_messages_keep_the_plain_insert(store: SqlStore) -> None:  # noqa: F811
    raw = b"Subject: small\r\n\r\n" + b"x" * 1000
    bound = BoundBlobs(store)
    digest = await store.put_message(raw)
    assert await store.get_message(digest) == raw
    assert bound.largest == len(raw)


async def test_journal_batch_with_large_and_small_sealed_mail(store: SqlStore) -> None:  # noqa: F811
    j = store.journal
    expires = datetime.now(UTC) + timedelta(days=30)
    large = bytearray(b"LG1" + os.urandom(BIG))  # Sealer.seal returns a bytearray

    def kept(sealed: bytes | bytearray | None) -> Retained:
        mode = "encrypted" if sealed is not None else "hashed"
        return Retained(mode=mode, sha256="1" * 64, size=10, expires_at=expires, sealed=sealed)

    bound = BoundBlobs(store)
    await j.record(
        [
            (entry(1), kept(b"LG1small")),
            (entry(2), kept(large)),
            (entry(3), None),
            (entry(4), kept(None)),
            (entry(5), kept(bytes(large[:-1]))),
        ]
    )
    got = await j.retained_many([entry(i).id for i in range(1, 6)])
    assert sorted(got) == [entry(i).id for i in (1, 2, 4, 5)]
    assert bytes(got[entry(1).id].sealed or b"") == b"LG1small"
    assert bytes(got[entry(2).id].sealed or b"") == bytes(large)
    assert got[entry(4).id].sealed is None and got[entry(4).id].mode == "hashed"
    assert bytes(got[entry(5).id].sealed or b"") == bytes(large[:-1])
    assert got[entry(2).id].size == 10 and got[entry(2).id].expires_at == expires
    if store.dialect == "sqlite":
        assert bound.largest < BLOB_STREAM_MIN
    else:
        assert bound.largest >= len(large) - 1


@pytest.mark.parametrize("size", [BLOB_STREAM_MIN - 1, BLOB_STREAM_MIN, BLOB_PIECE * 2])
async def test_sizes_around_the_threshold(store: SqlStore, size: int) -> None:  # noqa: F811
    raw = os.urandom(size)
    digest = await store.put_message(raw)
    assert await store.get_message(digest) == raw
