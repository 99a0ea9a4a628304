"""The relay's own thread record (issue 8): who was sent together in each mail.

Stores written between the record and the first migration (no version, but the table)
already have it: the upgrade then only records the version.

Revision ID: 0002_thread_records
Revises: 0001_baseline
Create Date: 2026-11-29 22:42:56.258854
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_thread_records"
down_revision: str | Sequence[str] | None = "0001_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if "thread_record" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "thread_record",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("msgid_hash", sa.String(length=64), nullable=False),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("bcc_addresses", sa.JSON(), nullable=False),
        sa.Column("hold_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("thread_record", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_thread_record_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_thread_record_hold_id"), ["hold_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_thread_record_msgid_hash"), ["msgid_hash"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("thread_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_thread_record_msgid_hash"))
        batch_op.drop_index(batch_op.f("ix_thread_record_hold_id"))
        batch_op.drop_index(batch_op.f("ix_thread_record_created_at"))

    op.drop_table("thread_record")
