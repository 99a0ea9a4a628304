"""Fixtures for the deployment tests: empty PostgreSQL databases, the legacy fixtures."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

PG_ADMIN_DSN = os.environ.get("LEAKGUARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """The URL of a new empty PostgreSQL database, dropped afterwards."""
    asyncpg = pytest.importorskip("asyncpg")
    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:  # pragma: no cover - environment
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    name = f"lg_deploy_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
