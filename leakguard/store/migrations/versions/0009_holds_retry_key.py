"""Retry recognition by one key: ``holds.retry_key`` (indexed) replaces ``ix_holds_message``.

A retry is the same bytes, sender and recipients within ``RETRY_WINDOW``
(``holds.service``). 0008 looked holds up by ``(message_sha256, mail_from)`` and compared
the recipients in Python: a sender whose mails repeat the same bytes to other recipients
(a form system, a mail merge without Message-IDs, the benchmark's ``smtp-source -N``) made
every new hold sort and read all earlier ones (18 % of a hold's CPU after 1,500 holds,
issue 11). The key (``store.sql.retry_key``) hashes all three, so the lookup reads one row.

Holds from the last day get their key here, so a retry that straddles the upgrade is still
recognised; older ones are past any retry window and keep NULL.

Revision ID: 0009_holds_retry_key
Revises: 0008_holds_message_index
Create Date: 2026-11-30 15:50:00.000000
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0009_holds_retry_key"
down_revision: str | Sequence[str] | None = "0008_holds_message_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from leakguard.store.schema import UTCDateTime
    from leakguard.store.sql import retry_key

    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_key", sa.String(64), nullable=True))
    op.drop_index("ix_holds_message", table_name="holds")
    op.create_index("ix_holds_retry", "holds", ["retry_key"])
    holds = sa.table(
        "holds",
        sa.column("id", sa.String),
        sa.column("created_at", UTCDateTime),
        sa.column("message_sha256", sa.String),
        sa.column("mail_from", sa.Text),
        sa.column("rcpts", sa.Text),
        sa.column("retry_key", sa.String),
    )
    conn = op.get_bind()
    since = datetime.now(UTC) - timedelta(days=1)
    rows = conn.execute(
        sa.select(holds.c.id, holds.c.message_sha256, holds.c.mail_from, holds.c.rcpts).where(
            holds.c.created_at >= since
        )
    ).all()
    for hold_id, digest, mail_from, rcpts in rows:
        listed = json.loads(rcpts) if isinstance(rcpts, str) else rcpts
        conn.execute(
            holds.update()
            .where(holds.c.id == hold_id)
            .values(retry_key=retry_key(digest, mail_from, listed))
        )


def downgrade() -> None:
    op.drop_index("ix_holds_retry", table_name="holds")
    op.create_index("ix_holds_message", "holds", ["message_sha256", "mail_from"])
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_column("retry_key")
