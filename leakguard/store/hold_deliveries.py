"""Deliveries queued for a hold, with when they finished (the incident record's "when was it
delivered"). A read of the ``deliveries`` table; part of the one data-access module."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from leakguard.store import schema as t

if TYPE_CHECKING:
    from leakguard.store.sql import SqlStore


@dataclass(frozen=True, slots=True)
class HoldDelivery:
    id: int
    kind: str  # "mail" (the released mail), "notice", "dsn"
    state: str  # queued, sending, done, failed
    rcpts: tuple[str, ...]
    attempts: int
    created_at: datetime
    finished_at: datetime | None
    last_error: str


async def hold_deliveries(
    store: SqlStore, hold_id: str, *, kind: str | None = "mail", limit: int = 200
) -> list[HoldDelivery]:
    c = t.deliveries.c
    q = sa.select(t.deliveries).where(c.hold_id == hold_id)
    if kind is not None:
        q = q.where(c.kind == kind)
    q = q.order_by(c.id).limit(max(1, limit))
    async with store._read() as conn:
        rows = (await conn.execute(q)).all()
    return [
        HoldDelivery(
            id=r.id,
            kind=r.kind,
            state=r.state,
            rcpts=tuple(r.rcpts or ()),
            attempts=r.attempts or 0,
            created_at=r.created_at,
            finished_at=r.finished_at,
            last_error=r.last_error or "",
        )
        for r in rows
    ]
