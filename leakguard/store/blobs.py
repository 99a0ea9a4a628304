"""Writing a large blob into SQLite without binding it as a parameter (issue 11, "Memory").

An ``INSERT`` with a 25 MB ``bytes`` parameter costs SQLite two copies of the mail: the
driver binds it with ``SQLITE_TRANSIENT`` (a copy that stays bound to the cached statement
until the statement is next used: 25 MB resident after every big mail) and the VDBE builds
the record (a transient copy).

Instead the row is inserted with ``zeroblob(n)`` and the bytes are then written through
SQLite's incremental blob I/O in 1 MiB pieces, in the same transaction: the commit (and its
fsync) covers them exactly as it covered the plain insert, so durability is unchanged.
SQLite keeps a zeroblob unexpanded only when no column stored after it has data, so
``retained_mail.sealed`` is stored last (migration 0006): that insert costs a page cache,
not a record of the mail's size built in memory (docs/design-notes.md, "Memory").
``messages.raw`` (held mail) is not last: the table cannot be rebuilt inside a migration's
transaction while ``holds`` refers to it, so its record is still built once. Other
databases, small blobs, and a driver without the hooks used here keep the plain insert.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

# below this a plain insert is cheaper than the extra round trips
BLOB_STREAM_MIN = 1 << 20
BLOB_PIECE = 1 << 20


def streams_blobs(conn: AsyncConnection, size: int) -> bool:
    """Whether a blob of ``size`` bytes is written in pieces on this connection."""
    return conn.dialect.name == "sqlite" and size >= BLOB_STREAM_MIN


async def _driver(conn: AsyncConnection) -> Any | None:
    """The aiosqlite connection under SQLAlchemy's adapter (None: not one we know)."""
    fairy = await conn.get_raw_connection()
    driver = fairy.driver_connection
    if driver is None or not hasattr(driver, "_execute") or not hasattr(driver, "_conn"):
        return None
    return driver


async def insert_streaming_blob(
    conn: AsyncConnection,
    insert: sa.Insert,
    table: sa.Table,
    column: str,
    data: bytes | bytearray,
) -> bool:
    """Run ``insert`` (which must not set ``column``) with ``column`` = zeroblob, then write
    ``data`` into that row's blob in pieces.

    Returns False when the insert added no row (``ON CONFLICT DO NOTHING``: the row exists).
    Falls back to one plain insert when the driver is not aiosqlite."""
    driver = await _driver(conn)
    if driver is None:
        result = await conn.execute(insert.values({column: data}))
        return bool(result.rowcount)
    result = await conn.execute(insert.values({column: sa.func.zeroblob(len(data))}))
    if not result.rowcount:
        return False
    rowid = result.lastrowid  # SQLite's rowid of the row just inserted

    def fill(db: sqlite3.Connection) -> None:  # in aiosqlite's thread, inside the transaction
        view = memoryview(data)
        with db.blobopen(table.name, column, rowid) as blob:
            for start in range(0, len(view), BLOB_PIECE):
                blob.write(view[start : start + BLOB_PIECE])

    await driver._execute(fill, driver._conn)
    return True


def insert_streaming_blob_sync(
    conn: sa.Connection,
    insert: sa.Insert,
    table: sa.Table,
    column: str,
    data: bytes | bytearray,
) -> bool:
    """``insert_streaming_blob`` for a synchronous connection (the store's own thread, see
    ``SqlStore._run_tx``): the blob written in pieces through the ``sqlite3`` connection
    underneath, else one plain insert."""
    driver = conn.connection.driver_connection
    if conn.dialect.name != "sqlite" or not isinstance(driver, sqlite3.Connection):
        return bool(conn.execute(insert.values({column: data})).rowcount)
    result = conn.execute(insert.values({column: sa.func.zeroblob(len(data))}))
    if not result.rowcount:
        return False
    view = memoryview(data)
    with driver.blobopen(table.name, column, result.lastrowid) as blob:
        for start in range(0, len(view), BLOB_PIECE):
            blob.write(view[start : start + BLOB_PIECE])
    return True
