"""The database schema (SQLAlchemy Core): one schema for SQLite and PostgreSQL.

Message bytes live once in ``messages`` keyed by their SHA-256; holds and deliveries refer
to them by hash. Timestamps are stored as UTC (``UTCDateTime``) so that comparisons work
the same on SQLite (text) and PostgreSQL (timestamptz).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 1


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no timezone type: values are stored as naive UTC text (which sorts and
    compares correctly) and come back with ``tzinfo=UTC``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = sa.MetaData()

meta = sa.Table(
    "leakguard_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # stored last: a big mail is inserted as zeroblob and streamed in (store/blobs.py)
    sa.Column("raw", sa.LargeBinary, nullable=False),
)

holds = sa.Table(
    "holds",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=True),
    sa.Column("escalate_at", UTCDateTime, nullable=True),
    sa.Column("message_sha256", sa.String(64), sa.ForeignKey("messages.sha256"), nullable=False),
    sa.Column("mail_from", sa.Text, nullable=False),
    sa.Column("rcpts", sa.JSON, nullable=False),
    sa.Column("auth_user", sa.Text, nullable=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("verdict_json", sa.Text, nullable=False),
    sa.Column("approvers", sa.JSON, nullable=False),
    sa.Column("offer_bcc", sa.Boolean, nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("escalated", sa.Boolean, nullable=False, default=False),
    # sha256 of bytes, sender and sorted recipients (store.sql.retry_key; 0009)
    sa.Column("retry_key", sa.String(64), nullable=True),
    sa.Index("ix_holds_sender", "mail_from"),
    sa.Index("ix_holds_retry", "retry_key"),  # retry recognition
)

transitions = sa.Table(
    "hold_transitions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("hold_id", sa.String(64), sa.ForeignKey("holds.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("from_state", sa.String(16), nullable=True),
    sa.Column("to_state", sa.String(16), nullable=True),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("via", sa.String(16), nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("token_hash", sa.String(128), primary_key=True),
    sa.Column("hold_id", sa.String(64), sa.ForeignKey("holds.id"), nullable=False, index=True),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("message_sha256", sa.String(64), sa.ForeignKey("messages.sha256"), nullable=False),
    sa.Column("mail_from", sa.Text, nullable=False),
    sa.Column("rcpts", sa.JSON, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("hold_id", sa.String(64), nullable=True, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("last_error", sa.Text, nullable=False, default=""),
    sa.Column("claimed_by", sa.String(128), nullable=True),
    sa.Column("claimed_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Index("ix_deliveries_due", "state", "next_attempt_at"),
)

# Admin sessions that were logged out (web): every node and worker refuses them until they
# would have expired anyway (``expires_at``), then the row is pruned.
revoked_sessions = sa.Table(
    "revoked_sessions",
    metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
)

sent_history = sa.Table(
    "sent_history",
    metadata,
    sa.Column("sender", sa.String(320), primary_key=True),
    sa.Column("rcpt", sa.String(320), primary_key=True),
    sa.Column("display_name", sa.String(200), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("first_at", UTCDateTime, nullable=False),
    sa.Column("last_at", UTCDateTime, nullable=False),
)

# The relay's own record of threads (issue 8): for every mail it sent on, or held (counted
# only once released), its Message-ID (hashed) and the addresses that saw each other in it.
# A later reply whose In-Reply-To/References name it is among people who have already met.
thread_record = sa.Table(
    "thread_record",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("msgid_hash", sa.String(64), nullable=False, index=True),
    # From + To + Cc as sent, lower-cased (bounded)
    sa.Column("addresses", sa.JSON, nullable=False),
    # what stays visible after a To/Cc -> Bcc rewrite (From + internal To/Cc): used when
    # the held mail was released as Bcc
    sa.Column("bcc_addresses", sa.JSON, nullable=False),
    # set for a held mail: it counts only once the hold is released
    sa.Column("hold_id", sa.String(64), nullable=True, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
)

# The decision journal (issue 9): one row for every message the relay decided, whatever it
# did with it, for the officer's statistics, replay and incident records. Evidence is kept
# masked (never a full identifier); the subject is redacted. Kept ``journal_days``.
decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("sender", sa.String(320), nullable=False, index=True),
    sa.Column("auth_user", sa.String(320), nullable=True),
    sa.Column("department", sa.String(200), nullable=False, default=""),
    # envelope recipients (bounded) and how many of them were outside
    sa.Column("rcpts", sa.JSON, nullable=False),
    sa.Column("external_rcpts", sa.Integer, nullable=False, default=0),
    sa.Column("subject", sa.Text, nullable=False, default=""),
    sa.Column("message_id", sa.String(300), nullable=False, default="", index=True),
    # the verdict's action; ``outcome`` is what happened: sent, sent_bcc, held, delayed,
    # rejected, or failed (the client got a 4xx/5xx and keeps the mail)
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("reply", sa.String(200), nullable=False, default=""),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("audit_rules", sa.JSON, nullable=False),
    # {"facts": {...}, "findings": [{detector, fact, addresses, detail, evidence}]}, masked
    sa.Column("summary", sa.JSON, nullable=False),
    sa.Column("policy_version", sa.String(64), nullable=False, default=""),
    sa.Column("size", sa.Integer, nullable=False, default=0),
    # SHA-256 of the bytes as relayed (after Date/Message-ID completion): the retry key
    sa.Column("sha256", sa.String(64), nullable=False, default="", index=True),
    sa.Column("hold_id", sa.String(64), nullable=True, index=True),
    # the client's connection ended after the 250 and before any other command: it may not
    # have read the answer, so the same transaction within the retry window is a retry
    sa.Column("abandoned", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
)

# What was sent, kept ``retention.days`` (default 30) so that any mail that went out can be
# reported and replayed: sealed with AES-GCM (``mode = encrypted``) or only its hash
# (``mode = hashed``: the journal row and this hash, no bytes).
retained_mail = sa.Table(
    "retained_mail",
    metadata,
    sa.Column("decision_id", sa.String(32), sa.ForeignKey("decisions.id"), primary_key=True),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
    # stored last: a big mail is inserted as zeroblob and streamed in (store/blobs.py)
    sa.Column("sealed", sa.LargeBinary, nullable=True),
)

# Incidents (issue 9): a reported mistake (``kind = report``) or a near miss the officer is
# alerted to (``kind = near_miss``: a risky release, a discard marked as a mistake).
incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("reported_by", sa.String(320), nullable=False),
    sa.Column("via", sa.String(16), nullable=False),
    sa.Column("decision_id", sa.String(32), nullable=True, index=True),
    sa.Column("hold_id", sa.String(64), nullable=True, index=True),
    sa.Column("sender", sa.String(320), nullable=False, default=""),
    sa.Column("department", sa.String(200), nullable=False, default=""),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    # follow-up actions ticked by the officer: {"apology": {"at": iso, "by": user}, ...}
    sa.Column("followups", sa.JSON, nullable=False),
)

incident_events = sa.Table(
    "incident_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False, index=True
    ),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(320), nullable=False),
    # reported, notified, alerted, followup, note, closed, reopened, webhook
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
)
