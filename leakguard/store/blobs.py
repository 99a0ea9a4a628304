"""Writing a large blob into SQLite without binding it as a parameter (issue 11, "Memory").

An ``INSERT`` with a 25 MB ``bytes`` parameter costs SQLite two copies of the mail: the
driver binds it with ``SQLITE_TRANSIENT`` (a copy that stays bound to the cached statement
until the statement is next used: 25 MB resident after every big mail) and the VDBE builds
the record (a transient copy).

Instead the row is inserted with ``zeroblob(n)`` and the bytes are then written through
SQLite's incremental blob I/O in 1 MiB pieces, in the same transaction: the commit (and its
fsync) covers them exactly as it covered the plain insert, so durability is unchanged.
SQLite keeps a zeroblob unexpanded only when no column stored after it has data, so
``retained_mail.sealed`` (migration 0006) and ``messages.raw`` (0007) are stored last:
that insert costs a page cache, not a record of the mail's size built in memory
(docs/design-notes.md, "Memory"). The writes run in the store's own thread on its
``sqlite3`` connection (``SqlStore._run_tx``). Other databases, an in-memory SQLite and
small blobs keep the plain insert.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa

# below this a plain insert is cheaper than the extra round trips
BLOB_STREAM_MIN = 1 << 20
BLOB_PIECE = 1 << 20


def streams_blobs(conn: sa.Connection, size: int) -> bool:
    """Whether a blob of ``size`` bytes is written in pieces on this connection."""
    return conn.dialect.name == "sqlite" and size >= BLOB_STREAM_MIN


def insert_streaming_blob(
    conn: sa.Connection,
    insert: sa.Insert,
    table: sa.Table,
    column: str,
    data: bytes | bytearray,
) -> bool:
    """Run ``insert`` (which must not set ``column``) with ``column`` = zeroblob, then write
    ``data`` into that row's blob in pieces through the ``sqlite3`` connection underneath,
    inside the caller's transaction (a synchronous connection: ``SqlStore._run_tx``).

    Returns False when the insert added no row (``ON CONFLICT DO NOTHING``: the row exists).
    Other databases and drivers get one plain insert."""
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
