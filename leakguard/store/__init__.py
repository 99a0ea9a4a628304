"""Durable state: holds, tokens, delivery queue, sender history and the thread record.

``await open_store(url)`` returns a ``SqlStore`` over SQLite (``sqlite:///path``, the
embedded default) or PostgreSQL (``postgresql://...``), both through SQLAlchemy Core.
"""

from __future__ import annotations

from leakguard.store.sql import SqlStore, backoff, sha256_hex, sqlite_url
from leakguard.store.threads import ThreadEntry


async def open_store(url: str, *, create: bool = True) -> SqlStore:
    return await SqlStore.open(url, create=create)


__all__ = ["SqlStore", "ThreadEntry", "backoff", "open_store", "sha256_hex", "sqlite_url"]
