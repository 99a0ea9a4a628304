"""The SQL store against SQLite (always) and the local PostgreSQL (marker ``postgres``)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc

from leakguard.holds.model import (
    DeliveryState,
    HoldRecord,
    HoldState,
    Store,
    TokenRecord,
    Via,
)
from leakguard.store import SqlStore, backoff, open_store, sha256_hex, sqlite_url

PG_ADMIN_DSN = os.environ.get("LEAKGUARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _pg_store() -> AsyncIterator[SqlStore]:
    asyncpg = pytest.importorskip("asyncpg")
    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:  # pragma: no cover - environment
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    name = f"lg_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    store = await open_store(f"{base}/{name}")
    try:
        yield store
    finally:
        await store.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    if request.param == "sqlite":
        s = await open_store(sqlite_url(tmp_path / "lg.db"))
        try:
            yield s
        finally:
            await s.close()
    else:
        async for s in _pg_store():
            yield s


def _hold(
    hold_id: str = "H-TEST0001",
    *,
    raw: bytes = b"Subject: x\r\n\r\nbody\r\n",
    state: HoldState = HoldState.HELD,
    **kw: object,
) -> HoldRecord:
    now = datetime.now(UTC)
    fields: dict[str, object] = dict(
        id=hold_id,
        state=state,
        created_at=now,
        expires_at=now + timedelta(hours=72),
        due_at=None,
        escalate_at=None,
        message_sha256=sha256_hex(raw),
        mail_from="alice@city.example.lg.jp",
        rcpts=("bob@partner.example.co.jp", "carol@city.example.lg.jp"),
        auth_user="alice@city.example.lg.jp",
        subject="見積書",
        action="hold",
        rules=("lookalike", "forwarded-third-party"),
        verdict_json='{"action": "hold"}',
        approvers=(),
        offer_bcc=True,
        language="ja",
    )
    fields.update(kw)
    return HoldRecord(**fields)  # type: ignore[arg-type]


async def test_retry_lookup_finds_the_one_envelope_among_same_bytes(store: SqlStore) -> None:
    """Retry recognition: the same bytes and sender to other recipients are other mails
    (a form system, a mail merge); only the same envelope, in any order and case, within
    the window is the retry. One indexed key, however many holds share the bytes."""
    raw = b"Subject: form\r\n\r\nsame bytes\r\n"
    since = datetime.now(UTC) - timedelta(minutes=10)
    for i in range(30):
        await store.create_hold(_hold(f"H-SAME{i:04d}", raw=raw, rcpts=(f"r{i}@x.example",)), raw)
    digest = sha256_hex(raw)
    sender = "alice@city.example.lg.jp"
    found = await store.recent_hold_for(digest, sender, ["R7@X.example"], since)
    assert found is not None and found.id == "H-SAME0007"
    assert (
        await store.recent_hold_for(digest, sender, ["r7@x.example", "r8@x.example"], since) is None
    )
    assert (
        await store.recent_hold_for(digest, "other@city.example.lg.jp", ["r7@x.example"], since)
        is None
    )
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert await store.recent_hold_for(digest, sender, ["r7@x.example"], later) is None
    two = _hold("H-TWO", raw=raw, rcpts=("b@y.example", "a@y.example"))
    await store.create_hold(two, raw)
    found = await store.recent_hold_for(digest, sender, ["A@y.example", "b@Y.example"], since)
    assert found is not None and found.id == "H-TWO"


async def test_timelines_of_several_holds_in_one_read(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timers read the timelines of every hold that came of age in one go: each hold's
    own transitions, in order, across query chunks; unknown ids are simply absent."""
    from leakguard.store import sql

    monkeypatch.setattr(sql, "_IDS_PER_QUERY", 2)
    ids = [f"H-TL{i:04d}" for i in range(5)]
    for i, hid in enumerate(ids):
        raw = b"Subject: t\r\n\r\n%d\r\n" % i
        await store.create_hold(_hold(hid, raw=raw), raw)
        for n in range(i):
            await store.record_event(hid, actor="system", via=Via.RELAY, note=f"n{n}")
    got = await store.timelines([*ids, "H-NONE", ids[0]])
    assert set(got) == set(ids)
    for i, hid in enumerate(ids):
        assert [tr.note for tr in got[hid]] == ["", *(f"n{n}" for n in range(i))]
        assert all(tr.hold_id == hid for tr in got[hid])
        assert got[hid] == await store.timeline(hid)
    assert await store.timelines([]) == {}


