"""Schema migrations: fresh stores, stores written by the previous release, refusals."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from leakguard.holds.model import HoldState
from leakguard.store import SqlStore, StoreVersionError, migrate, open_store, sqlite_url
from leakguard.store.schema import metadata

FIXTURES = Path(__file__).parent / "fixtures"
LEGACY_SQLITE = FIXTURES / "store-df55b47.sqlite"
LEGACY_PG = FIXTURES / "store-df55b47.pg.sql"


def _url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


async def _diff(url: str) -> list[object]:
    """What Alembic's autogenerate sees between the database and ``schema.py``."""
    engine = create_async_engine(_url(url))

    def cmp(conn: sa.Connection) -> list[object]:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "version_table": migrate.VERSION_TABLE,
                "compare_type": True,
                "target_metadata": metadata,
            },
        )
        return list(compare_metadata(ctx, metadata))

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(cmp)
    finally:
        await engine.dispose()


async def _revision(url: str) -> str | None:
    engine = create_async_engine(_url(url))
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(migrate.current_revision)
    finally:
        await engine.dispose()


async def _exec(url: str, *sql: str) -> None:
    engine = create_async_engine(_url(url))
    try:
        async with engine.begin() as conn:
            for s in sql:
                await conn.execute(sa.text(s))
    finally:
        await engine.dispose()


def _restore_pg_dump(url: str) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql not installed: cannot load the PostgreSQL fixture")
    subprocess.run(
        [psql, "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(LEGACY_PG)],
        check=True,
        capture_output=True,
        timeout=60,
    )


async def _assert_legacy_content(store: SqlStore) -> None:
    held = await store.get_hold("H-LEGACY01")
    assert held is not None
    assert held.state is HoldState.HELD
    assert held.subject == "見積書"
    assert held.rcpts == ("bob@partner.example.co.jp",)
    assert held.created_at == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    raw = await store.get_message(held.message_sha256)
    assert "お見積書をお送りします".encode() in raw
    released = await store.get_hold("H-LEGACY02")
    assert released is not None and released.state is HoldState.RELEASED
    steps = [(tr.from_state, tr.to_state) for tr in await store.timeline("H-LEGACY02")]
    assert steps[-1] == (HoldState.HELD, HoldState.RELEASED)
    token = await store.peek_token("a" * 64, datetime(2026, 11, 21, tzinfo=UTC))
    assert token is not None and token.hold_id == "H-LEGACY01"
    # the queued mail and the released mail's delivery are both still waiting
    assert await store.queue_depth() == 2
    history = await store.sender_history("yamada@city.example.lg.jp")
    assert history, "sender history lost in the upgrade"
    assert [h.state for h in await store.list_holds(states=[HoldState.HELD])] == [HoldState.HELD]


# ---------------------------------------------------------------------- fresh stores


async def test_fresh_sqlite_store_is_at_head_and_matches_schema(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "new.db")
    store = await open_store(url)
    await store.close()
    assert await _revision(url) == migrate.head()
    assert await _diff(url) == []
    # the number that releases before migrations check
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        value = (await conn.execute(sa.text("SELECT value FROM leakguard_meta"))).scalar_one()
    await engine.dispose()
    assert value == "1"


@pytest.mark.postgres
async def test_fresh_postgres_store_is_at_head_and_matches_schema(pg_url: str) -> None:
    store = await open_store(pg_url)
    await store.close()
    assert await _revision(pg_url) == migrate.head()
    assert await _diff(pg_url) == []


async def test_reopening_changes_nothing(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "again.db")
    store = await open_store(url)
    again = await store.upgrade_schema()
    await store.close()
    assert not again.changed and not again.legacy
    assert again.after == migrate.head()


# ---------------------------------------------------------------------- previous release


async def test_upgrades_sqlite_store_of_previous_release(tmp_path: Path) -> None:
    db = tmp_path / "leakguard.db"
    shutil.copyfile(LEGACY_SQLITE, db)
    url = sqlite_url(db)
    assert await _revision(url) is None  # written before migrations existed
    store = await open_store(url)
    try:
        await _assert_legacy_content(store)
    finally:
        await store.close()
    assert await _revision(url) == migrate.head()
    assert await _diff(url) == []
    # and a second start finds nothing to do, data still there
    store = await open_store(url)
    try:
        assert not (await store.upgrade_schema()).changed
        await _assert_legacy_content(store)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_upgrades_postgres_store_of_previous_release(pg_url: str) -> None:
    _restore_pg_dump(pg_url)
    assert await _revision(pg_url) is None
    store = await open_store(pg_url)
    try:
        await _assert_legacy_content(store)
        # new rows still get ids after the restored ones (sequences survived)
        did = await store.enqueue_delivery(
            b"Subject: n\r\n\r\nx\r\n", "a@x.example", ["b@y.example"]
        )
        assert did > 2
    finally:
        await store.close()
    assert await _revision(pg_url) == migrate.head()
    assert await _diff(pg_url) == []


@pytest.mark.postgres
async def test_two_relays_upgrading_one_postgres_store_at_once(pg_url: str) -> None:
    import asyncio

    _restore_pg_dump(pg_url)
    a, b = await asyncio.gather(open_store(pg_url), open_store(pg_url))
    try:
        await _assert_legacy_content(a)
        await _assert_legacy_content(b)
    finally:
        await a.close()
        await b.close()
    assert await _revision(pg_url) == migrate.head()


# ---------------------------------------------------------------------- refusals


async def test_store_of_a_newer_release_is_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "future.db")
    store = await open_store(url)
    await store.close()
    await _exec(url, f"UPDATE {migrate.VERSION_TABLE} SET version_num = '9999_future'")
    with pytest.raises(StoreVersionError, match="9999_future"):
        await open_store(url)
    # nothing was changed by the refusal
    assert await _revision(url) == "9999_future"


