"""A real upstream SMTP server for tests: aiosmtpd in its own thread, recording what it got."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


@dataclass
class Received:
    mail_from: str
    rcpts: list[str]
    data: bytes
    options: list[str]


@dataclass
class SinkHandler:
    messages: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # rcpt -> reply
    data_reply: str | None = None  # e.g. "451 4.3.0 try later"
    mail_reply: str | None = None
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: int = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content),
                    list(envelope.mail_options),
                )
            )
        return "250 2.0.0 Ok: queued as SINK"

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Received]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            time.sleep(0.02)
        with self.lock:
            return list(self.messages)


class _CountingSMTP(SMTP):
    def connection_made(self, transport: Any) -> None:
        if self._original_transport is None:  # not the STARTTLS re-entry
            self.event_handler.connections += 1
        super().connection_made(transport)


class _PipeliningSMTP(_CountingSMTP):
    """Offers PIPELINING (aiosmtpd reads pipelined commands but does not say so)."""

    _in_ehlo = False

    async def smtp_EHLO(self, hostname: str) -> None:
        self._in_ehlo = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_ehlo = False

    async def push(self, status: Any) -> None:
        if self._in_ehlo and status == "250 HELP":
            await super().push("250-PIPELINING")
        await super().push(status)


class Sink:
    """Start with ``with Sink() as sink:``; ``sink.port``, ``sink.handler.messages``."""

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        require_starttls: bool = False,
        port: int = 0,
        pipelining: bool = False,
    ) -> None:
        self.handler = SinkHandler()
        self._pipelining = pipelining
        self._tls = tls_context
        self._require = require_starttls
        self._port = port
        self.controller: Controller | None = None

    def __enter__(self) -> Sink:
        handler = self.handler
        tls = self._tls
        req = self._require
        cls = _PipeliningSMTP if self._pipelining else _CountingSMTP

        class C(Controller):
            def factory(self) -> SMTP:
                return cls(
                    handler,
                    hostname="sink.test",
                    tls_context=tls,
                    require_starttls=req,
                    enable_SMTPUTF8=True,
                    data_size_limit=None,
                )

        self.controller = C(handler, hostname="127.0.0.1", port=self._port or _free_port())
        self.controller.start()
        return self

    @property
    def port(self) -> int:
        assert self.controller is not None
        return int(self.controller.port)

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def __exit__(self, *exc: object) -> None:
        if self.controller is not None:
            self.controller.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port() -> int:
    return _free_port()
