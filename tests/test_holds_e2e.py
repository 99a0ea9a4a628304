"""End to end over real sockets: SMTP in, hold, notice at the upstream, reply-to-release
through the relay, review link through the web server, released bytes at the upstream."""

from __future__ import annotations

import asyncio
import email.policy
import re
import smtplib
from collections.abc import AsyncIterator
from email.parser import BytesParser
from pathlib import Path

import httpx
import pytest
from e2e.sink import Received, Sink
from relay_fakes import FakeEngine

from leakguard.config import ServiceConfig
from leakguard.holds.model import HoldState
from leakguard.service import Service

pytestmark = pytest.mark.e2e

ALICE = "alice@city.example.lg.jp"
RCPTS = ["bob@partner.example.co.jp", "dave@client.example.com"]


def mail(tag: str) -> bytes:
    return (
        f"From: Alice <{ALICE}>\r\nTo: {', '.join(RCPTS)}\r\nSubject: hold me {tag}\r\n"
        "Date: Mon, 24 Nov 2025 10:00:00 +0900\r\n"
        f"Message-ID: <{tag}@city.example.lg.jp>\r\nX-Test-Action: hold\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"本文 {tag}\r\n"
    ).encode()


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[tuple[Service, Sink]]:
    with Sink() as sink:
        cfg = ServiceConfig.model_validate(
            {
                "hostname": "relay.test",
                "data_dir": str(tmp_path / "data"),
                "listeners": [{"kind": "plain", "listen": "127.0.0.1:0"}],
                "upstream": {"host": "127.0.0.1", "port": sink.port, "tls": "none"},
                "delivery": {"poll_interval": "1s", "retry_base": "1s"},
                "web": {"listen": "127.0.0.1:0", "secret": "e2e-secret"},
                "holds": {
                    "notice_from": "leakguard@city.example.lg.jp",
                    "command_address": "leakguard-hold@city.example.lg.jp",
                    "language": "en",
                },
            }
        )
        service = Service(config=cfg, policy_path=tmp_path / "unused.yaml", engine=FakeEngine())
        await service.start()
        try:
            yield service, sink
        finally:
            await service.stop(timeout=5)


def _send(port: int, raw: bytes, rcpts: list[str], frm: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.test")
        c.mail(frm)
        for r in rcpts:
            c.rcpt(r)
        return c.data(raw)


async def send(
    service: Service, raw: bytes, rcpts: list[str], frm: str = ALICE
) -> tuple[int, bytes]:
    return await asyncio.to_thread(_send, service.smtp_ports["plain-0"], raw, rcpts, frm)


async def wait(sink: Sink, pred, timeout: float = 15.0) -> Received:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        for m in list(sink.handler.messages):
            if pred(m):
                return m
        await asyncio.sleep(0.05)
    raise AssertionError("not received")


def body_text(raw: bytes) -> str:
    m = BytesParser(policy=email.policy.default).parsebytes(raw)
    part = m.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def test_reply_to_release_through_the_relay(svc: tuple[Service, Sink]) -> None:
    service, sink = svc
    raw = mail("e1")
    code, text = await send(service, raw, RCPTS)
    assert code == 250
    hold_id = text.decode().split()[-1]
    notice = await wait(sink, lambda m: m.rcpts == [ALICE] and hold_id.encode() in m.data)
    reply_to = str(BytesParser(policy=email.policy.default).parsebytes(notice.data)["Reply-To"])
    assert reply_to.startswith("leakguard-hold+")
    assert "Your mail has NOT been sent yet" in body_text(notice.data)
    # someone else on the trusted network answers: refused, nothing sent
    reply = b"Subject: Re\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nrelease\r\n"
    code, _ = await send(service, reply, [reply_to], frm="mallory@city.example.lg.jp")
    assert code == 250
    await wait(sink, lambda m: m.rcpts == ["mallory@city.example.lg.jp"])
    store = service.store
    assert store is not None
    h = await store.get_hold(hold_id)
    assert h is not None and h.state == HoldState.HELD
    # the sender answers "送信" (full width would do too)
    code, _ = await send(
        service,
        "Subject: Re\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n送信\r\n".encode(),
        [reply_to],
    )
    assert code == 250
    released = await wait(sink, lambda m: sorted(m.rcpts) == sorted(RCPTS))
    assert released.data == raw and released.mail_from == ALICE
    confirmation = await wait(
        sink, lambda m: m.rcpts == [ALICE] and b"Result of your command" in m.data
    )
    assert "released" in body_text(confirmation.data)
    # the reply itself went nowhere else
    assert not any(b"\r\n\r\n\xe9\x80\x81\xe4\xbf\xa1" in m.data for m in sink.handler.messages)


async def test_review_link_through_the_web_server(svc: tuple[Service, Sink]) -> None:
    service, sink = svc
    code, text = await send(service, mail("e2"), RCPTS)
    assert code == 250
    hold_id = text.decode().split()[-1]
    notice = await wait(sink, lambda m: m.rcpts == [ALICE] and hold_id.encode() in m.data)
    # no base URL configured: links point at the port the web server really listens on
    # (here a free port chosen at start), not at a fixed default
    m = re.search(r"(https?://[^/\s]+)(/h/[A-Za-z0-9_.\-]+)", body_text(notice.data))
    assert m and m.group(1) == f"http://127.0.0.1:{service.web_port}", m
    m = re.search(r"https?://[^/\s]+(/h/[A-Za-z0-9_.\-]+)", body_text(notice.data))
    assert m
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.web_port}") as c:
        page = await c.get(m.group(1))
        assert page.status_code == 200 and "hold me e2" in page.text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf
        r = await c.post(m.group(1), data={"action": "discard", "csrf": csrf.group(1)})
        assert r.status_code == 200
    store = service.store
    assert store is not None
    h = await store.get_hold(hold_id)
    assert h is not None and h.state == HoldState.DISCARDED
    await asyncio.sleep(1.5)
    assert not any(sorted(x.rcpts) == sorted(RCPTS) for x in sink.handler.messages)
