"""Review H1: DSNs for internationalised (SMTPUTF8) mail, and a DSN failure never resends.

The reviewer saw a released mail sent three times in five minutes because the DSN for a
refused recipient could not be encoded (UTF-8 sender), and the worker then re-queued the
whole delivery. These tests pin: the DSN is built and delivered for UTF-8 addresses, and
on both paths (while the client waits, and from the queue) every recipient gets exactly
one copy and the client gets 250 once the upstream accepted, whatever the DSN does.
"""

from __future__ import annotations

import asyncio
import email
from collections.abc import Callable
from email.policy import default as default_policy
from typing import Any

import pytest
from e2e.sink import Sink

from leakguard.delivery import Delivery, DeliverySettings, MemoryTransport, Reply, SendOptions
from leakguard.delivery import service as service_mod
from leakguard.delivery.dsn import ascii_host, build_dsn
from leakguard.delivery.smtp import SmtpTransport
from leakguard.holds.model import DeliveryState
from leakguard.store import SqlStore

SENDER = "田中@city.example.lg.jp"
OK = "ok@city.example.lg.jp"
REFUSED = "refuse5@city.example.lg.jp"
RAW = f"From: {SENDER}\r\nTo: {OK}, {REFUSED}\r\nSubject: 見積書\r\n\r\nx\r\n".encode()


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.events.append(("info", event, kw))

    def warning(self, event: str, **kw: Any) -> None:
        self.events.append(("warning", event, kw))

    def names(self) -> list[str]:
        return [e[1] for e in self.events]


def fast(**kw: object) -> DeliverySettings:
    base: dict[str, object] = dict(
        retry_base=0.02,
        retry_max=0.05,
        poll_interval=0.02,
        upstream_timeout=5.0,
        hostname="リレー.example.jp",  # not ASCII either: must become an A-label
    )
    base.update(kw)
    return DeliverySettings(**base)  # type: ignore[arg-type]


