"""Fixtures for the headless-Chromium tests: a live web server, an SMTP sink, a browser.

Chromium comes from the Debian package (``/usr/bin/chromium``) and is driven by Python
Playwright with ``executable_path``; the tests skip (not fail) when it is absent.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from test_holds_support import Env, make_env

CHROMIUM = os.environ.get("LEAKGUARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sink:
    port: int
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)


class _SinkHandler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sink.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 2.0.0 OK"


@pytest.fixture
def sink() -> Any:
    from aiosmtpd.controller import Controller

    s = Sink(_free_port())
    ctl = Controller(_SinkHandler(s), hostname="127.0.0.1", port=s.port)
    ctl.start()
    try:
        yield s
    finally:
        ctl.stop()


@dataclass
class Live:
    env: Env
    base_url: str
    sink: Sink


@pytest.fixture
async def live(tmp_path: Path, sink: Sink) -> AsyncIterator[Live]:
    import uvicorn

    from leakguard.delivery.service import Delivery, DeliverySettings
    from leakguard.delivery.smtp import SmtpTransport
    from leakguard.web.app import create_app

    port = _free_port()
    env = await make_env(tmp_path)
    env.clock.t = datetime.now(UTC)
    base = f"http://127.0.0.1:{port}"
    env.web.base_url = base
    app = create_app(env.service, env.web)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serve = asyncio.create_task(server.serve())
    transport = SmtpTransport("127.0.0.1", sink.port, tls="none", timeout=10)
    delivery = Delivery(env.store, transport, DeliverySettings(poll_interval=0.1, workers=2))
    worker = asyncio.create_task(delivery.run())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield Live(env, base, sink)
    finally:
        await delivery.stop()
        worker.cancel()
        await transport.close()
        server.should_exit = True
        await asyncio.wait_for(serve, 5)
        await env.store.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"chromium not installed at {CHROMIUM}")
    pw_mod = pytest.importorskip("playwright.async_api")
    async with pw_mod.async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()
