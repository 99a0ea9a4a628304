"""A client that gives up waiting and sends the same transaction again while the first is
still being decided, stored or sent (issue 12; found by the fault suite's frozen-store test,
where 2 s clients made up to three holds of one mail): the retry joins the first one and
gets its answer; one hold, one notice, one delivery."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from e2e.sink import Sink
from relay_fakes import FakeEngine

from leakguard.config import ServiceConfig
from leakguard.service import Service

pytestmark = pytest.mark.e2e

ALICE = "alice@city.example.lg.jp"
RCPTS = ("x@alpha.example", "y@beta.example")


def mail(tag: str, action: str) -> bytes:
    return (
        f"From: Alice <{ALICE}>\r\nTo: {', '.join(RCPTS)}\r\nSubject: {tag}\r\n"
        f"Message-ID: <{tag}@city.example.lg.jp>\r\nDate: Mon, 30 Nov 2026 09:00:00 +0900\r\n"
        f"X-Test-Action: {action}\r\n\r\nbody\r\n"
    ).encode()


def send(port: int, raw: bytes, timeout: float) -> tuple[int, str]:
    """One transaction; (0, "") when the answer did not come within ``timeout``. The
    connection is dropped after the reply, without QUIT: to the relay, a client that may
    not have read it (a client that goes on after a 250 read it, and the same bytes again
    are new mail: tests/test_journal.py)."""
    try:
        c = smtplib.SMTP("127.0.0.1", port, timeout=timeout)
        try:
            c.ehlo("client.test")
            c.mail(ALICE)
            for r in RCPTS:
                c.rcpt(r)
            code, text = c.data(raw)
            return code, text.decode()
        finally:
            c.close()
    except (OSError, smtplib.SMTPException):
        return 0, ""


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[tuple[Service, Sink]]:
    with Sink() as sink:
        cfg = ServiceConfig.model_validate(
            {
                "hostname": "relay.test",
                "data_dir": str(tmp_path / "data"),
                "listeners": [{"kind": "plain", "listen": "127.0.0.1:0"}],
                "upstream": {"host": "127.0.0.1", "port": sink.port, "tls": "none"},
                "web": {"listen": "127.0.0.1:0", "secret": "e2e-secret"},
                "holds": {"language": "en"},
            }
        )
        service = Service(config=cfg, policy_path=tmp_path / "unused.yaml", engine=FakeEngine())
        await service.start()
        try:
            yield service, sink
        finally:
            await service.stop(timeout=1)


async def test_a_retry_joins_the_transaction_still_in_flight(
    relay: tuple[Service, Sink],
) -> None:
    """One relay for both cases (its shutdown takes seconds): a slow upstream, then a slow
    store."""
    service, sink = relay
    await _slow_upstream(service, sink)
    await _slow_store(service, sink)


async def _slow_upstream(service: Service, sink: Sink) -> None:
    port = service.smtp_ports["plain-0"]
    raw = mail("slow-upstream", "pass")
    sink.handler.delay = 1.5
    assert (await asyncio.to_thread(send, port, raw, 0.5)) == (0, "")  # the client gave up
    code, text = await asyncio.to_thread(send, port, raw, 10)  # and sent it again at once
    assert code == 250, text
    sink.handler.delay = 0
    await asyncio.sleep(0.5)
    assert len(sink.messages) == 1
    # and once it is out, a third try is recognised as before
    code, text = await asyncio.to_thread(send, port, raw, 10)
    assert code == 250 and "already sent" in text
    assert len(sink.messages) == 1


async def _slow_store(service: Service, sink: Sink) -> None:
    port = service.smtp_ports["plain-0"]
    store = service.store
    assert store is not None
    real = store.create_hold

    async def slow_create_hold(*a: Any, **kw: Any) -> Any:
        await asyncio.sleep(1.5)  # a write lock held elsewhere, a slow disk
        return await real(*a, **kw)

    store.create_hold = slow_create_hold  # type: ignore[method-assign]
    raw = mail("slow-store", "hold")
    assert (await asyncio.to_thread(send, port, raw, 0.5)) == (0, "")
    code, text = await asyncio.to_thread(send, port, raw, 10)
    assert code == 250 and " held H-" in f" {text}", text
    holds = await store.list_holds()
    assert [h.id for h in holds] == [text.split()[2]]
    await asyncio.sleep(1.0)
    notices = [m for m in sink.messages if ALICE in m.rcpts]
    assert len(notices) == 1
