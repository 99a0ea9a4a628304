"""Shared test fixtures."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from leakguard.store import SqlStore, open_store, sqlite_url

ROOT = Path(__file__).resolve().parents[1]


def _find_corpora() -> Path | None:
    env = os.environ.get("LEAKGUARD_CORPORA")
    candidates = [Path(env)] if env else []
    candidates += [ROOT.parent / "shared" / "corpora", Path("/work/shared/corpora")]
    for c in candidates:
        if c.is_dir():
            return c
    return None


CORPORA = _find_corpora()


@pytest.fixture
def corpora_dir() -> Path:
    """The shared evaluation corpora; tests using it skip when absent."""
    if CORPORA is None:
        pytest.skip("corpora not present (set LEAKGUARD_CORPORA)")
    return CORPORA


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    """A fresh SQLite store in the test's temporary directory (tests may override it)."""
    s = await open_store(sqlite_url(tmp_path / "q.db"))
    yield s
    await s.close()
