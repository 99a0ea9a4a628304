"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