async def test_satisfies_protocol(store: SqlStore) -> None:
    s: Store = store  # mypy checks the structural type; runtime checks a round trip
    assert await s.queue_depth() == 0


async def test_message_stored_once_by_hash(store: SqlStore) -> None:
    raw = b"Subject: a\r\n\r\n\x00\xff binary \r\n"
    d1 = await store.put_message(raw)
    d2 = await store.put_message(raw)
    assert d1 == d2 == sha256_hex(raw)
    assert await store.get_message(d1) == raw
    with pytest.raises(KeyError):
        await store.get_message("0" * 64)


async def test_hold_roundtrip_and_filters(store: SqlStore) -> None:
    raw = b"Subject: x\r\n\r\nbody\r\n"
    created = await store.create_hold(_hold(raw=raw), raw)
    assert created.id == "H-TEST0001"
    assert created.state is HoldState.HELD
    assert created.rcpts == ("bob@partner.example.co.jp", "carol@city.example.lg.jp")
    assert created.rules == ("lookalike", "forwarded-third-party")
    assert created.subject == "見積書"
    assert created.created_at.tzinfo is not None
    assert await store.get_message(created.message_sha256) == raw
    other = b"Subject: y\r\n\r\n"
    await store.create_hold(
        _hold("H-TEST0002", raw=other, mail_from="dave@city.example.lg.jp", rules=("bulk",)),
        other,
    )
    assert [h.id for h in await store.list_holds(sender="ALICE@city.example.lg.jp")] == [
        "H-TEST0001"
    ]
    assert [h.id for h in await store.list_holds(rule="bulk")] == ["H-TEST0002"]
    assert len(await store.list_holds(states=[HoldState.HELD])) == 2
    assert await store.list_holds(states=[HoldState.RELEASED]) == []
    assert len(await store.list_holds(limit=1)) == 1
    assert await store.get_hold("nope") is None
    tl = await store.timeline("H-TEST0001")
    assert len(tl) == 1 and tl[0].from_state is None and tl[0].to_state is HoldState.HELD


async def test_transition_is_compare_and_set_and_queues_delivery(store: SqlStore) -> None:
    raw = b"Subject: x\r\n\r\nbody\r\n"
    await store.create_hold(_hold(raw=raw), raw)
    results = await asyncio.gather(
        *(
            store.transition(
                "H-TEST0001",
                from_states=[HoldState.HELD],
                to_state=HoldState.RELEASED,
                actor=f"actor{i}",
                via=Via.WEB,
                deliver=(raw, "alice@city.example.lg.jp", ["bob@partner.example.co.jp"]),
            )
            for i in range(5)
        )
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].state is HoldState.RELEASED
    # exactly one delivery queued, linked to the hold
    assert await store.queue_depth() == 1
    (d,) = await store.list_deliveries()
    assert d.hold_id == "H-TEST0001" and d.rcpts == ("bob@partner.example.co.jp",)
    # a second answer after the first is refused
    again = await store.transition(
        "H-TEST0001",
        from_states=[HoldState.HELD],
        to_state=HoldState.DISCARDED,
        actor="x",
        via=Via.CLI,
    )
    assert again is None
    tl = await store.timeline("H-TEST0001")
    assert [x.to_state for x in tl] == [HoldState.HELD, HoldState.RELEASED]
    await store.record_event("H-TEST0001", actor="system", via=Via.TIMER, note="notice sent")
    tl = await store.timeline("H-TEST0001")
    assert tl[-1].to_state is None and tl[-1].note == "notice sent"
    assert (
        await store.transition(
            "missing",
            from_states=[HoldState.HELD],
            to_state=HoldState.RELEASED,
            actor="x",
            via=Via.CLI,
        )
        is None
    )


