"""The SMTP engine's own floor (issue 11): aiosmtpd's ``SMTP`` and the relay's
``relay.smtpd.SmtpServerProtocol``, each with a handler that only answers 250 (no relay
work at all), driven by Postfix's ``smtp-source`` (5 KB, 10 recipients, one connection per
mail) in one process, at 1 and 20 sessions. Prints mails a second and CPU per mail.

    .venv/bin/python bench/relay/engine_floor.py [--messages 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h

from leakguard.relay.smtpd import Envelope, ServerSettings, Session, SmtpServerProtocol


class _Ours:
    """The relay engine's hooks, answering at once."""

    def handle_MAIL(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        envelope.mail_from = address
        return "250 OK"

    def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        return "250 OK"

    async def handle_PROXY(
        self, server: Any, session: Session, envelope: Envelope, proxy_data: Any
    ) -> bool:
        return True

    async def handle_exception(self, error: Exception) -> str:
        return "451 error"


class _Theirs:
    """aiosmtpd's DATA hook, answering at once."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


async def _run(engine: str, mail: Path, messages: int) -> list[str]:
    loop = asyncio.get_running_loop()
    if engine == "aiosmtpd":
        from aiosmtpd.smtp import SMTP

        server = await loop.create_server(
            lambda: SMTP(_Theirs(), decode_data=False, enable_SMTPUTF8=True), "127.0.0.1", 0
        )
    else:
        settings = ServerSettings(hostname="floor.test")
        server = await loop.create_server(
            lambda: SmtpServerProtocol(_Ours(), settings), "127.0.0.1", 0
        )
    port = server.sockets[0].getsockname()[1]
    out = []
    for sessions in (1, 20):
        cpu0 = time.process_time()
        took = await loop.run_in_executor(
            None, h.smtp_source, port, mail, "pass", messages, sessions, 10
        )
        cpu = time.process_time() - cpu0
        out.append(
            f"{engine:9s} sessions={sessions:2d}: {messages / took:7.0f} msg/s, "
            f"{1000 * cpu / messages:.2f} ms CPU a mail"
        )
    server.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--messages", type=int, default=3000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        mail = h.write_mail("pass", 5000, Path(tmp) / "pass.eml")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        print(f"engine floor, {now}, load {h.loadavg()}")
        for engine in ("aiosmtpd", "leakguard", "aiosmtpd", "leakguard"):  # alternated
            for line in asyncio.run(_run(engine, mail, args.messages)):
                print(" ", line)


if __name__ == "__main__":
    main()
