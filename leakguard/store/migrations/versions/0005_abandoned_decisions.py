"""Decisions whose client left before it showed it read the reply (retry recognition).

A column only: ``decisions.abandoned``, false for existing rows (their retry window has
long passed).

Revision ID: 0005_abandoned_decisions
Revises: 0004_revoked_sessions
Create Date: 2026-11-30 05:07:09.584598
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_abandoned_decisions"
down_revision: str | Sequence[str] | None = "0004_revoked_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("abandoned", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("abandoned")
