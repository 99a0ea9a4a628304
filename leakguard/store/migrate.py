"""Schema migrations (Alembic): every store is upgraded in place to this release's schema.

``open_store`` calls :func:`upgrade` in one transaction when it opens a store:

- an empty database gets every revision from the baseline on;
- a store written before migrations existed (leakguard up to commit ``df55b47``: the
  tables, ``leakguard_meta.schema = 1`` and no version table) is stamped as the baseline
  revision, then upgraded;
- a store already at a known revision is upgraded to head (nothing to do when current);
- a store at a revision this release does not know (written by a newer leakguard) is
  refused with :class:`StoreVersionError`: downgrading leakguard over a newer store would
  lose data.

On PostgreSQL the upgrade takes a transaction-scoped advisory lock first, so relays that
start together upgrade the shared store once. Alembic keeps the revision in the table
``leakguard_alembic_version`` (its own name, so a database shared with other applications
keeps theirs apart).

Adding a table or column later is one new file in ``leakguard/store/migrations/versions``
after the change to ``schema.py``::

    .venv/bin/python -m leakguard.store revision -m "thread records"

writes ``0002_thread_records.py`` with the operations Alembic detects between ``schema.py``
and the current head, formatted by ruff (review it, then commit it);
``tests/deploy/test_migrations.py`` fails while ``schema.py`` and the migrations disagree.
A change that today's leakguard cannot read must also raise ``leakguard_meta.schema``
(``schema.SCHEMA_VERSION``): releases before migrations refuse a store whose number is
higher than theirs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from leakguard.i18n import lang_from_env

VERSION_TABLE = "leakguard_alembic_version"
BASELINE = "0001_baseline"  # the schema of leakguard df55b47, the last release without Alembic
_LEGACY_SCHEMA = "1"
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key: "leakgrd" in ASCII, any constant unlikely to clash
_PG_LOCK_KEY = 0x6C65616B677264
# Alembic's own INFO lines ("setup plugin ...", "Running upgrade ...") are noise in the
# relay's log; a failed upgrade raises and is reported by the caller.
logging.getLogger("alembic").setLevel(logging.WARNING)


class StoreVersionError(ValueError):
    """The store cannot be used by this release (newer, or not a leakguard store)."""


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    before: str | None  # None: empty database; BASELINE for a pre-migration store
    after: str
    legacy: bool  # the store predates migrations and was stamped as the baseline

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("version_table", VERSION_TABLE)
    cfg.set_main_option("file_template", "%%(rev)s")  # files named by revision: 0002_threads.py
    return cfg


def head() -> str:
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert rev is not None
    return rev


def msg(ja: str, en: str) -> str:
    return ja if lang_from_env() == "ja" else en


def current_revision(conn: Connection) -> str | None:
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def _legacy_schema(conn: Connection, tables: set[str]) -> str | None:
    if "leakguard_meta" not in tables:
        return None
    row = conn.execute(sa.text("SELECT value FROM leakguard_meta WHERE key = 'schema'")).first()
    return None if row is None else str(row[0])


def upgrade_sync(conn: Connection) -> UpgradeResult:
    """Upgrade the database behind ``conn`` (inside the caller's transaction) to head."""
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    script = ScriptDirectory.from_config(cfg)
    known = {s.revision for s in script.walk_revisions()}
    target = head()
    tables = set(sa.inspect(conn).get_table_names())
    before = current_revision(conn)
    legacy = False
    if before is None and "holds" in tables:
        schema = _legacy_schema(conn, tables)
        if schema != _LEGACY_SCHEMA:
            raise StoreVersionError(
                msg(
                    f"このデータベースは leakguard のストアとして読めません "
                    f"(leakguard_meta.schema = {schema!r}、版管理表なし)。",
                    f"this database is not a leakguard store this release can read "
                    f"(leakguard_meta.schema = {schema!r}, no version table)",
                )
            )
        command.stamp(cfg, BASELINE)
        before, legacy = BASELINE, True
    elif before is not None and before not in known:
        raise StoreVersionError(
            msg(
                f"ストアはより新しい leakguard で更新されています (リビジョン {before})。"
                f"この版が扱えるのは {target} までです。leakguard を更新してください。",
                f"the store was upgraded by a newer leakguard (revision {before}); this "
                f"release knows revisions up to {target}: upgrade leakguard",
            )
        )
    elif before is None and tables & {"messages", "deliveries", "tokens"}:
        raise StoreVersionError(
            msg(
                "データベースに leakguard の表の一部だけがあります。空のデータベースか、"
                "leakguard のストアを指定してください。",
                "the database holds some of leakguard's tables but not a whole store; "
                "point store.url at an empty database or a leakguard store",
            )
        )
    if before != target:
        command.upgrade(cfg, "head")
    return UpgradeResult(before=before, after=target, legacy=legacy)


async def upgrade(conn: AsyncConnection) -> UpgradeResult:
    """Upgrade inside ``conn``'s transaction (the caller commits)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    return await conn.run_sync(upgrade_sync)


async def check_current(conn: AsyncConnection) -> None:
    """Refuse a store that is not at this release's head (for ``open_store(create=False)``)."""
    rev = await conn.run_sync(current_revision)
    if rev != head():
        raise StoreVersionError(
            msg(
                f"ストアのスキーマ ({rev or '未作成または旧形式'}) がこの版 ({head()}) と"
                "一致しません。leakguard serve を一度起動すると更新されます。",
                f"the store's schema ({rev or 'missing or pre-migration'}) is not this "
                f"release's ({head()}); starting leakguard serve once upgrades it",
            )
        )


# ---------------------------------------------------------------------- developer command


async def _fresh_head_db(path: Path) -> str:
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await upgrade(conn)
    await engine.dispose()
    return url


def _revision(message: str, rev_id: str | None) -> None:
    """Autogenerate a revision file: the difference between ``schema.py`` and head."""
    with tempfile.TemporaryDirectory() as tmp:
        url = asyncio.run(_fresh_head_db(Path(tmp) / "head.db"))
        engine = sa.create_engine(url.replace("+aiosqlite", ""))
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
            if Path(ruff).exists():  # the file passes `make lint` as written
                cfg.set_section_option("post_write_hooks", "hooks", "ruff_fix, ruff_format")
                for hook, options in (
                    ("ruff_fix", "check --fix --quiet REVISION_SCRIPT_FILENAME"),
                    ("ruff_format", "format --quiet REVISION_SCRIPT_FILENAME"),
                ):
                    cfg.set_section_option("post_write_hooks", f"{hook}.type", "exec")
                    cfg.set_section_option("post_write_hooks", f"{hook}.executable", ruff)
                    cfg.set_section_option("post_write_hooks", f"{hook}.options", options)
            command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m leakguard.store",
        description="Developer tools for the store's Alembic migrations.",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("revision", help="write a migration for the changes in schema.py")
    r.add_argument("-m", "--message", required=True)
    r.add_argument("--rev-id", help="revision id (default: the next number, e.g. 0002_...)")
    sub.add_parser("heads", help="print this release's head revision")
    args = p.parse_args(argv)
    if args.cmd == "heads":
        print(head())
        return 0
    rev_id = args.rev_id
    if rev_id is None:
        number = int(head().split("_", 1)[0]) + 1
        slug = "_".join(args.message.lower().split())[:40]
        rev_id = f"{number:04d}_{''.join(c for c in slug if c.isalnum() or c == '_')}"
    _revision(args.message, rev_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
