"""Bounces (null reverse-path) relayed upstream: what a Postfix in front hands over."""

from __future__ import annotations

from e2e.sink import Sink

from leakguard.delivery.smtp import SmtpTransport


async def test_null_sender_is_relayed_as_mail_from_empty() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example\r\nTo: a@example.com\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n\r\nbounce\r\n"
    )
    with Sink() as sink:
        for sender in ("<>", ""):
            transport = SmtpTransport("127.0.0.1", sink.port, tls="none", timeout=10)
            try:
                result = await transport.send(sender, ["a@example.com"], raw)
            finally:
                await transport.close()
            assert result.accepted == ("a@example.com",)
        got = sink.handler.wait_for(2)
    assert [m.mail_from for m in got] == ["<>", "<>"]
    assert got[0].data == raw


async def test_ordinary_sender_unchanged() -> None:
    with Sink() as sink:
        transport = SmtpTransport("127.0.0.1", sink.port, tls="none", timeout=10)
        try:
            await transport.send("x@example.com", ["a@example.com"], b"Subject: s\r\n\r\nb\r\n")
        finally:
            await transport.close()
        (got,) = sink.handler.wait_for(1)
    assert got.mail_from == "x@example.com"
