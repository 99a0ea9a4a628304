"""Several relays sharing one store (issue 11, "Several hosts"): delivery lease and node
identity, fenced updates, escalation and notices once, shared settings and logouts.

Run against SQLite and the local PostgreSQL (marker ``postgres``), where two ``SqlStore``
objects on one database stand for two hosts (two connection pools).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_store import _hold, _pg_store

from leakguard.delivery import Delivery, DeliverySettings
from leakguard.delivery.transport import MemoryTransport
from leakguard.holds.model import DeliveryState, HoldState, Via
from leakguard.store import SqlStore, open_store, sqlite_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def two(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    """Two stores (two "nodes") on one database."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "lg.db")
        a = await open_store(url)
        b = await open_store(url)
        try:
            yield a, b
        finally:
            await a.close()
            await b.close()
        return
    async for a in _pg_store():
        b = await open_store(a._engine.url.render_as_string(hide_password=False))
        try:
            yield a, b
        finally:
            await b.close()


async def _age_claim(store: SqlStore, did: int, seconds: float) -> None:
    """Pretend the claim on ``did`` was made ``seconds`` ago (a host that died then)."""
    import sqlalchemy as sa

    from leakguard.store import schema

    c = schema.deliveries.c
    async with store._tx() as conn:
        await conn.execute(
            sa.update(schema.deliveries)
            .where(c.id == did)
            .values(claimed_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )


def _delivery(store: SqlStore, node: str | None, transport: MemoryTransport) -> Delivery:
    return Delivery(
        store,
        transport,
        DeliverySettings(poll_interval=0.05, stale_claim_after=600, retry_base=0.01),
        worker_id=node,
    )


async def test_a_restarting_node_takes_back_only_its_own_deliveries(
    two: tuple[SqlStore, SqlStore],
) -> None:
    a, b = two
    mine = await a.enqueue_delivery(b"Subject: a\r\n\r\nx\r\n", "s@x.jp", ["r@y.jp"])
    theirs = await b.enqueue_delivery(b"Subject: b\r\n\r\nx\r\n", "s@x.jp", ["r@y.jp"])
    now = datetime.now(UTC)
    assert [d.id for d in await a.claim_deliveries("host-a:1", now, 1)] == [mine]
    assert [d.id for d in await b.claim_deliveries("host-b:2", now, 1)] == [theirs]
    # node A restarts: it recovers what it claimed itself, not B's delivery in flight
    restarted = _delivery(a, "host-a:1", MemoryTransport())
    assert await restarted.recover(startup=True) == 1
    assert (await a.get_delivery(mine)).state is DeliveryState.QUEUED  # type: ignore[union-attr]
    assert (await a.get_delivery(theirs)).state is DeliveryState.SENDING  # type: ignore[union-attr]


async def test_a_dead_hosts_claims_are_taken_back_after_the_lease(
    two: tuple[SqlStore, SqlStore],
) -> None:
    a, b = two
    did = await a.enqueue_delivery(b"Subject: a\r\n\r\nx\r\n", "s@x.jp", ["r@y.jp"])
    assert [d.id for d in await a.claim_deliveries("dead-host:1", datetime.now(UTC), 1)] == [did]
    await _age_claim(a, did, 601)
    fresh = await a.enqueue_delivery(b"Subject: f\r\n\r\nx\r\n", "s@x.jp", ["r@y.jp"])
    assert [d.id for d in await a.claim_deliveries("live-host:1", datetime.now(UTC), 1)] == [fresh]
    node_b = _delivery(b, "host-b:2", MemoryTransport())
    assert await node_b.recover() == 1  # the stale one only; the live host's stays its own
    assert (await b.get_delivery(did)).state is DeliveryState.QUEUED  # type: ignore[union-attr]
    assert (await b.get_delivery(fresh)).state is DeliveryState.SENDING  # type: ignore[union-attr]


async def test_a_node_that_lost_its_lease_cannot_requeue_or_close_the_delivery(
    two: tuple[SqlStore, SqlStore],
) -> None:
    a, b = two
    did = await a.enqueue_delivery(b"Subject: a\r\n\r\nx\r\n", "s@x.jp", ["r@y.jp", "q@y.jp"])
    await a.claim_deliveries("slow-host", datetime.now(UTC), 1)
    await _age_claim(a, did, 3600)
    assert await b.recover_deliveries(claimed_before=datetime.now(UTC) - timedelta(minutes=10))
    (d,) = await b.claim_deliveries("host-b", datetime.now(UTC), 1)
    assert d.id == did
    # the slow node comes back: none of its writes touches B's claim
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert not await a.retry_delivery(did, next_attempt_at=later, error="x", worker="slow-host")
    assert not await a.update_delivery_rcpts(did, ["q@y.jp"], worker="slow-host")
    dsn = b"Subject: dsn\r\n\r\nx\r\n"
    assert (
        await a.finish_delivery(
            did, state=DeliveryState.FAILED, dsn=dsn, dsn_to="s@x.jp", worker="slow-host"
        )
        is None
    )
    got = await b.get_delivery(did)
    assert got is not None and got.state is DeliveryState.SENDING and len(got.rcpts) == 2
    assert await b.queue_depth() == 1  # no DSN was queued by the slow node
    assert await b.retry_delivery(did, next_attempt_at=later, error="451", worker="host-b")


async def test_a_delivery_is_claimed_and_sent_once_by_two_nodes(
    two: tuple[SqlStore, SqlStore],
) -> None:
    a, b = two
    ids = [
        await a.enqueue_delivery(f"Subject: {i}\r\n\r\nx\r\n".encode(), "s@x.jp", [f"r{i}@y.jp"])
        for i in range(30)
    ]
    ta, tb = MemoryTransport(), MemoryTransport()
    da, db = _delivery(a, "host-a:1", ta), _delivery(b, "host-b:1", tb)
    da.start()
    db.start()
    try:
        for _ in range(200):
            if len(ta.sent) + len(tb.sent) >= len(ids) and await a.queue_depth() == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await da.stop()
        await db.stop()
    rcpts = [tuple(m.rcpts) for m in [*ta.sent, *tb.sent]]
    assert sorted(rcpts) == sorted((f"r{i}@y.jp",) for i in range(30))  # each once


async def test_escalation_is_claimed_once(two: tuple[SqlStore, SqlStore]) -> None:
    a, b = two
    raw = b"Subject: x\r\n\r\nbody\r\n"
    await a.create_hold(_hold("H-ESC1", raw=raw), raw)
    won = await asyncio.gather(
        *(s.set_escalated("H-ESC1", ["deputy@city.example.lg.jp"]) for s in (a, b, a, b))
    )
    assert sorted(won) == [False, False, False, True]
    await a.transition(
        "H-ESC1",
        from_states=[HoldState.HELD],
        to_state=HoldState.DISCARDED,
        actor="x",
        via=Via.WEB,
    )
    await a.create_hold(_hold("H-ESC2", raw=raw, state=HoldState.HELD), raw)
    await a.transition(
        "H-ESC2", from_states=[HoldState.HELD], to_state=HoldState.EXPIRED, actor="t", via=Via.TIMER
    )
    assert not await b.set_escalated("H-ESC2", ["d@x.jp"])  # closed: nobody escalates


async def test_a_notice_is_queued_once_by_two_nodes(two: tuple[SqlStore, SqlStore]) -> None:
    a, b = two
    raw = b"Subject: x\r\n\r\nbody\r\n"
    await a.create_hold(_hold("H-ONCE", raw=raw), raw)
    note = "notice held sent to alice@city.example.lg.jp"
    got = await asyncio.gather(
        *(
            s.enqueue_once(
                b"Subject: notice\r\n\r\nx\r\n",
                "lg@x.jp",
                ["alice@city.example.lg.jp"],
                kind="notice",
                hold_id="H-ONCE",
                note=note,
            )
            for s in (a, b, a, b, a, b)
        )
    )
    assert sum(g is not None for g in got) == 1
    assert await a.queue_depth() == 1
    assert [t.note for t in await b.timeline("H-ONCE")].count(note) == 1


async def test_settled_values_and_logouts_are_shared(two: tuple[SqlStore, SqlStore]) -> None:
    a, b = two
    first = await asyncio.gather(a.settle_value("k", "one"), b.settle_value("k", "two"))
    assert first[0] == first[1] in ("one", "two")
    assert await a.settle_value("k", "three") == first[0]
    until = datetime.now(UTC) + timedelta(hours=8)
    assert not await b.session_revoked("sess-1")
    await a.revoke_session("sess-1", until)
    await b.revoke_session("sess-1", until)  # twice (two nodes): fine
    assert await b.session_revoked("sess-1")
    # expired revocations are pruned by the next logout
    await a.revoke_session("sess-old", datetime.now(UTC) - timedelta(seconds=1))
    await a.revoke_session("sess-2", until)
    assert not await b.session_revoked("sess-old")
    assert await b.session_revoked("sess-2")
