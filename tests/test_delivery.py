"""Delivery: the synchronous relay contract, the durable queue, DSNs and the transports."""

from __future__ import annotations

import asyncio
import email
import ssl
from email.policy import default as default_policy
from pathlib import Path

import pytest
import trustme
from e2e.sink import Sink
from loops import event_loop_policy  # noqa: F401  (both event loops)

from leakguard.delivery import (
    Delivery,
    DeliverySettings,
    MemoryTransport,
    Reply,
    SendOptions,
    UpstreamError,
)
from leakguard.delivery.dsn import build_dsn, status_of
from leakguard.delivery.maildir import MaildirTransport
from leakguard.delivery.service import mirror
from leakguard.delivery.smtp import SmtpTransport, client_tls_context
from leakguard.holds.model import DeliveryState
from leakguard.store import SqlStore

RAW = (
    b"From: Alice <alice@city.example.lg.jp>\r\n"
    b"To: Bob <bob@partner.example.co.jp>, carol@city.example.lg.jp\r\n"
    b"Subject: =?UTF-8?B?6KaL56mN5pu4?=\r\n"
    b"\r\n"
    b"body \xe3\x81\x82 8-bit\r\n.leading dot\r\n"
)
SENDER = "alice@city.example.lg.jp"
RCPTS = ["bob@partner.example.co.jp", "carol@city.example.lg.jp"]


def fast(**kw: object) -> DeliverySettings:
    base: dict[str, object] = dict(
        retry_base=0.05,
        retry_max=0.1,
        poll_interval=0.05,
        upstream_timeout=5.0,
        hostname="relay.test",
    )
    base.update(kw)
    return DeliverySettings(**base)  # type: ignore[arg-type]


async def test_deliver_now_success_records_history(store: SqlStore) -> None:
    t = MemoryTransport()
    d = Delivery(store, t, fast())
    out = await d.deliver_now(
        RAW, SENDER, RCPTS, history=(SENDER, {"bob@partner.example.co.jp": "Bob"})
    )
    assert out.reply.startswith("250 2.0.0")
    assert t.sent[0].raw == RAW and list(t.sent[0].rcpts) == RCPTS
    assert t.sent[0].options == SendOptions(smtputf8=False, eightbit=True)
    rcpts, names = await store.sender_history(SENDER)
    assert rcpts == {r.lower() for r in RCPTS}
    assert names["bob@partner.example.co.jp"] == ("Bob",)
    assert await store.queue_depth() == 0


async def test_temporary_failure_451_or_queued(store: SqlStore) -> None:
    t = MemoryTransport()
    t.fail_with = UpstreamError(421, "4.3.2 shutting down", temporary=True)
    out = await Delivery(store, t, fast()).deliver_now(RAW, SENDER, RCPTS)
    assert out.reply.startswith("451 4.3.2 ") and "shutting down" in out.reply
    assert await store.queue_depth() == 0
    out = await Delivery(store, t, fast(queue_on_temporary_failure=True)).deliver_now(
        RAW, SENDER, RCPTS
    )
    assert out.reply.startswith("250 2.0.0 queued as Q") and out.queued_id is not None
    (q,) = await store.list_deliveries()
    assert q.rcpts == tuple(RCPTS) and await store.get_message(q.message_sha256) == RAW
    # no history for mail that has not gone out yet
    assert await store.sender_history(SENDER) == (frozenset(), {})


async def test_permanent_failure_mirrors_text(store: SqlStore) -> None:
    t = MemoryTransport()
    t.fail_with = UpstreamError(550, "5.7.1 relay not permitted", temporary=False)
    out = await Delivery(store, t, fast()).deliver_now(RAW, SENDER, RCPTS)
    assert out.reply == "554 5.7.1 upstream: 550 relay not permitted"
    assert (
        mirror(552, "message\r\ntoo big", temporary=False)
        == "554 5.0.0 upstream: 552 message too big"
    )
    assert mirror(450, "mailbox busy", temporary=True).startswith("451 4.4.0 ")


