"""Aggregate queries for the officer's statistics and the audit-first rollout report.

Everything is counted by the database (``GROUP BY``): rule ids are unnested from the JSON
``rules`` / ``audit_rules`` columns (``json_each`` on SQLite, ``json_array_elements_text``
on PostgreSQL), departments come from the decision journal (a hold's department is the one
of the decision that made it). Only release durations (for the median) and a few examples
come back as rows, and those are bounded.

``StatsQueries(store)`` shares the store's engine and write lock, like ``store.journal``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from leakguard.store import schema as t

if TYPE_CHECKING:
    from leakguard.store.sql import SqlStore

By = Literal["rule", "department"]
# release durations fetched for medians, at most (newest first)
MAX_DURATIONS = 100_000
MAX_EXAMPLES = 50


@dataclass(frozen=True, slots=True)
class Count:
    """``n`` rows for one key (a rule id or a department) and one category."""

    key: str
    category: str
    n: int


@dataclass(frozen=True, slots=True)
class AuditExample:
    decision_id: str
    at: datetime
    department: str
    subject: str
    outcome: str
    hold_state: str | None
    reported: bool
    action: str  # what the audited rule would have done ("" when unknown)


def _utc(value: Any) -> datetime | None:
    """A timestamp from a query (aggregates may come back as text on SQLite), in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def meta_key(prefix: str, name: str) -> str:
    """A ``leakguard_meta`` key (at most 64 characters: long names are hashed)."""
    key = f"{prefix}:{name}"
    if len(key) <= 64:
        return key
    return f"{prefix}:#" + hashlib.sha256(name.encode()).hexdigest()[: 63 - len(prefix) - 1]