async def until(pred: Callable[[], Any], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        r = pred()
        if asyncio.iscoroutine(r):
            r = await r
        if r:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def copies(t: MemoryTransport, rcpt: str, *, mail_from: str = SENDER) -> int:
    return sum(1 for m in t.sent if m.mail_from == mail_from and rcpt in m.rcpts)


def _raise(*a: object, **kw: object) -> bytes:
    raise UnicodeEncodeError("ascii", "田", 0, 1, "simulated DSN failure")


async def _raise_in_worker(**_kw: object) -> bytes:
    """The DSN step (a worker process since issue 12) failing with an exception."""
    raise UnicodeEncodeError("ascii", "田", 0, 1, "simulated DSN failure")


# ---------------------------------------------------------------------- build_dsn


def test_utf8_dsn_is_a_valid_internationalised_report() -> None:
    dsn = build_dsn(
        original=RAW,
        sender=SENDER,
        failed={"山田@partner.example.co.jp": Reply(550, "5.1.1 ユーザーなし")},
        reporting_host="リレー.example.jp",
    )
    assert b"\n" not in dsn.replace(b"\r\n", b""), "every line ends in CRLF"
    head = dsn.split(b"\r\n\r\n", 1)[0]
    msg = email.message_from_string(dsn.decode("utf-8"), policy=default_policy)
    assert msg["To"].addresses[0].addr_spec == SENDER
    assert str(msg["Subject"]) == "配信できませんでした / Undelivered Mail"
    assert b"MAILER-DAEMON@xn--eeke2c.example.jp" in head
    types = [p.get_content_type() for p in msg.iter_parts()]
    assert types == ["text/plain", "message/global-delivery-status", "message/global-headers"]
    text = dsn.decode("utf-8")
    assert "Final-Recipient: utf-8; 山田@partner.example.co.jp" in text
    assert "Reporting-MTA: dns; xn--eeke2c.example.jp" in text
    assert msg.get_param("report-type") == "delivery-status"


def test_ascii_dsn_keeps_ascii_headers_and_folds_with_crlf() -> None:
    dsn = build_dsn(
        original=b"Subject: hi\r\n\r\nx",
        sender="alice@city.example.lg.jp",
        failed={"bob@partner.example.co.jp": Reply(550, "5.1.1 unknown \u00e9")},
        reporting_host="relay.test",
    )
    head, _, body = dsn.partition(b"\r\n\r\n")
    assert head.isascii()
    assert b"\n" not in dsn.replace(b"\r\n", b"")
    assert b"Subject: =?utf-8?" in head
    status = body.split(b"Content-Type: message/delivery-status\r\n\r\n")[1].split(b"--=_")[0]
    assert status.isascii() and b"Final-Recipient: rfc822; bob@partner.example.co.jp" in status


def test_ascii_host() -> None:
    assert ascii_host("relay.example.jp") == "relay.example.jp"
    assert ascii_host("リレー.example.jp") == "xn--eeke2c.example.jp"
    assert ascii_host("bad\r\nhost") == "badhost"
    assert ascii_host("") == "localhost"
    assert ascii_host("ü" * 70 + ".jp") == "localhost"  # no valid A-label: still a host


# ---------------------------------------------------------------------- direct path


async def test_direct_utf8_sender_partial_refusal_one_copy_and_dsn(store: SqlStore) -> None:
    t = MemoryTransport()
    t.refuse = {REFUSED: Reply(550, "5.1.1 no such user")}
    d = Delivery(store, t, fast())
    out = await d.deliver_now(RAW, SENDER, [OK, REFUSED], options=SendOptions(smtputf8=True))
    assert out.reply.startswith("250 ") and out.accepted == (OK,)
    (q,) = await store.list_deliveries()
    assert q.kind == "dsn" and q.rcpts == (SENDER,) and q.mail_from == ""
    d.start()
    try:
        await until(lambda: copies(t, SENDER, mail_from="") == 1)
    finally:
        await d.stop()
    dsn = next(m for m in t.sent if m.mail_from == "")
    assert dsn.options.smtputf8  # the DSN to a UTF-8 mailbox goes out with SMTPUTF8
    assert copies(t, OK) == 1 and copies(t, REFUSED) == 0
    assert (await store.get_delivery(q.id)).state is DeliveryState.DONE  # type: ignore[union-attr]


async def test_direct_dsn_failure_never_fails_the_accepted_mail(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_mod, "build_dsn", _raise)
    monkeypatch.setattr(service_mod.stepproc, "dsn", _raise_in_worker)
    t = MemoryTransport()
    t.refuse = {REFUSED: Reply(550, "5.1.1 no such user")}
    log = Log()
    d = Delivery(store, t, fast(), log=log)
    out = await d.deliver_now(RAW, SENDER, [OK, REFUSED], options=SendOptions(smtputf8=True))
    assert out.reply.startswith("250 "), out.reply  # not 451: the client must not retry
    assert copies(t, OK) == 1
    assert await store.list_deliveries() == []  # nothing re-queued
    assert "dsn_error" in log.names()
    assert d.metrics.upstream_errors.labels("dsn_error")._value.get() == 1


# ---------------------------------------------------------------------- queue path


async def test_queued_utf8_sender_partial_refusal_one_copy(store: SqlStore) -> None:
    t = MemoryTransport()
    t.refuse = {REFUSED: Reply(550, "5.1.1 no such user")}
    d = Delivery(store, t, fast())
    did = await d.enqueue(RAW, SENDER, [OK, REFUSED], kind="mail", hold_id="H-1")
    d.start()
    try:
        await until(lambda: copies(t, SENDER, mail_from="") == 1)
        await asyncio.sleep(0.3)  # many retry periods: nothing more may go out
    finally:
        await d.stop()
    assert copies(t, OK) == 1
    assert len(t.sent) == 2  # the mail once, its DSN once
    rec = await store.get_delivery(did)
    assert rec is not None and rec.state is DeliveryState.DONE


async def test_queued_dsn_failure_does_not_resend(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_mod, "build_dsn", _raise)
    monkeypatch.setattr(service_mod.stepproc, "dsn", _raise_in_worker)
    t = MemoryTransport()
    t.refuse = {REFUSED: Reply(550, "5.1.1 no such user")}
    log = Log()
    d = Delivery(store, t, fast(), log=log)
    did = await d.enqueue(RAW, SENDER, [OK, REFUSED], kind="mail")
    d.start()
    try:
        await until(lambda: "dsn_error" in log.names())
        await asyncio.sleep(0.3)
    finally:
        await d.stop()
    assert copies(t, OK) == 1 and len(t.sent) == 1
    rec = await store.get_delivery(did)
    assert rec is not None and rec.state is DeliveryState.DONE and rec.attempts == 1


async def test_queued_temporary_refusal_retries_only_the_rest(store: SqlStore) -> None:
    other = "busy@partner.example.co.jp"
    t = MemoryTransport()
    t.refuse = {other: Reply(450, "4.2.1 mailbox busy")}
    d = Delivery(store, t, fast())
    did = await d.enqueue(RAW, SENDER, [OK, other], kind="mail")
    d.start()
    try:
        await until(lambda: copies(t, OK) == 1)
        await asyncio.sleep(0.1)
        t.refuse = {}
        await until(lambda: copies(t, other) == 1)
        await asyncio.sleep(0.2)
    finally:
        await d.stop()
    assert copies(t, OK) == 1 and copies(t, other) == 1
    rec = await store.get_delivery(did)
    assert rec is not None and rec.state is DeliveryState.DONE and rec.attempts >= 2


async def test_store_down_after_acceptance_does_not_requeue_everyone(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = "busy@partner.example.co.jp"
    t = MemoryTransport()
    t.refuse = {other: Reply(450, "4.2.1 mailbox busy")}
    log = Log()
    d = Delivery(store, t, fast(), log=log)
    did = await d.enqueue(RAW, SENDER, [OK, other], kind="mail")

    async def down(*a: object, **kw: object) -> None:
        raise OSError("database is locked")

    monkeypatch.setattr(store, "update_delivery_rcpts", down)
    d.start()
    try:
        await until(lambda: "delivery_unrecorded" in log.names())
        await asyncio.sleep(0.3)
    finally:
        await d.stop()
    # the row stays claimed (recovery re-sends it: documented at-least-once), but the
    # worker itself never put OK back in the queue
    assert copies(t, OK) == 1
    rec = await store.get_delivery(did)
    assert rec is not None and rec.state is DeliveryState.SENDING


# ---------------------------------------------------------------------- real SMTP


async def test_reviewer_t7_over_smtp(store: SqlStore) -> None:
    """The reviewer's t7: UTF-8 sender, one recipient refused, through a real upstream."""
    with Sink() as sink:
        sink.handler.refuse = {REFUSED: "550 5.1.1 no such user"}
        t = SmtpTransport("127.0.0.1", sink.port, tls="none", timeout=5)
        d = Delivery(store, t, fast())
        out = await d.deliver_now(
            RAW, SENDER, [OK, REFUSED], options=SendOptions(smtputf8=True, eightbit=True)
        )
        assert out.reply.startswith("250 "), out.reply
        d.start()
        try:
            await asyncio.to_thread(sink.handler.wait_for, 2)
            await asyncio.sleep(0.3)  # nothing more may arrive
        finally:
            await d.stop()
            await t.close()
        got = list(sink.handler.messages)
    envelopes = [(m.mail_from.strip("<>"), m.rcpts) for m in got]
    assert envelopes == [(SENDER, [OK]), ("", [SENDER])]  # the mail once, then its DSN
    dsn = got[1]
    assert "SMTPUTF8" in dsn.options
    msg = email.message_from_string(dsn.data.decode("utf-8"), policy=default_policy)
    assert msg["To"].addresses[0].addr_spec == SENDER
    assert "refuse5@city.example.lg.jp" in dsn.data.decode("utf-8")
