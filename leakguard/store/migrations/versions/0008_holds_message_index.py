"""An index on ``holds (message_sha256, mail_from)`` for retry recognition.

Every new hold first asks whether the same bytes from the same sender were held within the
retry window (``SqlStore.recent_hold_for``). That lookup went through ``ix_holds_sender``
and read every hold of the sender: a form system or shared mailbox that sends many held
mails made each new hold slower than the last (issue 11). With this index it reads the
holds of those bytes only.

Revision ID: 0008_holds_message_index
Revises: 0007_message_raw_last
Create Date: 2026-11-30 13:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008_holds_message_index"
down_revision: str | Sequence[str] | None = "0007_message_raw_last"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_holds_message", "holds", ["message_sha256", "mail_from"])


def downgrade() -> None:
    op.drop_index("ix_holds_message", table_name="holds")