class StatsQueries:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    # ------------------------------------------------------------------ helpers

    def _unnest(self, column: Any, name: str) -> Any:
        """A table of the strings of a JSON array column, one row each (column ``value``)."""
        if self._store.dialect == "postgresql":
            return (
                sa.func.json_array_elements_text(column)
                .table_valued("value")
                .render_derived()
                .alias(name)
            )
        return sa.func.json_each(column).table_valued("value").alias(name)

    def _hold_department(self) -> Any:
        """hold_id -> department, from the journal (one row per hold)."""
        d = t.decisions.c
        return (
            sa.select(d.hold_id.label("hold_id"), sa.func.max(d.department).label("department"))
            .where(d.hold_id.is_not(None))
            .group_by(d.hold_id)
            .subquery("hd")
        )

    def _day(self, column: Any, offset_minutes: int) -> Any:
        """The local calendar day of a UTC timestamp (fixed offset), as text YYYY-MM-DD."""
        if self._store.dialect == "postgresql":
            local = sa.func.timezone("UTC", column) + sa.text(
                f"interval '{int(offset_minutes)} minutes'"
            )
            return sa.func.to_char(local, "YYYY-MM-DD")
        return sa.func.date(column, f"{int(offset_minutes):+d} minutes")

    async def _at(self, since: datetime, until: datetime) -> Any:
        """The journal's ``at`` column for a range condition. SQLite walks the ``at`` index
        row by row, which for a period covering most of the journal is several times
        slower than scanning the table: then the index is bypassed (an expression)."""
        at = t.decisions.c.at
        if self._store.dialect != "sqlite":
            return at
        async with self._store._read() as conn:
            first = _utc((await conn.execute(sa.select(sa.func.min(at)))).scalar_one_or_none())
        if first is not None and since <= first + (until - first) / 2:
            return sa.func.coalesce(at, at)
        return at

    async def _rows(self, q: Any) -> list[Any]:
        async with self._store._read() as conn:
            return list((await conn.execute(q)).all())

    # ------------------------------------------------------------------ holds

    async def hold_states(self, since: datetime, until: datetime, by: By) -> list[Count]:
        """Holds (action ``hold``) created in ``[since, until)`` counted per key and state."""
        h = t.holds.c
        where = (h.created_at >= since, h.created_at < until, h.action == "hold")
        if by == "rule":
            r = self._unnest(h.rules, "r")
            key = r.c.value
            q = sa.select(key, h.state, sa.func.count()).select_from(t.holds.join(r, sa.true()))
        else:
            hd = self._hold_department()
            key = sa.func.coalesce(hd.c.department, "")
            q = sa.select(key, h.state, sa.func.count()).select_from(
                t.holds.outerjoin(hd, hd.c.hold_id == h.id)
            )
        q = q.where(*where).group_by(key, h.state)
        return [Count(str(k or ""), str(s), int(n)) for k, s, n in await self._rows(q)]

    async def release_durations(
        self, since: datetime, until: datetime, by: By, *, limit: int = MAX_DURATIONS
    ) -> list[tuple[str, float]]:
        """(key, seconds from hold to release) for holds created in the period and released
        (or released as Bcc); newest first, at most ``limit``."""
        h, tr = t.holds.c, t.transitions.c
        join = t.holds.join(t.transitions, tr.hold_id == h.id)
        if by == "rule":
            r = self._unnest(h.rules, "r")
            key = r.c.value
            join = join.join(r, sa.true())
        else:
            hd = self._hold_department()
            key = sa.func.coalesce(hd.c.department, "")
            join = join.outerjoin(hd, hd.c.hold_id == h.id)
        q = (
            sa.select(key, h.created_at, tr.at)
            .select_from(join)
            .where(
                h.created_at >= since,
                h.created_at < until,
                h.action == "hold",
                tr.to_state.in_(["released", "released_bcc"]),
            )
            .order_by(h.created_at.desc())
            .limit(max(1, limit))
        )
        out = []
        for k, created, released in await self._rows(q):
            c, rel = _utc(created), _utc(released)
            if c is not None and rel is not None:
                out.append((str(k or ""), max(0.0, (rel - c).total_seconds())))
        return out

    # ------------------------------------------------------------------ decisions

    async def decision_outcomes(self, since: datetime, until: datetime, by: By) -> list[Count]:
        """Journal rows in the period counted per key (enforced rule or department) and
        outcome (sent, sent_bcc, held, delayed, rejected, failed)."""
        d = t.decisions.c
        if by == "rule":
            r = self._unnest(d.rules, "r")
            key = r.c.value
            q = sa.select(key, d.outcome, sa.func.count()).select_from(
                t.decisions.join(r, sa.true())
            )
        else:
            key = d.department
            q = sa.select(key, d.outcome, sa.func.count()).select_from(t.decisions)
        at = await self._at(since, until)
        q = q.where(at >= since, at < until).group_by(key, d.outcome)
        return [Count(str(k or ""), str(o), int(n)) for k, o, n in await self._rows(q)]

    async def audit_hits(self, since: datetime, until: datetime, by: By) -> list[Count]:
        """Audit-only hits in the period: per audited rule, or per department (messages with
        at least one audit-mode rule). Category is always ``audit``."""
        d = t.decisions.c
        if by == "rule":
            r = self._unnest(d.audit_rules, "r")
            key = r.c.value
            q = sa.select(key, sa.func.count()).select_from(t.decisions.join(r, sa.true()))
        else:
            key = d.department
            q = sa.select(key, sa.func.count()).select_from(t.decisions)
            q = q.where(sa.func.json_array_length(d.audit_rules) > 0)
        at = await self._at(since, until)
        q = q.where(at >= since, at < until).group_by(key)
        return [Count(str(k or ""), "audit", int(n)) for k, n in await self._rows(q)]

    async def daily_actions(
        self, since: datetime, until: datetime, *, offset_minutes: int = 0
    ) -> list[Count]:
        """Journal rows per local day (key ``YYYY-MM-DD``) and verdict action."""
        d = t.decisions.c
        day = self._day(d.at, offset_minutes)
        at = await self._at(since, until)
        q = (
            sa.select(day, d.action, sa.func.count())
            .where(at >= since, at < until)
            .group_by(day, d.action)
        )
        return [Count(str(k), str(a), int(n)) for k, a, n in await self._rows(q)]

    # ------------------------------------------------------------------ audit rollout

    async def audit_first_hits(self, rules: Sequence[str] | None = None) -> dict[str, datetime]:
        """The first journal hit of each audited rule (or of ``rules``)."""
        d = t.decisions.c
        r = self._unnest(d.audit_rules, "r")
        q = sa.select(r.c.value, sa.func.min(d.at)).select_from(t.decisions.join(r, sa.true()))
        if rules is not None:
            if not rules:
                return {}
            q = q.where(r.c.value.in_(list(rules)))
        q = q.group_by(r.c.value)
        out: dict[str, datetime] = {}
        for rule, first in await self._rows(q):
            at = _utc(first)
            if at is not None:
                out[str(rule)] = at
        return out

    def _audit_join(self, rule: str) -> tuple[Any, Any, Any]:
        d, h = t.decisions.c, t.holds.c
        r = self._unnest(d.audit_rules, "r")
        reported = (
            sa.select(t.incidents.c.decision_id)
            .where(t.incidents.c.decision_id.is_not(None), t.incidents.c.kind == "report")
            .scalar_subquery()
        )
        is_reported = sa.case((d.id.in_(reported), 1), else_=0)
        join = t.decisions.join(r, sa.true()).outerjoin(t.holds, h.id == d.hold_id)
        return join, r.c.value == rule, is_reported

    async def audit_outcomes(self, rule: str, since: datetime, until: datetime) -> list[Count]:
        """Mails the audited ``rule`` hit, counted per answer. Category:
        ``<outcome>[/<hold state>][/reported]``; key: department."""
        d, h = t.decisions.c, t.holds.c
        join, match, is_reported = self._audit_join(rule)
        at = await self._at(since, until)
        q = (
            sa.select(d.department, d.outcome, h.state, is_reported, sa.func.count())
            .select_from(join)
            .where(match, at >= since, at < until)
            .group_by(d.department, d.outcome, h.state, is_reported)
        )
        out = []
        for dept, outcome, state, rep, n in await self._rows(q):
            cat = str(outcome) + (f"/{state}" if state else "") + ("/reported" if rep else "")
            out.append(Count(str(dept or ""), cat, int(n)))
        return out

    async def audit_examples(
        self, rule: str, since: datetime, until: datetime, *, limit: int = 10
    ) -> list[AuditExample]:
        d, h = t.decisions.c, t.holds.c
        join, match, is_reported = self._audit_join(rule)
        q = (
            sa.select(
                d.id, d.at, d.department, d.subject, d.outcome, h.state, is_reported, d.summary
            )
            .select_from(join)
            .where(match, d.at >= since, d.at < until)
            .order_by(d.at.desc(), d.id.desc())
            .limit(max(1, min(limit, MAX_EXAMPLES)))
        )
        out = []
        for did, at, dept, subject, outcome, state, rep, summary in await self._rows(q):
            action = ""
            if isinstance(summary, str):
                summary = json.loads(summary)
            for a in (summary or {}).get("audit_rules", []) if isinstance(summary, dict) else []:
                if isinstance(a, dict) and a.get("id") == rule:
                    action = str(a.get("action", ""))
                    break
            when = _utc(at)
            assert when is not None
            out.append(
                AuditExample(
                    decision_id=str(did),
                    at=when,
                    department=str(dept or ""),
                    subject=str(subject or ""),
                    outcome=str(outcome),
                    hold_state=str(state) if state else None,
                    reported=bool(rep),
                    action=action,
                )
            )
        return out

    # ------------------------------------------------------------------ send-once marks

    async def get_mark(self, key: str) -> str | None:
        async with self._store._read() as conn:
            return (
                await conn.execute(sa.select(t.meta.c.value).where(t.meta.c.key == key))
            ).scalar_one_or_none()

    async def mark_and_enqueue(
        self, key: str, value: str, mails: Sequence[tuple[bytes, str, Sequence[str]]]
    ) -> bool:
        """Insert ``key`` into ``leakguard_meta`` and queue ``mails`` (raw, from, rcpts) as
        notices, in one transaction. False (nothing queued) when the key was already there:
        another relay or an earlier run sent them."""
        store = self._store
        digests = [await store._digest(raw) for raw, _, _ in mails]

        def write(conn: sa.Connection) -> None:
            # the insert comes first: it takes the write lock (SQLite) or waits for a
            # concurrent insert of the key to commit (PostgreSQL), then fails on the key
            conn.execute(sa.insert(t.meta).values(key=key, value=value[:256]))
            for (raw, mail_from, rcpts), digest in zip(mails, digests, strict=True):
                store._enqueue(conn, raw, digest, mail_from, rcpts, kind="notice", hold_id=None)

        try:
            await store._run_tx(write)
        except IntegrityError:  # already there: an earlier run or another relay sent them
            return False
        if mails:
            self._store._notify()
        return True
