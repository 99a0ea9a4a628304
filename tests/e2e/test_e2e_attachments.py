"""``leakguard serve`` reads attachments: real SMTP in, extraction workers, real upstream."""

from __future__ import annotations

import json
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.harness import ROOT, Relay
from e2e.sink import Sink

pytestmark = pytest.mark.e2e

EXAMPLES = ROOT / "examples"
POLICY = ROOT / "tests" / "fixtures" / "relay" / "attachments-policy.yaml"
SENDER = "kazuya.sato@city.example.lg.jp"


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[Relay, Sink]]:
    with Sink() as sink:
        r = Relay(
            tmp_path,
            sink.port,
            policy=POLICY,
            extra={"extract": {"workers": 1, "message_timeout": 10}},
        ).start()
        try:
            yield r, sink
        finally:
            r.stop()


def send(port: int, raw: bytes, rcpts: list[str]) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
        c.ehlo("client.test")
        c.mail(SENDER)
        for r in rcpts:
            c.rcpt(r)
        return c.data(raw)


def decisions(r: Relay) -> list[dict[str, object]]:
    out = []
    for line in r.log().splitlines():
        if line.startswith("{") and '"event": "message"' in line:
            out.append(json.loads(line))
    return out


def test_pdf_attachments_are_read_by_the_relay(relay: tuple[Relay, Sink]) -> None:
    r, sink = relay
    # a PDF with a text layer: read, nothing to hold, delivered byte for byte
    form = (EXAMPLES / "attachment-request-form-pdf-ja.eml").read_bytes()
    code, text = send(r.port, form, ["n-kobayashi@minato-print.co.jp"])
    assert code == 250, text
    (got,) = sink.handler.wait_for(1, timeout=20)
    assert got.data == form
    # the scan of the same kind of form has no text layer: PDFium found no text in it
    scan = (EXAMPLES / "attachment-scan-pdf-ja.eml").read_bytes()
    code, text = send(r.port, scan, ["n-kobayashi@minato-print.co.jp"])
    assert code == 250, text
    assert b"hold" in text.lower() or b"held" in text.lower() or b"\xe4\xbf\x9d" in text
    (first, second) = decisions(r)
    assert first["action"] == "pass"
    assert second["action"] == "hold"
    assert second["rules"] == ["unreadable-attachment-outside"]
