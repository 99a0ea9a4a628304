"""Durable state: holds, tokens, delivery queue, sender history and the thread record.

``await open_store(url)`` returns a ``SqlStore`` over SQLite (``sqlite:///path``, the
embedded default) or PostgreSQL (``postgresql://...``), both through SQLAlchemy Core.
Opening a store upgrades its schema in place (Alembic, ``leakguard.store.migrate``) or
refuses, with ``StoreVersionError``, a store written by a newer release.
"""

from __future__ import annotations

from leakguard.store.migrate import StoreVersionError
from leakguard.store.sql import SqlStore, backoff, sha256_hex, sqlite_url
from leakguard.store.threads import ThreadEntry


async def open_store(url: str, *, create: bool = True) -> SqlStore:
    return await SqlStore.open(url, create=create)


__all__ = [
    "SqlStore",
    "StoreVersionError",
    "ThreadEntry",
    "backoff",
    "open_store",
    "sha256_hex",
    "sqlite_url",
]
