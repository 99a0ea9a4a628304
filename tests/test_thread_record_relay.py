"""The relay records its thread record on pass, Bcc and hold (counted once released), over
real SMTP with a stand-in engine, and the engine gets the lookup from the decision thread."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from e2e.sink import Sink
from relay_fakes import FakeEngine

from leakguard.config import ServiceConfig
from leakguard.holds.model import Via
from leakguard.holds.service import Decision
from leakguard.service import Service
from leakguard.store import SqlStore

pytestmark = pytest.mark.e2e

ALICE = "alice@city.example.lg.jp"
BOB = "bob@city.example.lg.jp"
X = "x@alpha.example"
Y = "y@beta.example"
SINCE = datetime.now(UTC) - timedelta(days=1)


def mail(tag: str, action: str, refs: str = "") -> bytes:
    return (
        f"From: Alice <{ALICE}>\r\nTo: {X}, {Y}\r\nCc: {BOB}\r\nSubject: {tag}\r\n"
        f"Message-ID: <{tag}@city.example.lg.jp>\r\nX-Test-Action: {action}\r\n"
        + (f"In-Reply-To: {refs}\r\nReferences: {refs}\r\n" if refs else "")
        + "Content-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n"
    ).encode()


class LookupEngine(FakeEngine):
    """Records what the relay's lookup answered (from the decision thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.looked_up: list[tuple[frozenset[str], ...] | None] = []

    def decide(self, raw: bytes, **kw: object):  # type: ignore[no-untyped-def, override]
        lookup = kw.pop("thread_lookup", None)
        if lookup is not None and b"In-Reply-To: <" in raw:
            ref = raw.split(b"In-Reply-To: <", 1)[1].split(b">", 1)[0].decode()
            self.looked_up.append(lookup((ref,)))  # type: ignore[operator]
        return super().decide(raw, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[tuple[Service, Sink, LookupEngine]]:
    engine = LookupEngine()
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
        service = Service(config=cfg, policy_path=tmp_path / "unused.yaml", engine=engine)
        await service.start()
        try:
            yield service, sink, engine
        finally:
            await service.stop(timeout=5)


def _send(port: int, raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.test")
        c.mail(ALICE)
        for r in (X, Y, BOB):
            c.rcpt(r)
        return c.data(raw)


async def send(service: Service, raw: bytes) -> tuple[int, bytes]:
    code, text = await asyncio.to_thread(_send, service.smtp_ports["plain-0"], raw)
    assert service.relay is not None
    await service.relay.flush_threads()
    return code, text


async def groups(service: Service, tag: str) -> tuple[frozenset[str], ...]:
    store = service.store
    assert isinstance(store, SqlStore)
    return await store.thread_groups([f"{tag}@city.example.lg.jp"], since=SINCE)


async def test_recorded_on_pass_bcc_and_released_hold(
    svc: tuple[Service, Sink, LookupEngine],
) -> None:
    service, _sink, engine = svc
    assert (await send(service, mail("p1", "pass")))[0] == 250
    assert await groups(service, "p1") == (frozenset({ALICE, X, Y, BOB}),)
    # Bcc: the externals were moved out of sight and never met: nothing to record
    assert (await send(service, mail("b1", "bcc")))[0] == 250
    assert await groups(service, "b1") == ()
    # neither is a mail that showed fewer than two outsiders to each other
    one = mail("p0", "pass").replace(f"To: {X}, {Y}".encode(), f"To: {X}".encode())
    assert (await send(service, one))[0] == 250
    assert await groups(service, "p0") == ()
    # a reject or a hold that is never released does not count
    assert (await send(service, mail("r1", "reject")))[0] == 550
    assert await groups(service, "r1") == ()
    code, text = await send(service, mail("h1", "hold"))
    assert code == 250
    hold_id = text.decode().split()[-1]
    assert await groups(service, "h1") == ()
    assert service.holds is not None
    out = await service.holds.resolve(
        hold_id, Decision.RELEASE, actor="admin", via=Via.CLI, admin=True
    )
    assert out.ok, out
    assert await groups(service, "h1") == (frozenset({ALICE, X, Y, BOB}),)
    # the next reply in the thread gets the record through the engine's lookup
    assert (await send(service, mail("p2", "pass", refs="<h1@city.example.lg.jp>")))[0] == 250
    assert engine.looked_up == [(frozenset({ALICE, X, Y, BOB}),)]


async def test_lookup_fails_open_to_unknown_when_the_store_is_slow(
    svc: tuple[Service, Sink, LookupEngine],
) -> None:
    service, _sink, engine = svc
    relay = service.relay
    assert relay is not None and service.store is not None

    async def slow(_ids: object, *, since: object) -> tuple[frozenset[str], ...]:
        await asyncio.sleep(5)
        return (frozenset({X, Y}),)

    service.store.thread_groups = slow  # type: ignore[method-assign]
    code, _ = await send(service, mail("p3", "pass", refs="<p1@city.example.lg.jp>"))
    assert code == 250
    assert engine.looked_up == [None]
