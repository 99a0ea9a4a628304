"""The officer's records (issue 9): the decision journal, retained mail and incidents.

Every message the relay decides leaves one ``decisions`` row (who, to whom, what the policy
said, what happened, masked evidence) and, while ``retention.days`` last, its bytes sealed
with AES-GCM or only their hash (``retained_mail``). Incidents (reported mistakes and near
misses) refer to a decision or a hold and carry their own timeline of events.

Reached as ``store.journal``; it shares the store's engine and write lock.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from leakguard.randomness import random_bytes
from leakguard.store import schema as t
from leakguard.store.blobs import insert_streaming_blob, streams_blobs

if TYPE_CHECKING:
    from leakguard.store.sql import SqlStore

# Outcomes of a decision (``DecisionEntry.outcome``).
OUTCOMES = ("sent", "sent_bcc", "held", "delayed", "rejected", "failed")
# Follow-up actions an officer ticks off on an incident.
FOLLOWUPS = ("apology", "deletion_requested", "deletion_confirmed")
MAX_RCPTS = 500


def _now() -> datetime:
    return datetime.now(UTC)


def new_decision_id() -> str:
    """``M-`` and 12 base32 characters."""
    return "M-" + base64.b32encode(random_bytes(10)).decode("ascii")[:12]


def new_incident_id() -> str:
    """``I-`` and 10 base32 characters."""
    return "I-" + base64.b32encode(random_bytes(10)).decode("ascii")[:10]


@dataclass(frozen=True, slots=True)
class DecisionEntry:
    """One message as the relay decided it (masked; no bytes)."""

    id: str
    at: datetime
    sender: str
    action: str
    outcome: str
    rcpts: tuple[str, ...] = ()
    auth_user: str | None = None
    department: str = ""
    external_rcpts: int = 0
    subject: str = ""
    message_id: str = ""
    reply: str = ""
    rules: tuple[str, ...] = ()
    audit_rules: tuple[str, ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)
    policy_version: str = ""
    size: int = 0
    sha256: str = ""
    hold_id: str | None = None
    abandoned: bool = False  # the client left before it showed it read the reply


@dataclass(frozen=True, slots=True)
class Retained:
    """The retained form of a decided message: sealed bytes, or only the hash."""

    mode: str  # "encrypted" | "hashed"
    sha256: str
    size: int
    expires_at: datetime
    sealed: bytes | bytearray | None = None


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    id: str
    kind: str  # "report" | "near_miss"
    state: str  # "open" | "closed"
    created_at: datetime
    reported_by: str
    via: str  # web, reply, cli, admin, relay
    decision_id: str | None = None
    hold_id: str | None = None
    sender: str = ""
    department: str = ""
    rules: tuple[str, ...] = ()
    note: str = ""
    followups: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    at: datetime
    actor: str
    kind: str
    detail: str = ""


class Journal:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    # ------------------------------------------------------------------ decisions

    async def record(self, entries: Sequence[tuple[DecisionEntry, Retained | None]]) -> None:
        """Write decisions (and their retained mail) in one transaction."""
        if not entries:
            return
        rows = [_decision_row(d) for d, _ in entries]
        kept = [
            {
                "decision_id": d.id,
                "mode": r.mode,
                "sha256": r.sha256,
                "size": r.size,
                "sealed": r.sealed,
                "expires_at": r.expires_at,
            }
            for d, r in entries
            if r is not None
        ]

        def write(conn: sa.Connection) -> None:
            conn.execute(sa.insert(t.decisions), rows)
            # a large sealed mail is written in pieces (store/blobs.py), the rest at once
            big = [(d.id, r) for d, r in entries if r is not None and _streamed(conn, r)]
            streamed = {decision_id for decision_id, _ in big}
            small = [k for k in kept if k["decision_id"] not in streamed]
            if small:
                conn.execute(sa.insert(t.retained_mail), small)
            for decision_id, r in big:
                assert r.sealed is not None
                insert = sa.insert(t.retained_mail).values(
                    decision_id=decision_id,
                    mode=r.mode,
                    sha256=r.sha256,
                    size=r.size,
                    expires_at=r.expires_at,
                )
                insert_streaming_blob(conn, insert, t.retained_mail, "sealed", r.sealed)

        # one hand-off to the store's thread for the whole batch (``SqlStore._run_tx``)
        await self._store._run_tx(write)

    async def get(self, decision_id: str) -> DecisionEntry | None:
        async with self._store._read() as conn:
            r = (
                await conn.execute(sa.select(t.decisions).where(t.decisions.c.id == decision_id))
            ).first()
        return _decision(r) if r is not None else None

    async def by_hold(self, hold_id: str) -> DecisionEntry | None:
        async with self._store._read() as conn:
            r = (
                await conn.execute(
                    sa.select(t.decisions)
                    .where(t.decisions.c.hold_id == hold_id)
                    .order_by(t.decisions.c.at)
                    .limit(1)
                )
            ).first()
        return _decision(r) if r is not None else None

    async def mark_abandoned(self, ids: Sequence[str]) -> int:
        """The clients of these decisions left before they showed they read the reply: a
        repeat within the retry window is a retry (``Relay._sent_before``). Returns how
        many rows changed."""
        if not ids:
            return 0
        c = t.decisions.c
        async with self._store._tx() as conn:
            res = await conn.execute(
                sa.update(t.decisions).where(c.id.in_(list(ids))).values(abandoned=True)
            )
        return int(res.rowcount or 0)

    async def find(
        self,
        *,
        sender: str | None = None,
        message_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        outcomes: Sequence[str] | None = None,
        sha256: str | None = None,
        limit: int = 100,
    ) -> list[DecisionEntry]:
        """Decisions newest first, filtered."""
        q = sa.select(t.decisions)
        c = t.decisions.c
        if sha256 is not None:
            q = q.where(c.sha256 == sha256)
        if sender is not None:
            q = q.where(sa.func.lower(c.sender) == sender.lower())
        if message_id is not None:
            q = q.where(c.message_id == message_id[:300])
        if since is not None:
            q = q.where(c.at >= since)
        if until is not None:
            q = q.where(c.at < until)
        if outcomes:
            q = q.where(c.outcome.in_(list(outcomes)))
        q = q.order_by(c.at.desc(), c.id.desc()).limit(max(1, min(limit, 10000)))
        async with self._store._read() as conn:
            rows = (await conn.execute(q)).all()
        return [_decision(r) for r in rows]

    async def iter_range(
        self, since: datetime, until: datetime, *, batch: int = 1000
    ) -> AsyncIterator[list[DecisionEntry]]:
        """Every decision in ``[since, until)``, oldest first, in batches (keyset paging)."""
        c = t.decisions.c
        after: tuple[datetime, str] | None = None
        while True:
            q = sa.select(t.decisions).where(c.at >= since, c.at < until)
            if after is not None:
                q = q.where(sa.or_(c.at > after[0], sa.and_(c.at == after[0], c.id > after[1])))
            q = q.order_by(c.at, c.id).limit(batch)
            async with self._store._read() as conn:
                rows = (await conn.execute(q)).all()
            if not rows:
                return
            out = [_decision(r) for r in rows]
            yield out
            after = (out[-1].at, out[-1].id)
            if len(rows) < batch:
                return

    async def count(self, since: datetime | None = None, until: datetime | None = None) -> int:
        c = t.decisions.c
        q = sa.select(sa.func.count()).select_from(t.decisions)
        if since is not None:
            q = q.where(c.at >= since)
        if until is not None:
            q = q.where(c.at < until)
        async with self._store._read() as conn:
            return int((await conn.execute(q)).scalar_one())

    async def retained(self, decision_id: str) -> Retained | None:
        """The retained mail of a decision, or None (expired, never kept)."""
        async with self._store._read() as conn:
            r = (
                await conn.execute(
                    sa.select(t.retained_mail).where(t.retained_mail.c.decision_id == decision_id)
                )
            ).first()
        if r is None:
            return None
        return Retained(
            mode=r.mode, sha256=r.sha256, size=r.size, expires_at=r.expires_at, sealed=r.sealed
        )

    async def retained_many(self, decision_ids: Sequence[str]) -> dict[str, Retained]:
        """The retained mail of several decisions (those that have one)."""
        out: dict[str, Retained] = {}
        ids = list(decision_ids)
        for i in range(0, len(ids), 500):
            async with self._store._read() as conn:
                rows = (
                    await conn.execute(
                        sa.select(t.retained_mail).where(
                            t.retained_mail.c.decision_id.in_(ids[i : i + 500])
                        )
                    )
                ).all()
            for r in rows:
                out[r.decision_id] = Retained(
                    mode=r.mode,
                    sha256=r.sha256,
                    size=r.size,
                    expires_at=r.expires_at,
                    sealed=r.sealed,
                )
        return out

    async def prune(self, now: datetime, *, journal_before: datetime) -> tuple[int, int]:
        """Delete retained mail past its expiry, and journal rows older than
        ``journal_before`` that no incident refers to. Returns (retained, decisions)."""
        async with self._store._tx() as conn:
            res = await conn.execute(
                sa.delete(t.retained_mail).where(t.retained_mail.c.expires_at < now)
            )
            kept = res.rowcount or 0
            referenced = sa.select(t.incidents.c.decision_id).where(
                t.incidents.c.decision_id.is_not(None)
            )
            old = sa.select(t.decisions.c.id).where(
                t.decisions.c.at < journal_before, t.decisions.c.id.not_in(referenced)
            )
            await conn.execute(
                sa.delete(t.retained_mail).where(t.retained_mail.c.decision_id.in_(old))
            )
            res2 = await conn.execute(
                sa.delete(t.decisions).where(
                    t.decisions.c.at < journal_before, t.decisions.c.id.not_in(referenced)
                )
            )
            return kept, res2.rowcount or 0

    # ------------------------------------------------------------------ incidents

    async def create_incident(
        self, incident: IncidentRecord, *, detail: str = ""
    ) -> IncidentRecord:
        """Store a new incident with its first event (``reported`` or ``alerted``)."""
        async with self._store._tx() as conn:
            await conn.execute(
                sa.insert(t.incidents).values(
                    id=incident.id,
                    kind=incident.kind,
                    state=incident.state,
                    created_at=incident.created_at,
                    reported_by=incident.reported_by[:320],
                    via=incident.via,
                    decision_id=incident.decision_id,
                    hold_id=incident.hold_id,
                    sender=incident.sender[:320],
                    department=incident.department[:200],
                    rules=list(incident.rules),
                    note=incident.note,
                    followups=dict(incident.followups),
                )
            )
            await conn.execute(
                sa.insert(t.incident_events).values(
                    incident_id=incident.id,
                    at=incident.created_at,
                    actor=incident.reported_by[:320],
                    kind="reported" if incident.kind == "report" else "alerted",
                    detail=detail,
                )
            )
        return incident

    async def get_incident(self, incident_id: str) -> IncidentRecord | None:
        async with self._store._read() as conn:
            r = (
                await conn.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id))
            ).first()
        return _incident(r) if r is not None else None

    async def find_incident(
        self, *, decision_id: str | None = None, hold_id: str | None = None, kind: str = "report"
    ) -> IncidentRecord | None:
        """The open or closed incident of this kind already filed for a mail, if any."""
        c = t.incidents.c
        q = sa.select(t.incidents).where(c.kind == kind)
        if decision_id is not None:
            q = q.where(c.decision_id == decision_id)
        elif hold_id is not None:
            q = q.where(c.hold_id == hold_id)
        else:
            return None
        async with self._store._read() as conn:
            r = (await conn.execute(q.order_by(c.created_at).limit(1))).first()
        return _incident(r) if r is not None else None

    async def list_incidents(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 200,
    ) -> list[IncidentRecord]:
        c = t.incidents.c
        q = sa.select(t.incidents)
        if state is not None:
            q = q.where(c.state == state)
        if kind is not None:
            q = q.where(c.kind == kind)
        if since is not None:
            q = q.where(c.created_at >= since)
        q = q.order_by(c.created_at.desc()).limit(max(1, min(limit, 10000)))
        async with self._store._read() as conn:
            rows = (await conn.execute(q)).all()
        return [_incident(r) for r in rows]

    async def add_incident_event(
        self,
        incident_id: str,
        *,
        actor: str,
        kind: str,
        detail: str = "",
        at: datetime | None = None,
    ) -> None:
        async with self._store._tx() as conn:
            await conn.execute(
                sa.insert(t.incident_events).values(
                    incident_id=incident_id,
                    at=at or _now(),
                    actor=actor[:320],
                    kind=kind[:32],
                    detail=detail,
                )
            )

    async def incident_events(self, incident_id: str) -> list[IncidentEvent]:
        c = t.incident_events.c
        async with self._store._read() as conn:
            rows = (
                await conn.execute(
                    sa.select(t.incident_events)
                    .where(c.incident_id == incident_id)
                    .order_by(c.at, c.id)
                )
            ).all()
        return [IncidentEvent(at=r.at, actor=r.actor, kind=r.kind, detail=r.detail) for r in rows]

    async def set_followup(
        self, incident_id: str, key: str, *, done: bool, actor: str, at: datetime | None = None
    ) -> IncidentRecord | None:
        """Tick (or untick) a follow-up action; recorded as an event. None: no incident."""
        if key not in FOLLOWUPS:
            raise ValueError(f"unknown follow-up {key!r}; expected one of {', '.join(FOLLOWUPS)}")
        when = at or _now()
        c = t.incidents.c
        async with self._store._tx() as conn:
            r = (
                await conn.execute(sa.select(t.incidents.c.followups).where(c.id == incident_id))
            ).first()
            if r is None:
                return None
            followups = dict(r.followups or {})
            if done:
                followups[key] = {"at": when.isoformat(), "by": actor[:320]}
            else:
                followups.pop(key, None)
            await conn.execute(
                sa.update(t.incidents).where(c.id == incident_id).values(followups=followups)
            )
            await conn.execute(
                sa.insert(t.incident_events).values(
                    incident_id=incident_id,
                    at=when,
                    actor=actor[:320],
                    kind="followup" if done else "followup_undone",
                    detail=key,
                )
            )
        return await self.get_incident(incident_id)

    async def set_incident_state(
        self, incident_id: str, state: str, *, actor: str, note: str = ""
    ) -> IncidentRecord | None:
        if state not in ("open", "closed"):
            raise ValueError(f"unknown incident state {state!r}")
        c = t.incidents.c
        async with self._store._tx() as conn:
            res = await conn.execute(
                sa.update(t.incidents).where(c.id == incident_id).values(state=state)
            )
            if not res.rowcount:
                return None
            await conn.execute(
                sa.insert(t.incident_events).values(
                    incident_id=incident_id,
                    at=_now(),
                    actor=actor[:320],
                    kind="closed" if state == "closed" else "reopened",
                    detail=note,
                )
            )
        return await self.get_incident(incident_id)


def _decision_row(d: DecisionEntry) -> dict[str, Any]:
    return {
        "id": d.id,
        "at": d.at,
        "sender": d.sender[:320],
        "auth_user": d.auth_user[:320] if d.auth_user else None,
        "department": d.department[:200],
        "rcpts": [r[:320] for r in d.rcpts[:MAX_RCPTS]],
        "external_rcpts": d.external_rcpts,
        "subject": d.subject[:1000],
        "message_id": d.message_id[:300],
        "action": d.action,
        "outcome": d.outcome,
        "reply": d.reply[:200],
        "rules": list(d.rules),
        "audit_rules": list(d.audit_rules),
        "summary": dict(d.summary),
        "policy_version": d.policy_version[:64],
        "size": d.size,
        "sha256": d.sha256,
        "hold_id": d.hold_id,
        "abandoned": d.abandoned,
    }


def _decision(r: Any) -> DecisionEntry:
    return DecisionEntry(
        id=r.id,
        at=r.at,
        sender=r.sender,
        auth_user=r.auth_user,
        department=r.department or "",
        rcpts=tuple(r.rcpts or ()),
        external_rcpts=r.external_rcpts or 0,
        subject=r.subject or "",
        message_id=r.message_id or "",
        action=r.action,
        outcome=r.outcome,
        reply=r.reply or "",
        rules=tuple(r.rules or ()),
        audit_rules=tuple(r.audit_rules or ()),
        summary=dict(r.summary or {}),
        policy_version=r.policy_version or "",
        size=r.size or 0,
        sha256=r.sha256 or "",
        hold_id=r.hold_id,
        abandoned=bool(getattr(r, "abandoned", False)),
    )


def _incident(r: Any) -> IncidentRecord:
    return IncidentRecord(
        id=r.id,
        kind=r.kind,
        state=r.state,
        created_at=r.created_at,
        reported_by=r.reported_by,
        via=r.via,
        decision_id=r.decision_id,
        hold_id=r.hold_id,
        sender=r.sender or "",
        department=r.department or "",
        rules=tuple(r.rules or ()),
        note=r.note or "",
        followups=dict(r.followups or {}),
    )


def _streamed(conn: sa.Connection, kept: Retained) -> bool:
    return kept.sealed is not None and streams_blobs(conn, len(kept.sealed))