async def test_partial_refusal_dsn_and_retry(store: SqlStore) -> None:
    t = MemoryTransport()
    t.refuse = {
        "bob@partner.example.co.jp": Reply(550, "5.1.1 no such user"),
        "dan@partner.example.co.jp": Reply(450, "4.2.1 mailbox busy"),
    }
    d = Delivery(store, t, fast())
    out = await d.deliver_now(RAW, SENDER, [*RCPTS, "dan@partner.example.co.jp"])
    assert out.reply.startswith("250 ")
    assert out.accepted == ("carol@city.example.lg.jp",)
    queued = await store.list_deliveries()
    kinds = sorted((q.kind, q.rcpts) for q in queued)
    assert kinds == [("dsn", (SENDER,)), ("mail", ("dan@partner.example.co.jp",))]
    dsn_rec = next(q for q in queued if q.kind == "dsn")
    assert dsn_rec.mail_from == ""  # null sender: a DSN never bounces
    dsn = email.message_from_bytes(
        await store.get_message(dsn_rec.message_sha256), policy=default_policy
    )
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    body = (await store.get_message(dsn_rec.message_sha256)).decode("utf-8", "replace")
    assert "Final-Recipient: rfc822; bob@partner.example.co.jp" in body
    assert "Status: 5.1.1" in body
    assert "dan@partner" not in body.split("message/delivery-status")[1].split("--=_")[0]


async def test_queue_retries_then_delivers(store: SqlStore) -> None:
    t = MemoryTransport()
    t.fail_with = UpstreamError(451, "4.3.0 later", temporary=True)
    d = Delivery(store, t, fast())
    did = await d.enqueue(RAW, SENDER, RCPTS, kind="mail", hold_id=None)
    d.start()
    try:
        for _ in range(100):
            rec = await store.get_delivery(did)
            assert rec is not None
            if rec.attempts >= 2:
                break
            await asyncio.sleep(0.02)
        assert rec is not None
        assert rec.attempts >= 2 and rec.state in (DeliveryState.QUEUED, DeliveryState.SENDING)
        t.fail_with = None
        for _ in range(100):
            rec = await store.get_delivery(did)
            assert rec is not None
            if rec.state is DeliveryState.DONE:
                break
            await asyncio.sleep(0.02)
        assert rec is not None and rec.state is DeliveryState.DONE
        assert len(t.sent) == 1 and t.sent[0].raw == RAW
    finally:
        await d.stop()  # flushes the history batch
    assert (await store.sender_history(SENDER))[0] == {r.lower() for r in RCPTS}


async def test_queue_final_failure_tells_sender(store: SqlStore) -> None:
    t = MemoryTransport()
    t.fail_with = UpstreamError(550, "5.1.1 nobody here", temporary=False)
    d = Delivery(store, t, fast())
    did = await d.enqueue(RAW, SENDER, ["ghost@partner.example.co.jp"], kind="mail")
    d.start()
    try:
        for _ in range(200):
            rec = await store.get_delivery(did)
            if rec is not None and rec.state is DeliveryState.FAILED:
                break
            await asyncio.sleep(0.02)
        assert rec is not None and rec.state is DeliveryState.FAILED
        assert "nobody here" in rec.last_error
        dsns = [x for x in await store.list_deliveries() if x.kind == "dsn"]
        assert len(dsns) == 1 and dsns[0].rcpts == (SENDER,)
    finally:
        await d.stop()


async def test_give_up_after_max_attempts(store: SqlStore) -> None:
    t = MemoryTransport()
    t.fail_with = UpstreamError(451, "4.4.1 down", temporary=True)
    d = Delivery(store, t, fast(max_attempts=3))
    did = await d.enqueue(RAW, SENDER, RCPTS, kind="notice")
    d.start()
    try:
        for _ in range(300):
            rec = await store.get_delivery(did)
            if rec is not None and rec.state is DeliveryState.FAILED:
                break
            await asyncio.sleep(0.02)
        assert rec is not None and rec.state is DeliveryState.FAILED and rec.attempts == 3
        # a failed notice does not produce a DSN
        assert [x.kind for x in await store.list_deliveries()] == ["notice"]
    finally:
        await d.stop()


