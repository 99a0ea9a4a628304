"""``Delivery.enqueue_and_send`` (notices): queued durably already claimed by this worker,
then tried at once with the bytes in hand; the queue's guarantees hold (a failed try is
retried from the queue, a crash mid-try is recovered, nothing is sent twice)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import test_store
from test_store import _hold

from leakguard.delivery import Delivery, DeliverySettings, MemoryTransport, UpstreamError, service
from leakguard.delivery.service import SendingQueue
from leakguard.holds.model import DeliveryState
from leakguard.store import SqlStore

RAW = b"From: leakguard@city.example.lg.jp\r\nTo: a@city.example.lg.jp\r\nSubject: n\r\n\r\nx\r\n"
FROM, TO = "leakguard@city.example.lg.jp", ["alice@city.example.lg.jp"]


store = test_store.store  # the store fixture, on SQLite and PostgreSQL


def fast(**kw: object) -> DeliverySettings:
    base: dict[str, object] = dict(
        retry_base=0.05, retry_max=0.1, poll_interval=0.05, upstream_timeout=5.0
    )
    base.update(kw)
    return DeliverySettings(**base)  # type: ignore[arg-type]


async def _state(store: SqlStore, did: int, want: DeliveryState, timeout: float = 5) -> None:
    end = asyncio.get_running_loop().time() + timeout
    while True:
        rec = await store.get_delivery(did)
        assert rec is not None
        if rec.state is want:
            return
        assert asyncio.get_running_loop().time() < end, rec
        await asyncio.sleep(0.02)


async def test_sent_at_once_and_recorded_done_without_the_queue_loop(store: SqlStore) -> None:
    t = MemoryTransport()
    d = Delivery(store, t, fast(poll_interval=60))  # the loop would wait a minute
    d.start()
    try:
        await asyncio.sleep(0.1)  # the loop's first claim is done; now it sleeps
        claims = 0
        real = store.claim_deliveries

        async def counted(*a: object, **kw: object) -> object:
            nonlocal claims
            claims += 1
            return await real(*a, **kw)  # type: ignore[arg-type]

        store.claim_deliveries = counted  # type: ignore[method-assign]
        did = await SendingQueue(d).enqueue_delivery(RAW, FROM, TO, kind="notice")
        await _state(store, did, DeliveryState.DONE)
        rec = await store.get_delivery(did)
        assert rec is not None and rec.attempts == 1 and rec.kind == "notice"
        assert [m.raw for m in t.sent] == [RAW]
        assert claims == 0  # no claim query, no wake of the loop
    finally:
        await d.stop()


async def test_a_failed_first_try_is_retried_from_the_queue(store: SqlStore) -> None:
    t = MemoryTransport()
    t.fail_with = UpstreamError(451, "4.3.0 later", temporary=True)
    d = Delivery(store, t, fast())
    d.start()
    try:
        did = await d.enqueue_and_send(RAW, FROM, TO)
        await _state(store, did, DeliveryState.QUEUED)
        t.fail_with = None
        await _state(store, did, DeliveryState.DONE)
        assert len(t.sent) == 1
    finally:
        await d.stop()


async def test_a_worker_that_died_mid_try_leaves_it_to_recovery(store: SqlStore) -> None:
    # committed claimed by a worker that crashed before its try recorded anything
    rec = await store.enqueue_claimed(RAW, FROM, TO, kind="notice", worker="crashed")
    assert rec.state is DeliveryState.SENDING and rec.attempts == 1
    assert await store.claim_deliveries("other", datetime.now(UTC), 10) == []  # claimed
    t = MemoryTransport()
    # recovered once the claim's lease is over (a lone SQLite process takes every claim
    # back at start; on a shared PostgreSQL the claim may be another node's)
    d = Delivery(store, t, fast(stale_claim_after=0.5))
    d.start()
    try:
        await _state(store, rec.id, DeliveryState.DONE)
        assert len(t.sent) == 1
    finally:
        await d.stop()


async def test_a_stopped_queue_only_queues_busy_slots_keep_the_bytes_in_hand(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not started: queued for the loop. Every slot busy: committed claimed and tried, bytes
    in hand, when a slot frees (never more tries at once than slots). Past the in-hand
    backlog (``_IN_HAND_PER_SLOT`` a slot): queued for the loop."""
    monkeypatch.setattr(service, "_IN_HAND_PER_SLOT", 2)
    t = MemoryTransport()
    t.delay = 0.3
    busy = peak = 0
    real_send = t.send

    async def counted(*a: object, **kw: object) -> object:
        nonlocal busy, peak
        busy += 1
        peak = max(peak, busy)
        try:
            return await real_send(*a, **kw)  # type: ignore[arg-type]
        finally:
            busy -= 1

    t.send = counted  # type: ignore[method-assign]
    d = Delivery(store, t, fast(workers=1))
    # not started: queued for the loop, not tried
    first = await d.enqueue_and_send(RAW, FROM, TO)
    rec = await store.get_delivery(first)
    assert rec is not None and rec.state is DeliveryState.QUEUED and rec.attempts == 0
    d.start()
    try:
        await asyncio.sleep(0.1)  # the loop claimed it: its one slot is busy
        second = await d.enqueue_and_send(RAW, FROM, ["bob@city.example.lg.jp"])
        rec = await store.get_delivery(second)
        assert rec is not None and rec.state is DeliveryState.SENDING and rec.attempts == 1
        third = await d.enqueue_and_send(RAW, FROM, ["carol@city.example.lg.jp"])
        rec = await store.get_delivery(third)
        assert rec is not None and rec.state is DeliveryState.QUEUED  # backlog full
        for did in (first, second, third):
            await _state(store, did, DeliveryState.DONE)
        assert sorted(m.rcpts[0] for m in t.sent) == [
            "alice@city.example.lg.jp",
            "bob@city.example.lg.jp",
            "carol@city.example.lg.jp",
        ]
        assert peak == 1
    finally:
        await d.stop()


