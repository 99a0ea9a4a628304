"""A client's retry of a held transaction over real SMTP (issue 12): the same mail sent
again (the client never saw the 250) is answered with the first hold's id, and the sender
gets one notice, not two."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

import pytest

from e2e.harness import Relay
from e2e.sink import Sink

pytestmark = pytest.mark.e2e

MAIL = (
    b"From: kazuya.sato@city.example.lg.jp\r\nTo: a@client-one.example.com, "
    b"b@client-two.example.net\r\nSubject: retry\r\nMessage-ID: <retry-1@city.example.lg.jp>\r\n"
    b"Date: Fri, 14 Feb 2025 17:32:00 +0900\r\n\r\nhello\r\n"
)
RCPTS = ["a@client-one.example.com", "b@client-two.example.net"]


def send() -> bytes:
    with smtplib.SMTP("127.0.0.1", RELAY_PORT[0], timeout=30) as c:
        c.ehlo("client")
        c.mail("kazuya.sato@city.example.lg.jp")
        for r in RCPTS:
            c.rcpt(r)
        code, text = c.data(MAIL)
        assert code == 250, text
        return text


RELAY_PORT: list[int] = [0]


def test_retry_is_recognised(tmp_path: Path) -> None:
    with Sink() as sink:
        relay = Relay(tmp_path, sink.port).start()
        RELAY_PORT[0] = relay.port
        try:
            first = send()
            second = send()
            assert first.startswith(b"2.0.0 held H-") and second == first
            time.sleep(2)
            log = relay.log()
            assert log.count('"event": "hold.created"') == 1
            assert '"event": "hold.retry_recognised"' in log
            notices = [m for m in sink.handler.messages if "kazuya.sato" in " ".join(m.rcpts)]
            assert len(notices) == 1
        finally:
            relay.stop()