async def test_refusal_speaks_japanese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sqlite_url(tmp_path / "future.db")
    await (await open_store(url)).close()
    await _exec(url, f"UPDATE {migrate.VERSION_TABLE} SET version_num = '9999_future'")
    monkeypatch.setenv("LEAKGUARD_LANG", "ja")
    with pytest.raises(StoreVersionError, match="より新しい leakguard"):
        await open_store(url)


async def test_legacy_store_with_unknown_schema_number_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "odd.db"
    shutil.copyfile(LEGACY_SQLITE, db)
    url = sqlite_url(db)
    await _exec(url, "UPDATE leakguard_meta SET value = '7' WHERE key = 'schema'")
    with pytest.raises(StoreVersionError, match="'7'"):
        await open_store(url)
    assert await _revision(url) is None  # not stamped


async def test_database_with_a_few_of_our_table_names_is_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "other.db")
    await _exec(url, "CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT)")
    with pytest.raises(StoreVersionError):
        await open_store(url)


async def test_unrelated_tables_are_left_alone(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "shared.db")
    await _exec(url, "CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)")
    await (await open_store(url)).close()
    assert await _revision(url) == migrate.head()


async def test_open_without_create_refuses_an_old_store(tmp_path: Path) -> None:
    db = tmp_path / "leakguard.db"
    shutil.copyfile(LEGACY_SQLITE, db)
    url = sqlite_url(db)
    with pytest.raises(StoreVersionError, match="leakguard serve"):
        await open_store(url, create=False)
    await (await open_store(url)).close()
    store = await open_store(url, create=False)
    await store.close()


def test_revision_files_form_one_line_from_the_baseline() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert len(script.get_heads()) == 1, "two migration heads: give one a down_revision"
    revs = list(script.walk_revisions())
    assert revs[-1].revision == migrate.BASELINE
    assert revs[-1].down_revision is None
    for rev in revs:
        assert Path(rev.path).name == f"{rev.revision}.py"


