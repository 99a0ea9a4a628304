"""The held mail stored last in its row (SQLite): ``messages.raw``.

As ``0006`` did for ``retained_mail.sealed``: SQLite keeps a ``zeroblob(n)`` unexpanded
only when no column stored after it has data, so only then does the insert of a big mail
(``store/blobs.py``) cost a page cache instead of a record of the mail's size built in
memory: one copy of a 25 MB mail fewer when it is held (issue 11, "Memory").

``holds`` and ``deliveries`` refer to ``messages``, and SQLite cannot drop a table others
refer to while foreign keys are enforced. ``SqlStore.upgrade_schema`` therefore runs SQLite
upgrades with ``PRAGMA foreign_keys=OFF`` (it can only be switched outside a transaction),
checks every reference with ``PRAGMA foreign_key_check`` before the commit, and switches
enforcement back on: SQLite's own procedure for changing a table's layout. PostgreSQL's
column order does not matter: nothing to do there.

Revision ID: 0007_message_raw_last
Revises: 0006_blob_columns_last
Create Date: 2026-11-30 10:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_message_raw_last"
down_revision: str | Sequence[str] | None = "0006_blob_columns_last"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AFTER = ("sha256", "size", "created_at", "raw")
_BEFORE = ("sha256", "raw", "size", "created_at")


def _reorder(columns: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("messages", recreate="always", partial_reordering=[columns]):
        pass


def upgrade() -> None:
    _reorder(_AFTER)


def downgrade() -> None:
    _reorder(_BEFORE)