async def test_a_slot_is_free_while_an_accepted_send_waits_for_its_commit(
    store: SqlStore,
) -> None:
    """The slot bounds upstream sends, not the store's bookkeeping: while the first
    delivery's "done" commit waits (a busy store), the next one is sent in the one slot."""
    t = MemoryTransport()
    d = Delivery(store, t, fast(workers=1))
    release = asyncio.Event()
    real_finish = store.finish_delivery

    async def slow_finish(*a: object, **kw: object) -> object:
        if not release.is_set() and len(t.sent) == 1:
            await release.wait()
        return await real_finish(*a, **kw)  # type: ignore[arg-type]

    store.finish_delivery = slow_finish  # type: ignore[method-assign]
    d.start()
    try:
        await asyncio.sleep(0.1)
        first = await d.enqueue_and_send(RAW, FROM, TO)
        second = await d.enqueue_and_send(RAW, FROM, ["bob@city.example.lg.jp"])
        for _ in range(100):
            if len(t.sent) == 2:
                break
            await asyncio.sleep(0.02)
        assert [m.rcpts[0] for m in t.sent] == [TO[0], "bob@city.example.lg.jp"]
        rec = await store.get_delivery(first)
        assert rec is not None and rec.state is DeliveryState.SENDING  # its commit waits
        release.set()
        for did in (first, second):
            await _state(store, did, DeliveryState.DONE)
        assert len(t.sent) == 2  # each once
    finally:
        release.set()
        await d.stop()


async def test_a_try_that_waits_past_its_lease_goes_back_to_the_queue_unsent(
    store: SqlStore,
) -> None:
    """A claimed try waiting for a slot must start while its claim is safe (the lease
    minus one upstream attempt), or another node would recover the claim and send it too:
    it goes back to the queue unsent and is sent from there."""
    t = MemoryTransport()
    t.delay = 1.0
    d = Delivery(store, t, fast(workers=1, stale_claim_after=2.4, upstream_timeout=2.0))
    d.start()
    try:
        await asyncio.sleep(0.1)
        first = await d.enqueue_and_send(RAW, FROM, TO)
        second = await d.enqueue_and_send(RAW, FROM, ["bob@city.example.lg.jp"])
        await asyncio.sleep(0.5)  # waited 0.2 s for the slot, then gave the claim back
        rec = await store.get_delivery(second)
        assert rec is not None and rec.state is DeliveryState.QUEUED
        assert "no delivery slot" in rec.last_error
        assert [m.rcpts[0] for m in t.sent] == []
        t.delay = 0.0
        for did in (first, second):
            await _state(store, did, DeliveryState.DONE)
        assert sorted(m.rcpts[0] for m in t.sent) == [
            "alice@city.example.lg.jp",
            "bob@city.example.lg.jp",
        ]
    finally:
        await d.stop()


async def test_a_once_notice_goes_once_and_at_once(store: SqlStore) -> None:
    """Hold notices that go once per hold and person (timers on several workers may both
    try): the second try queues nothing; the first is sent at once, its note on the
    timeline in the same commit."""
    hold = _hold()
    await store.create_hold(hold, b"Subject: x\r\n\r\nbody\r\n")
    t = MemoryTransport()
    d = Delivery(store, t, fast(poll_interval=60))
    d.start()
    try:
        await asyncio.sleep(0.1)
        note = "notice first sent to alice@city.example.lg.jp"
        first = await d.enqueue_and_send(
            RAW, FROM, TO, kind="notice", hold_id=hold.id, note=note, once=True
        )
        again = await d.enqueue_and_send(
            RAW, FROM, TO, kind="notice", hold_id=hold.id, note=note, once=True
        )
        assert first is not None and again is None
        await _state(store, first, DeliveryState.DONE)
        assert len(t.sent) == 1
        assert [tr.note for tr in await store.timeline(hold.id)].count(note) == 1
    finally:
        await d.stop()