# ---------------------------------------------------------------------- 0007: messages.raw last


async def _columns(url: str, table: str) -> list[str]:
    engine = create_async_engine(_url(url))
    try:
        async with engine.connect() as conn:
            rows = (await conn.exec_driver_sql(f"PRAGMA table_info({table})")).all()
        return [r[1] for r in rows]
    finally:
        await engine.dispose()


async def test_held_mail_is_stored_last_and_references_stay_enforced(tmp_path: Path) -> None:
    """0007 rebuilds ``messages`` (holds and deliveries refer to it) with foreign keys off:
    the previous release's data is intact, ``raw`` is last, and afterwards every connection
    of the store enforces foreign keys again."""
    db = tmp_path / "leakguard.db"
    shutil.copyfile(LEGACY_SQLITE, db)
    url = sqlite_url(db)
    store = await open_store(url)
    try:
        await _assert_legacy_content(store)
        assert (await _columns(url, "messages"))[-1] == "raw"
        assert (await _columns(url, "retained_mail"))[-1] == "sealed"
        for _ in range(3):  # the pool's connections, the upgrade's among them
            async with store._read() as conn:
                assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
        with pytest.raises(sa.exc.IntegrityError):
            async with store._tx() as conn:
                await conn.exec_driver_sql(
                    "UPDATE holds SET message_sha256 = 'nothing' WHERE id = 'H-LEGACY01'"
                )
    finally:
        await store.close()


async def test_an_upgrade_that_would_break_a_reference_changes_nothing(tmp_path: Path) -> None:
    """A store whose references are already broken (written with foreign keys off by some
    other tool) is refused by the upgrade's check, in both languages, and left as it was."""
    db = tmp_path / "leakguard.db"
    shutil.copyfile(LEGACY_SQLITE, db)
    url = sqlite_url(db)
    await _exec(url, "PRAGMA foreign_keys=OFF", "UPDATE holds SET message_sha256 = 'gone'")
    with pytest.raises(StoreVersionError, match="broken references"):
        await open_store(url)
    assert await _revision(url) is None  # still the previous release's store


# ---------------------------------------------------------------------- 0009: holds.retry_key


async def test_a_retry_straddling_the_0009_upgrade_is_still_recognised(tmp_path: Path) -> None:
    """A hold written at 0008 (no retry key) and its client's retry after the upgrade: the
    upgrade gives recent holds their key, so the retry finds the first hold."""
    from datetime import timedelta

    from alembic import command

    from leakguard.holds.model import HoldRecord
    from leakguard.store import sha256_hex

    db = tmp_path / "leakguard.db"
    url = sqlite_url(db)
    store = await open_store(url)
    raw = b"Subject: x\r\n\r\nbody\r\n"
    now = datetime.now(UTC)
    hold = HoldRecord(
        id="H-STRADDLE", state=HoldState.HELD, created_at=now,
        expires_at=now + timedelta(hours=72), due_at=None, escalate_at=None,
        message_sha256=sha256_hex(raw), mail_from="alice@city.example.lg.jp",
        rcpts=("bob@partner.example.co.jp",), auth_user=None, subject="s", action="hold",
        rules=("r",), verdict_json="{}", approvers=(), offer_bcc=False, language="ja",
    )  # fmt: skip
    try:
        await store.create_hold(hold, raw)
    finally:
        await store.close()
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        cfg = migrate.alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008_holds_message_index")
    engine.dispose()
    assert await _revision(url) == "0008_holds_message_index"
    assert "retry_key" not in await _columns(url, "holds")
    store = await open_store(url)
    try:
        found = await store.recent_hold_for(
            sha256_hex(raw), "alice@city.example.lg.jp", ["Bob@partner.example.co.jp"],
            now - timedelta(minutes=10),
        )  # fmt: skip
        assert found is not None and found.id == "H-STRADDLE"
    finally:
        await store.close()
    assert await _diff(url) == []
