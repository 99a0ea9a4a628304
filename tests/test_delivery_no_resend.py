"""Review M3: the pool never resends a message the upstream may already have.

A scripted SMTP server drops the connection at chosen points. A pooled connection dropped
while idle (the server hangs up at MAIL) is retried once on a fresh connection; a drop
after the message content was sent (before the final reply) is ambiguous: never retried
on the spot, reported as a temporary ``UpstreamError(ambiguous=True)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from leakguard.delivery import Delivery, DeliverySettings, UpstreamError
from leakguard.delivery.smtp import SmtpTransport
from leakguard.holds.model import DeliveryState
from leakguard.store import SqlStore

SENDER = "alice@city.example.lg.jp"
RCPTS = ["bob@partner.example.co.jp"]
RAW = b"From: alice@city.example.lg.jp\r\nSubject: hi\r\n\r\nbody\r\n"


@dataclass
class Scripted:
    """``plans[i]``: what connection ``i`` does per transaction: ``ok``, ``drop_at_mail``
    (hang up on MAIL, as a server that timed the idle client out), ``drop_after_dot``
    (take the whole message, then hang up without the final reply)."""

    plans: list[list[str]]
    received: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self.connections
        self.connections += 1
        plan = list(self.plans[index]) if index < len(self.plans) else []
        writer.write(b"220 scripted ESMTP\r\n")
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250-scripted\r\n250 8BITMIME\r\n")
                elif verb == b"MAIL":
                    if (plan[0] if plan else "ok") == "drop_at_mail":
                        plan.pop(0)
                        return
                    writer.write(b"250 2.1.0 ok\r\n")
                elif verb == b"RCPT":
                    writer.write(b"250 2.1.5 ok\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    data = b""
                    while not data.endswith(b"\r\n.\r\n"):
                        chunk = await reader.readline()
                        if not chunk:
                            return
                        data += chunk
                    self.received.append(data)
                    step = plan.pop(0) if plan else "ok"
                    if step == "drop_after_dot":
                        return
                    writer.write(b"250 2.0.0 queued\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    return
                else:  # RSET, NOOP
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def scripted() -> AsyncIterator[Scripted]:
    s = Scripted(plans=[])
    s.server = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    s.port = s.server.sockets[0].getsockname()[1]
    yield s
    s.server.close()
    await s.server.wait_closed()


async def test_idle_drop_before_data_is_retried_once(scripted: Scripted) -> None:
    scripted.plans = [["ok", "drop_at_mail"], ["ok"]]
    t = SmtpTransport("127.0.0.1", scripted.port, tls="none", timeout=5)
    try:
        assert (await t.send(SENDER, RCPTS, RAW)).accepted == tuple(RCPTS)
        # reused connection hung up at MAIL: the server has nothing, one fresh try is safe
        assert (await t.send(SENDER, RCPTS, RAW)).accepted == tuple(RCPTS)
    finally:
        await t.close()
    assert len(scripted.received) == 2 and scripted.connections == 2


async def test_drop_after_dot_is_ambiguous_and_never_resent(scripted: Scripted) -> None:
    scripted.plans = [["ok", "drop_after_dot"], ["ok"]]
    t = SmtpTransport("127.0.0.1", scripted.port, tls="none", timeout=5)
    try:
        await t.send(SENDER, RCPTS, RAW)
        with pytest.raises(UpstreamError) as ei:
            await t.send(SENDER, RCPTS, RAW)
    finally:
        await t.close()
    assert ei.value.ambiguous and ei.value.temporary and ei.value.code == 451
    assert "may have been accepted" in ei.value.text
    # the server got the second message exactly once: no automatic resend
    assert len(scripted.received) == 2 and scripted.connections == 1


async def test_ambiguous_drop_on_a_fresh_connection(scripted: Scripted) -> None:
    scripted.plans = [["drop_after_dot"]]
    t = SmtpTransport("127.0.0.1", scripted.port, tls="none", timeout=5)
    try:
        with pytest.raises(UpstreamError) as ei:
            await t.send(SENDER, RCPTS, RAW)
    finally:
        await t.close()
    assert ei.value.ambiguous and len(scripted.received) == 1


async def test_direct_path_ambiguous_gives_451(scripted: Scripted, store: SqlStore) -> None:
    scripted.plans = [["drop_after_dot"]]
    t = SmtpTransport("127.0.0.1", scripted.port, tls="none", timeout=5)
    d = Delivery(store, t, DeliverySettings(upstream_timeout=5))
    try:
        out = await d.deliver_now(RAW, SENDER, RCPTS)
    finally:
        await t.close()
    assert out.reply.startswith("451 4.4.2 ") and out.accepted == ()
    assert len(scripted.received) == 1
    assert d.metrics.upstream_errors.labels("ambiguous")._value.get() == 1


async def test_queued_ambiguous_is_retried_later_not_dropped(
    scripted: Scripted, store: SqlStore
) -> None:
    """The decision documented in the service docstring: retry after backoff (maybe one
    duplicate) rather than "done, possibly" (maybe lost)."""
    scripted.plans = [["drop_after_dot"], ["ok"]]
    t = SmtpTransport("127.0.0.1", scripted.port, tls="none", timeout=5)
    d = Delivery(
        store,
        t,
        DeliverySettings(retry_base=0.05, retry_max=0.1, poll_interval=0.02, upstream_timeout=5),
    )
    did = await d.enqueue(RAW, SENDER, RCPTS, kind="mail")
    d.start()
    try:
        for _ in range(250):
            rec = await store.get_delivery(did)
            if rec is not None and rec.state is DeliveryState.DONE:
                break
            await asyncio.sleep(0.02)
    finally:
        await d.stop()
        await t.close()
    assert rec is not None and rec.state is DeliveryState.DONE and rec.attempts == 2
    assert len(scripted.received) == 2  # once per attempt, never twice within one