async def test_recover_after_crash_requeues_sending(store: SqlStore) -> None:
    from datetime import UTC, datetime

    did = await store.enqueue_delivery(RAW, SENDER, RCPTS)
    await store.claim_deliveries("crashed", datetime.now(UTC), 5)
    t = MemoryTransport()
    d = Delivery(store, t, fast())
    d.start()
    try:
        for _ in range(100):
            rec = await store.get_delivery(did)
            if rec is not None and rec.state is DeliveryState.DONE:
                break
            await asyncio.sleep(0.02)
        assert len(t.sent) == 1
    finally:
        await d.stop()


async def test_a_starting_worker_recovers_only_its_own_claims(store: SqlStore) -> None:
    """``serve --workers N`` on SQLite: worker 1 (re)starting must not put worker 0's
    in-flight delivery back in the queue (it would be sent twice); its own earlier run's
    claim it does recover."""
    from datetime import UTC, datetime

    mine = await store.enqueue_delivery(RAW, SENDER, RCPTS)
    await store.claim_deliveries("host:abcd1234:w1", datetime.now(UTC), 1)
    theirs = await store.enqueue_delivery(RAW, SENDER, ["dave@city.example.lg.jp"])
    await store.claim_deliveries("host:abcd1234:w0", datetime.now(UTC), 1)
    d = Delivery(store, MemoryTransport(), fast(), worker_id="host:abcd1234:w1")
    assert await d.recover(startup=True) == 1
    got_mine, got_theirs = await store.get_delivery(mine), await store.get_delivery(theirs)
    assert got_mine is not None and got_mine.state is DeliveryState.QUEUED
    assert got_theirs is not None and got_theirs.state is DeliveryState.SENDING
    # one process alone (the default) recovers every claim: whoever made it died with it
    assert await Delivery(store, MemoryTransport(), fast()).recover(startup=True) == 1


def test_dsn_status_and_headers() -> None:
    assert status_of(Reply(550, "5.1.1 unknown")) == "5.1.1"
    assert status_of(Reply(550, "unknown")) == "5.0.0"
    assert status_of(Reply(451, "5.1.1 mismatched")) == "4.0.0"
    hostile = b"Subject: evil\r\n\r\n"
    dsn = build_dsn(
        original=hostile,
        sender="a@x.jp",
        failed={"b@y.jp\r\nBcc: c@z": Reply(550, "no\r\nInjected: yes")},
        reporting_host="relay.test",
    )
    head = dsn.split(b"\r\n\r\n", 1)[0]
    assert b"Injected" not in head and b"\r\nBcc:" not in dsn
    msg = email.message_from_bytes(dsn, policy=default_policy)
    assert str(msg["Subject"]) == "配信できませんでした / Undelivered Mail"
    text = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_content()
    assert "届けられませんでした" in text and "could not be delivered" in text


async def test_maildir_transport(tmp_path: Path) -> None:
    t = MaildirTransport(tmp_path / "md")
    res = await t.send(SENDER, RCPTS, RAW)
    assert res.accepted == tuple(RCPTS)
    (f,) = list((tmp_path / "md" / "new").iterdir())
    data = f.read_bytes()
    assert data.startswith(b"Return-Path: <alice@city.example.lg.jp>\r\n")
    assert data.endswith(RAW)
    assert list((tmp_path / "md" / "tmp").iterdir()) == []


@pytest.mark.parametrize("pipelining", [False, True])
async def test_smtp_transport_exact_bytes_and_pool(pipelining: bool) -> None:
    with Sink(pipelining=pipelining) as sink:
        t = SmtpTransport("127.0.0.1", sink.port, tls="none", pool_size=2, timeout=5)
        base = sink.handler.connections  # the controller's own start-up probe
        for _ in range(5):
            res = await t.send(SENDER, RCPTS, RAW, SendOptions(eightbit=True))
            assert res.accepted == tuple(RCPTS) and "queued as SINK" in res.reply
        got = sink.handler.wait_for(5)
        assert [m.data for m in got] == [RAW] * 5
        assert got[0].rcpts == RCPTS and "BODY=8BITMIME" in got[0].options
        assert t.connects == 1 and sink.handler.connections - base == 1  # one reused connection
        assert t.pipelined == (5 if pipelining else 0)
        # concurrency is bounded by the pool size
        await asyncio.gather(*(t.send(SENDER, RCPTS, RAW) for _ in range(10)))
        assert t.connects <= 2
        await t.close()