async def test_due_holds(store: SqlStore) -> None:
    now = datetime.now(UTC)
    raw = b"x"
    await store.create_hold(
        _hold("H-DUE", raw=raw, state=HoldState.DELAYED, due_at=now - timedelta(seconds=1)), raw
    )
    await store.create_hold(_hold("H-EXP", raw=raw, expires_at=now - timedelta(seconds=1)), raw)
    await store.create_hold(_hold("H-ESC", raw=raw, escalate_at=now - timedelta(seconds=1)), raw)
    await store.create_hold(_hold("H-LATER", raw=raw, due_at=now + timedelta(hours=1)), raw)
    assert {h.id for h in await store.due_holds(now)} == {"H-DUE", "H-EXP", "H-ESC"}
    assert await store.set_escalated("H-ESC", ["deputy@city.example.lg.jp"])
    assert not await store.set_escalated("H-ESC", ["other@city.example.lg.jp"])  # once
    esc = await store.get_hold("H-ESC")
    assert esc is not None and esc.escalated and esc.approvers == ("deputy@city.example.lg.jp",)
    assert {h.id for h in await store.due_holds(now)} == {"H-DUE", "H-EXP"}
    await store.transition(
        "H-DUE",
        from_states=[HoldState.DELAYED],
        to_state=HoldState.RELEASED,
        actor="system",
        via=Via.TIMER,
    )
    assert {h.id for h in await store.due_holds(now)} == {"H-EXP"}


async def test_tokens_single_use_and_expiry(store: SqlStore) -> None:
    raw = b"x"
    await store.create_hold(_hold(raw=raw), raw)
    now = datetime.now(UTC)
    await store.add_token(
        TokenRecord("a" * 64, "H-TEST0001", "alice@x", now + timedelta(hours=1), None)
    )
    await store.add_token(
        TokenRecord("b" * 64, "H-TEST0001", "alice@x", now - timedelta(seconds=1), None)
    )
    assert (await store.peek_token("a" * 64, now)) is not None
    got = await asyncio.gather(*(store.use_token("a" * 64, now) for _ in range(4)))
    assert sum(g is not None for g in got) == 1
    used = next(g for g in got if g is not None)
    assert used.used_at is not None and used.hold_id == "H-TEST0001"
    assert await store.use_token("a" * 64, now) is None
    assert await store.peek_token("a" * 64, now) is None
    assert await store.use_token("b" * 64, now) is None  # expired
    assert await store.use_token("c" * 64, now) is None  # unknown


async def test_delivery_claims_are_exclusive(store: SqlStore) -> None:
    ids = [
        await store.enqueue_delivery(f"m{i}".encode(), "a@x.jp", [f"r{i}@y.jp"], kind="notice")
        for i in range(20)
    ]
    assert await store.queue_depth() == 20
    now = datetime.now(UTC)
    batches = await asyncio.gather(*(store.claim_deliveries(f"w{i}", now, 7) for i in range(6)))
    claimed = [d.id for b in batches for d in b]
    assert sorted(claimed) == sorted(ids)  # all claimed, none twice
    assert all(d.state is DeliveryState.SENDING and d.attempts == 1 for b in batches for d in b)
    assert await store.claim_deliveries("late", now, 10) == []
    first = ids[0]
    await store.finish_delivery(first, state=DeliveryState.DONE)
    await store.retry_delivery(ids[1], next_attempt_at=now + timedelta(minutes=5), error="451 busy")
    assert await store.claim_deliveries("w", now, 10) == []  # not due yet
    again = await store.claim_deliveries("w", now + timedelta(minutes=6), 10)
    assert [d.id for d in again] == [ids[1]]
    assert again[0].attempts == 2 and again[0].last_error == "451 busy"
    assert await store.queue_depth() == 19
    d0 = await store.get_delivery(first)
    assert d0 is not None and d0.state is DeliveryState.DONE


async def test_recover_deliveries_after_crash(store: SqlStore) -> None:
    did = await store.enqueue_delivery(b"m", "a@x.jp", ["r@y.jp"])
    now = datetime.now(UTC)
    assert [d.id for d in await store.claim_deliveries("dead-worker", now, 5)] == [did]
    assert await store.recover_deliveries(claimed_before=now - timedelta(seconds=1)) == 0
    assert await store.recover_deliveries(claimed_before=now + timedelta(seconds=1)) == 1
    (d,) = await store.claim_deliveries("new-worker", now + timedelta(seconds=1), 5)
    assert d.id == did and d.attempts == 2
    await store.update_delivery_rcpts(did, ["only@y.jp"])
    got = await store.get_delivery(did)
    assert got is not None and got.rcpts == ("only@y.jp",)


