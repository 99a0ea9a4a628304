"""The journal's sealed mail stored last in its row (SQLite): ``retained_mail.sealed``.

SQLite keeps a ``zeroblob(n)`` unexpanded only when no column stored after it has data, and
only then does the insert of a big mail (``store/blobs.py``: zeroblob, then incremental blob
I/O in 1 MiB pieces) cost a page cache rather than a record of the mail's size built in
memory: one copy of a 25 MB mail fewer at the relay's peak (issue 11, "Memory"). SQLite
cannot move a column, so the table is rebuilt (batch mode: copy, drop, rename; its index
and foreign key kept). ``messages.raw`` stays where it is: ``holds`` refers to that table,
and SQLite cannot drop a table others refer to inside the transaction a migration runs in
(foreign keys can only be switched off outside one). PostgreSQL's column order does not
matter: nothing to do there.

Revision ID: 0006_blob_columns_last
Revises: 0005_abandoned_decisions
Create Date: 2026-11-30 07:04:32.296711
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006_blob_columns_last"
down_revision: str | Sequence[str] | None = "0005_abandoned_decisions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ORDER: dict[str, tuple[str, ...]] = {
    "retained_mail": ("decision_id", "mode", "sha256", "size", "expires_at", "sealed"),
}
_BEFORE: dict[str, tuple[str, ...]] = {
    "retained_mail": ("decision_id", "mode", "sha256", "size", "sealed", "expires_at"),
}


def _reorder(order: dict[str, tuple[str, ...]]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in order.items():
        with op.batch_alter_table(table, recreate="always", partial_reordering=[columns]):
            pass


def upgrade() -> None:
    _reorder(_ORDER)


def downgrade() -> None:
    _reorder(_BEFORE)
