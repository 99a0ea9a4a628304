"""Alembic environment: runs on the connection ``leakguard.store.migrate`` hands over.

leakguard never needs ``alembic.ini``: the store upgrades itself when it opens. SQLite
migrations run in batch mode (copy-and-move), so later revisions may alter columns there
too. ``UTCDateTime`` renders as ``sa.DateTime(timezone=True)``, which is what it stores.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context

from leakguard.store.schema import UTCDateTime, metadata

config = context.config


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _compare_type(
    ctx: Any, inspected: Any, metadata_col: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    if isinstance(metadata_type, UTCDateTime):
        return not isinstance(inspected_type, sa.DateTime)
    return None  # the default comparison


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run migrations through leakguard.store.migrate (python -m leakguard.store revision)"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=config.get_main_option("version_table") or "leakguard_alembic_version",
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=_render_item,
        compare_type=_compare_type,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