@pytest.mark.parametrize("pipelining", [False, True])
async def test_smtp_transport_refusals_and_failures(pipelining: bool) -> None:
    with Sink(pipelining=pipelining) as sink:
        t = SmtpTransport("127.0.0.1", sink.port, tls="none", timeout=5)
        sink.handler.refuse = {"bob@partner.example.co.jp": "550 5.1.1 no such user"}
        res = await t.send(SENDER, RCPTS, RAW)
        assert res.accepted == ("carol@city.example.lg.jp",)
        assert res.refused["bob@partner.example.co.jp"].code == 550
        sink.handler.refuse = {r: "450 4.2.1 busy" for r in RCPTS}
        with pytest.raises(UpstreamError) as ei:
            await t.send(SENDER, RCPTS, RAW)
        assert ei.value.temporary and set(ei.value.refused) == set(RCPTS)
        sink.handler.refuse = {}
        sink.handler.data_reply = "554 5.7.1 spam"
        with pytest.raises(UpstreamError) as ei:
            await t.send(SENDER, RCPTS, RAW)
        assert not ei.value.temporary and ei.value.code == 554
        sink.handler.data_reply = None
        assert (await t.send(SENDER, RCPTS, RAW)).accepted  # connection still usable
        sink.handler.mail_reply = "553 5.7.1 sender refused"
        with pytest.raises(UpstreamError) as ei:
            await t.send(SENDER, RCPTS, RAW)
        assert not ei.value.temporary and ei.value.code == 553
        sink.handler.mail_reply = "421 4.3.2 closing"
        with pytest.raises(UpstreamError) as ei:
            await t.send(SENDER, RCPTS, RAW)
        assert ei.value.temporary and ei.value.code == 421
        sink.handler.mail_reply = None
        assert (await t.send(SENDER, RCPTS, RAW)).accepted  # a fresh connection after the 421
        assert len(sink.handler.messages) == 3  # nothing sent with a refused envelope
        assert t.pipelined == (3 if pipelining else 0)  # the three that went through
        await t.close()
    # nothing listening: temporary
    t2 = SmtpTransport("127.0.0.1", sink.port, tls="none", timeout=2)
    with pytest.raises(UpstreamError) as ei:
        await t2.send(SENDER, RCPTS, RAW)
    assert ei.value.temporary and ei.value.code == 451


@pytest.mark.parametrize("pipelining", [False, True])
async def test_smtp_transport_requires_starttls(pipelining: bool) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = client_tls_context()
    ca.configure_trust(client_ctx)
    with Sink(tls_context=server_ctx, require_starttls=True, pipelining=pipelining) as sink:
        t = SmtpTransport("127.0.0.1", sink.port, tls="starttls", tls_context=client_ctx, timeout=5)
        assert (await t.send(SENDER, RCPTS, RAW)).accepted == tuple(RCPTS)
        assert t.pipelined == (1 if pipelining else 0)
        await t.close()
        # an untrusted certificate is refused when verification is on
        t_bad = SmtpTransport(
            "127.0.0.1", sink.port, tls="starttls", tls_context=client_tls_context(), timeout=5
        )
        with pytest.raises(UpstreamError):
            await t_bad.send(SENDER, RCPTS, RAW)
    with Sink() as plain:  # upstream without STARTTLS: refuse to send in clear
        t_plain = SmtpTransport(
            "127.0.0.1", plain.port, tls="starttls", tls_context=client_ctx, timeout=5
        )
        with pytest.raises(UpstreamError):
            await t_plain.send(SENDER, RCPTS, RAW)
        assert plain.messages == []
