"""``MaildirTransport``: the embedded default when no upstream is configured.

Each accepted message becomes one file in ``<maildir>/new/`` (written to ``tmp/``,
fsynced, renamed), with ``Return-Path`` and ``X-Leakguard-Envelope-To`` lines prepended
(as a delivery agent adds ``Return-Path``/``Delivered-To``) so a newcomer sees who would
have received it. The message bytes that follow are exactly what an upstream would get.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from leakguard.delivery.transport import NO_OPTIONS, SendOptions, SendResult

_counter = itertools.count()


def _safe(value: str) -> str:
    return "".join(ch for ch in value if ch.isprintable() and ch not in "\r\n<>")[:320]


class MaildirTransport:
    name = "maildir"

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("tmp", "new", "cur"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self._host = socket.gethostname().replace("/", "_").replace(":", "_")

    def _write(self, mail_from: str, rcpts: Sequence[str], raw: bytes) -> str:
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(_counter)}.{self._host}"
        head = (
            f"Return-Path: <{_safe(mail_from)}>\r\n"
            f"X-Leakguard-Envelope-To: {', '.join(_safe(r) for r in rcpts)}\r\n"
        ).encode("utf-8", "replace")
        tmp = self.root / "tmp" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, head)
            view = memoryview(raw)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self.root / "new" / name)
        dfd = os.open(self.root / "new", os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return name

    async def send(
        self,
        mail_from: str,
        rcpts: Sequence[str],
        raw: bytes,
        options: SendOptions = NO_OPTIONS,
    ) -> SendResult:
        name = await asyncio.to_thread(self._write, mail_from, list(rcpts), raw)
        return SendResult(accepted=tuple(rcpts), reply=f"250 2.0.0 delivered to maildir {name}")

    async def close(self) -> None:
        return None
