"""How mail leaves leakguard: the ``UpstreamTransport`` protocol and its results.

Implementations: ``SmtpTransport`` (aiosmtplib, pooled; ``leakguard.delivery.smtp``),
``MaildirTransport`` (the embedded default with no upstream; ``leakguard.delivery.maildir``)
and ``MemoryTransport`` here, for tests.

A transport either returns a ``SendResult`` (the message was accepted for at least one
recipient; ``refused`` lists recipients the upstream turned down) or raises
``UpstreamError`` (nothing was accepted) telling whether the failure is temporary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


@dataclass(frozen=True, slots=True)
class SendResult:
    accepted: tuple[str, ...]
    refused: dict[str, Reply] = field(default_factory=dict)
    reply: str = ""  # the upstream's answer to DATA (often names its queue id)


class UpstreamError(Exception):
    """Nothing was accepted. ``temporary``: try again later (4xx, timeouts, no connection).

    ``ambiguous``: the connection was lost (or timed out) after the message content was
    handed over, before the upstream's final reply; it may have accepted the message.
    Such an error is always temporary: until the upstream says 250 the message is still
    ours to deliver (RFC 5321 §6.1), so it is retried later, at the risk of one duplicate,
    rather than being lost.
    """

    def __init__(
        self,
        code: int,
        text: str,
        *,
        temporary: bool,
        refused: dict[str, Reply] | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text
        self.temporary = temporary or ambiguous
        self.refused = refused or {}
        self.ambiguous = ambiguous


@dataclass(frozen=True, slots=True)
class SendOptions:
    smtputf8: bool = False
    eightbit: bool = False


NO_OPTIONS = SendOptions()


class UpstreamTransport(Protocol):
    name: str

    async def send(
        self,
        mail_from: str,
        rcpts: Sequence[str],
        raw: bytes,
        options: SendOptions = NO_OPTIONS,
    ) -> SendResult: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SentMessage:
    mail_from: str
    rcpts: tuple[str, ...]
    raw: bytes
    options: SendOptions


class MemoryTransport:
    """Keeps what it was given; ``fail_with`` scripts failures (tests)."""

    name = "memory"

    def __init__(self) -> None:
        self.sent: list[SentMessage] = []
        self.fail_with: UpstreamError | None = None
        self.refuse: dict[str, Reply] = {}
        self.hook: Callable[[SentMessage], None] | None = None
        self.delay = 0.0
        self.closed = False

    async def send(
        self,
        mail_from: str,
        rcpts: Sequence[str],
        raw: bytes,
        options: SendOptions = NO_OPTIONS,
    ) -> SendResult:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with
        refused = {r: self.refuse[r] for r in rcpts if r in self.refuse}
        accepted = tuple(r for r in rcpts if r not in refused)
        if not accepted:
            first = next(iter(refused.values()))
            raise UpstreamError(first.code, first.text, temporary=first.temporary, refused=refused)
        msg = SentMessage(mail_from, accepted, raw, options)
        self.sent.append(msg)
        if self.hook is not None:
            self.hook(msg)
        return SendResult(accepted=accepted, refused=refused, reply="250 2.0.0 Ok: queued")

    async def close(self) -> None:
        self.closed = True