async def test_enqueue_with_a_note_commits_both_or_neither(store: SqlStore) -> None:
    # a hold notice and its "sent" record are one commit: a crash between two commits left
    # a queued notice without its record, and the timers sent it again (fault suite)
    raw = b"Subject: x\r\n\r\nbody\r\n"
    await store.create_hold(_hold(raw=raw), raw)
    await store.enqueue_delivery(
        b"n", "lg@x.jp", ["s@x.jp"], kind="notice", hold_id="H-TEST0001", note="n sent to s"
    )
    assert [tr.note for tr in await store.timeline("H-TEST0001")][-1] == "n sent to s"
    assert await store.queue_depth() == 1
    with pytest.raises(sa_exc.IntegrityError):  # transitions.hold_id references holds
        await store.enqueue_delivery(
            b"n", "lg@x.jp", ["s@x.jp"], kind="notice", hold_id="H-NONE", note="n sent to s"
        )
    assert await store.queue_depth() == 1  # the delivery was rolled back with the note


async def test_enqueue_not_before(store: SqlStore) -> None:
    now = datetime.now(UTC)
    await store.enqueue_delivery(b"m", "a@x.jp", ["r@y.jp"], not_before=now + timedelta(hours=1))
    assert await store.claim_deliveries("w", now, 5) == []
    assert len(await store.claim_deliveries("w", now + timedelta(hours=2), 5)) == 1


async def test_sender_history(store: SqlStore) -> None:
    assert await store.sender_history("alice@x.jp") == (frozenset(), {})
    await store.record_sent("Alice@X.jp", [("Bob@Partner.jp", "Bob Smith"), ("c@y.jp", "")])
    await store.record_sent(
        "alice@x.jp", [("bob@partner.jp", "山田 太郎"), ("bob@partner.jp", "Bob Smith")]
    )
    rcpts, names = await store.sender_history("ALICE@x.jp")
    assert rcpts == frozenset({"bob@partner.jp", "c@y.jp"})
    assert set(names["bob@partner.jp"]) == {"Bob Smith", "山田 太郎"}
    assert "c@y.jp" not in names
    assert await store.sender_history("other@x.jp") == (frozenset(), {})


