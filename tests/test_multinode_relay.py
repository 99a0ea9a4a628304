"""Two relay services (two "hosts", two data directories) on one PostgreSQL database, in
this test's loop (issue 11): a client's retry of a mail that node A sent, landing on node B,
is recognised from the shared journal and not sent twice; a hold made on A is answered
once; a relay with another web secret refuses to start on the shared store."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from e2e.sink import Sink
from relay_fakes import FakeEngine
from test_store import _pg_store

from leakguard.config import ServiceConfig
from leakguard.holds.model import HoldState, Via
from leakguard.holds.service import Decision
from leakguard.service import Service, SharedSecretError
from leakguard.store.sealing import encode_key, new_key

pytestmark = pytest.mark.postgres

ALICE = "alice@city.example.lg.jp"
RCPTS = ["bob@partner.example.co.jp", "carol@city.example.lg.jp"]
KEY = encode_key(new_key())


def config(tmp: Path, name: str, url: str, sink_port: int, secret: str) -> ServiceConfig:
    return ServiceConfig.model_validate(
        {
            "hostname": f"{name}.relay.test",
            "data_dir": str(tmp / name),
            "listeners": [{"kind": "plain", "listen": "127.0.0.1:0"}],
            "upstream": {"host": "127.0.0.1", "port": sink_port, "tls": "none"},
            "store": {"url": url},
            "web": {"listen": "127.0.0.1:0", "secret": secret},
            "retention": {"key": KEY},
            "delivery": {"poll_interval": "1s", "retry_base": "1s"},
            "holds": {
                "notice_from": "leakguard@city.example.lg.jp",
                "command_address": "leakguard-hold@city.example.lg.jp",
            },
        }
    )


def mail(action: str, tag: str) -> bytes:
    return (
        f"From: Alice <{ALICE}>\r\nTo: {RCPTS[0]}\r\nCc: {RCPTS[1]}\r\nSubject: {tag}\r\n"
        f"Message-ID: <{tag}@city.example.lg.jp>\r\nX-Test-Action: {action}\r\n\r\nbody\r\n"
    ).encode()


def _send(port: int, raw: bytes) -> tuple[int, bytes]:
    """One transaction, the connection dropped after the reply (no QUIT): the relay cannot
    know the client read it, so a repeat is a retry (after a QUIT it would be new mail)."""
    c = smtplib.SMTP("127.0.0.1", port, timeout=10)
    try:
        c.ehlo("client.test")
        c.mail(ALICE)
        for r in RCPTS:
            c.rcpt(r)
        return c.data(raw)
    finally:
        c.close()


async def send(service: Service, raw: bytes) -> tuple[int, bytes]:
    return await asyncio.to_thread(_send, service.smtp_ports["plain-0"], raw)


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[Service, Service, Sink, str, Path]]:
    async for store in _pg_store():
        url = store._engine.url.render_as_string(hide_password=False)
        with Sink() as sink:
            services = []
            try:
                for name in ("a", "b"):
                    svc = Service(
                        config=config(tmp_path, name, url, sink.port, "the same secret " * 3),
                        policy_path=tmp_path / "unused.yaml",
                        engine=FakeEngine(),
                    )
                    await svc.start()
                    services.append(svc)
                yield services[0], services[1], sink, url, tmp_path
            finally:
                for svc in services:
                    await svc.stop(timeout=5)


async def test_a_retry_on_the_other_node_is_not_sent_twice(
    nodes: tuple[Service, Service, Sink, str, Path],
) -> None:
    a, b, sink, _url, _tmp = nodes
    assert a.node_id != b.node_id
    raw = mail("pass", "retry-across")
    code, _ = await send(a, raw)
    assert code == 250
    assert a.relay is not None and a.relay.journal is not None
    await a.relay.journal.flush()  # the row A wrote after its 250 (milliseconds later)
    code, text = await send(b, raw)  # the client never saw A's 250: it retries on B
    assert code == 250, text
    await asyncio.sleep(0.5)
    copies = [m for m in sink.handler.messages if b"retry-across" in m.data]
    assert len(copies) == 1


async def test_a_hold_made_on_a_is_released_once_from_b(
    nodes: tuple[Service, Service, Sink, str, Path],
) -> None:
    a, b, sink, _url, _tmp = nodes
    code, text = await send(a, mail("hold", "held-on-a"))
    assert code == 250 and b"held H-" in text
    hold_id = text.decode().split()[2]
    assert b.holds is not None and a.holds is not None
    results = await asyncio.gather(
        b.holds.resolve(hold_id, Decision.RELEASE, actor="admin:x", via=Via.CLI, admin=True),
        a.holds.resolve(hold_id, Decision.RELEASE, actor="admin:y", via=Via.CLI, admin=True),
    )
    assert sorted(r.ok for r in results) == [False, True]
    for _ in range(100):
        if any(b"held-on-a" in m.data for m in sink.handler.messages):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # both nodes poll the queue: a second copy would be here
    copies = [m for m in sink.handler.messages if b"Subject: held-on-a" in m.data]
    assert len(copies) == 1 and sorted(copies[0].rcpts) == sorted(RCPTS)
    assert b.store is not None
    hold = await b.store.get_hold(hold_id)
    assert hold is not None and hold.state is HoldState.RELEASED


async def test_a_relay_with_another_web_secret_refuses_to_start(
    nodes: tuple[Service, Service, Sink, str, Path],
) -> None:
    _a, _b, sink, url, tmp = nodes
    other = Service(
        config=config(tmp, "c", url, sink.port, "a different secret " * 3),
        policy_path=tmp / "unused.yaml",
        engine=FakeEngine(),
    )
    with pytest.raises(SharedSecretError) as err:
        await other.start()
    text = str(err.value)
    assert "web secret differs" in text and "Web の秘密鍵" in text
    assert other.smtp_ports == {}  # nothing was listening