async def test_sqlite_is_wal_and_durable(tmp_path: Path) -> None:
    s = await open_store(sqlite_url(tmp_path / "d.db"))
    try:
        async with s._engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
            sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar_one()
        assert mode == "wal"
        assert sync == 2  # FULL
        did = await s.enqueue_delivery(b"persist", "a@x.jp", ["b@y.jp"])
    finally:
        await s.close()
    s2 = await open_store(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        d = await s2.get_delivery(did)
        assert d is not None and await s2.get_message(d.message_sha256) == b"persist"
    finally:
        await s2.close()


def test_backoff_grows_and_caps() -> None:
    assert backoff(1).total_seconds() == 60
    assert backoff(2).total_seconds() == 120
    assert backoff(30).total_seconds() == 3600


async def test_naive_datetime_refused(store: SqlStore) -> None:
    with pytest.raises(Exception, match="naive"):
        await store.claim_deliveries("w", datetime.now(), 1)


async def test_a_failed_delivery_and_its_dsn_are_one_commit(store: SqlStore) -> None:
    """The failure and the sender's bounce are written together: no crash between them
    can record a failed mail whose sender is never told."""
    did = await store.enqueue_delivery(
        b"Subject: x\r\n\r\nbody\r\n", "a@city.example.lg.jp", ["b@x.example"]
    )
    dsn_id = await store.finish_delivery(
        did,
        state=DeliveryState.FAILED,
        error="550 no",
        dsn=b"DSN\r\n",
        dsn_to="a@city.example.lg.jp",
    )
    assert dsn_id is not None
    got = {d.id: d for d in await store.list_deliveries()}
    assert got[did].state is DeliveryState.FAILED
    assert got[dsn_id].kind == "dsn" and got[dsn_id].mail_from == ""
    assert got[dsn_id].rcpts == ("a@city.example.lg.jp",)
    # without a DSN (a notice, a null sender) nothing else is queued
    other = await store.enqueue_delivery(b"x", "", ["c@x.example"], kind="notice")
    assert await store.finish_delivery(other, state=DeliveryState.FAILED, error="no") is None
    assert len(await store.list_deliveries()) == 3


async def test_store_thread_keeps_one_connection_and_ends_every_read(tmp_path: Path) -> None:
    """SQLite: the store's thread keeps one connection open across transactions (no pool
    checkout per transaction); a read's snapshot ends with the read, so another
    process's commit is seen by the next one; a connection SQLAlchemy invalidated (a
    disconnect) is replaced."""
    url = sqlite_url(tmp_path / "lg.db")
    store = await open_store(url)
    other = await open_store(url)  # another worker process on the same file
    try:
        assert await store.get_hold("H-LATER") is None  # a read in the store's thread
        conn = store._sync_conn
        assert conn is not None and not conn.in_transaction()
        raw = b"Subject: x\r\n\r\nbody\r\n"
        await store.create_hold(_hold("H-MINE", raw=raw), raw)  # a write
        assert store._sync_conn is conn
        await other.create_hold(_hold("H-LATER", raw=raw), raw)
        later = await store.get_hold("H-LATER")
        assert later is not None and store._sync_conn is conn
        conn.invalidate()
        assert await store.get_hold("H-MINE") is not None
        assert store._sync_conn is not None and store._sync_conn is not conn
    finally:
        await other.close()
        await store.close()
    assert store._sync_conn is None


async def test_concurrent_writes_commit_together_and_a_failure_stays_its_own(
    tmp_path: Path,
) -> None:
    """SQLite group commit: write transactions that arrive together share one commit,
    each caller answered after it; one body that fails (a duplicate hold id) fails alone,
    the others in its group are committed; every answer is the caller's own."""
    from leakguard.store import sql

    store = await open_store(sqlite_url(tmp_path / "lg.db"))
    groups: list[int] = []
    real = store._run_group

    def counted(bodies: list[object]) -> list[tuple[bool, object]]:
        groups.append(len(bodies))
        return real(bodies)  # type: ignore[arg-type]

    store._run_group = counted  # type: ignore[method-assign]
    try:
        raw = b"Subject: g\r\n\r\nbody\r\n"
        await store.create_hold(_hold("H-DUP", raw=raw), raw)
        groups.clear()
        holds = [_hold(f"H-G{i:03d}", raw=raw, rcpts=(f"r{i}@x.example",)) for i in range(30)]
        results = await asyncio.gather(
            *(store.create_hold(h, raw) for h in holds[:15]),
            store.create_hold(_hold("H-DUP", raw=raw), raw),
            *(store.create_hold(h, raw) for h in holds[15:]),
            return_exceptions=True,
        )
        assert isinstance(results[15], sa_exc.IntegrityError)
        ok = [r for i, r in enumerate(results) if i != 15]
        assert [r.id for r in ok] == [h.id for h in holds]  # type: ignore[union-attr]
        assert max(groups) > 1 and sum(groups) >= 31  # grouped, then run alone once
        for h in holds:
            assert await store.get_hold(h.id) is not None
        assert sql._GROUP_MAX >= 2
    finally:
        await store.close()


async def test_a_failed_commit_answers_every_caller_of_its_group_with_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit of a group fails (a full disk), and so does every commit of its bodies
    run alone: every caller gets an error, none an answer for writes that were not
    committed (the fault suite's full disk found a 250 for a hold that was not stored
    when a failed commit's body was counted twice)."""
    import sqlite3

    store = await open_store(sqlite_url(tmp_path / "lg.db"))
    assert store._sync_engine is not None
    dialect = store._sync_engine.dialect
    real = dialect.do_commit
    failing = True

    def commit(dbapi_conn: object) -> None:
        if failing:
            raise sqlite3.OperationalError("database or disk is full")
        real(dbapi_conn)

    monkeypatch.setattr(dialect, "do_commit", commit)
    try:
        raw = b"Subject: f\r\n\r\nbody\r\n"
        holds = [_hold(f"H-F{i:03d}", raw=raw, rcpts=(f"r{i}@x.example",)) for i in range(12)]
        results = await asyncio.gather(
            *(store.create_hold(h, raw) for h in holds), return_exceptions=True
        )
        assert all(isinstance(r, sa_exc.OperationalError) for r in results), results
        failing = False
        for h in holds:
            assert await store.get_hold(h.id) is None
        stored = await store.create_hold(holds[0], raw)  # the disk has room again
        assert stored.id == holds[0].id and await store.get_hold(holds[0].id) is not None
    finally:
        await store.close()
