"""End to end over real SMTP and HTTP (issue 9): a mail passes through a running Service,
the sender reports it by the report link (built for its journal row) and by mail to the
report address, the officer's alert arrives at the upstream sink, and the record and the
``incidents`` command show every step (sent, reported, notified)."""

from __future__ import annotations

import asyncio
import email.policy
import re
import smtplib
from collections.abc import AsyncIterator
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from e2e.sink import Sink
from relay_fakes import FakeEngine

from leakguard.cli import main
from leakguard.config import ServiceConfig
from leakguard.officer.record import sections, to_text
from leakguard.service import Service

ALICE = "alice@city.example.lg.jp"
OFFICER = "security@city.example.lg.jp"
DEPUTY = "deputy@city.example.lg.jp"
REPORT = "report@city.example.lg.jp"
X = "x@alpha.example"

pytestmark = pytest.mark.e2e


def mail(tag: str, subject: str) -> bytes:
    return (
        f"From: Alice <{ALICE}>\r\nTo: {X}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{tag}@city.example.lg.jp>\r\nDate: Mon, 30 Nov 2026 09:00:00 +0900\r\n"
        "X-Test-Action: pass\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n"
    ).encode()


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[tuple[Service, Sink, Path]]:
    with Sink() as sink:
        data: dict[str, Any] = {
            "hostname": "relay.test",
            "data_dir": str(tmp_path / "data"),
            "listeners": [{"kind": "plain", "listen": "127.0.0.1:0"}],
            "upstream": {"host": "127.0.0.1", "port": sink.port, "tls": "none"},
            "web": {"listen": "127.0.0.1:0", "secret": "e2e-secret"},
            "holds": {"language": "en", "notice_from": "leakguard@city.example.lg.jp"},
            "delivery": {"poll_interval": "1s"},
            "incidents": {"officers": [OFFICER], "deputy": DEPUTY, "report_address": REPORT},
        }
        path = tmp_path / "leakguard.yaml"
        path.write_text(yaml.safe_dump(data), "utf-8")
        cfg = ServiceConfig.model_validate(data)
        service = Service(config=cfg, policy_path=tmp_path / "unused.yaml", engine=FakeEngine())
        await service.start()
        try:
            yield service, sink, path
        finally:
            await service.stop(timeout=5)


def _send(port: int, raw: bytes, rcpts: list[str]) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.test")
        c.mail(ALICE)
        for r in rcpts:
            c.rcpt(r)
        return c.data(raw)


def _text(raw: bytes) -> str:
    m = BytesParser(policy=email.policy.default).parsebytes(raw)
    part = m.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def _wait_for_mail(sink: Sink, rcpt: str, needle: str, timeout: float = 15) -> str:
    for _ in range(int(timeout / 0.1)):
        for m in list(sink.handler.messages):
            if rcpt in m.rcpts:
                text = _text(m.data)
                if needle in text:
                    return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"no mail to {rcpt} containing {needle!r}")


async def test_pass_report_alert_and_timeline(
    svc: tuple[Service, Sink, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    service, sink, cfg_path = svc
    assert service.store is not None and service.relay is not None
    assert service.relay.journal is not None and service.incidents is not None
    port = service.smtp_ports["plain-0"]
    code, _ = await asyncio.to_thread(_send, port, mail("one", "Quote for Alpha"), [X])
    assert code == 250
    got = await asyncio.to_thread(sink.handler.wait_for, 1)
    assert got[0].rcpts == [X]  # the mail really went out
    await service.relay.journal.flush()
    [row] = await service.store.journal.find(sender=ALICE)
    assert row.outcome == "sent"

    # 1. the report link for the journal row, over real HTTP
    url = service.incidents.report_url(actor=ALICE, decision_id=row.id, hold_id=None)
    assert url.startswith(f"http://127.0.0.1:{service.web_port}/report/")
    async with httpx.AsyncClient() as http:
        page = await http.get(url + "?lang=en")
        assert page.status_code == 200 and "Quote for Alpha" in page.text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf
        done = await http.post(
            url + "?lang=en",
            data={"csrf": csrf.group(1), "reason": "wrong_recipient", "note": "wrong Alpha"},
        )
        assert done.status_code == 200
    [inc] = await service.store.journal.list_incidents()
    assert inc.id in done.text and inc.decision_id == row.id
    # the officer and the deputy receive the alert at the upstream
    alert = await _wait_for_mail(sink, OFFICER, inc.id)
    assert "reported a mistaken mail" in alert and "x@alpha.example (external)" in alert
    await _wait_for_mail(sink, DEPUTY, inc.id)

    # 2. by mail to the report address: forward the second mail
    code, _ = await asyncio.to_thread(_send, port, mail("two", "Minutes"), [X])
    assert code == 250
    await service.relay.journal.flush()
    fwd = (
        f"From: {ALICE}\r\nTo: {REPORT}\r\nSubject: Fwd: Minutes\r\n"
        "Message-ID: <fwd@city.example.lg.jp>\r\nContent-Type: text/plain\r\n\r\n"
        "Sent to the wrong person.\r\n\r\n---------- Forwarded message ---------\r\n"
        "Message-ID: <two@city.example.lg.jp>\r\nSubject: Minutes\r\n"
    ).encode()
    before = len(sink.handler.messages)
    code, reply = await asyncio.to_thread(_send, port, fwd, [REPORT])
    assert code == 250 and b"Report received as I-" in reply
    incs = await service.store.journal.list_incidents()
    assert len(incs) == 2
    second = next(i for i in incs if i.id != inc.id)
    assert second.via == "reply" and second.note == "Sent to the wrong person."
    confirm = await _wait_for_mail(sink, ALICE, second.id)
    assert "Your report has been received" in confirm
    await _wait_for_mail(sink, OFFICER, second.id)
    # the report mail itself was never relayed to anyone
    await asyncio.sleep(0.3)
    assert not any(REPORT in m.rcpts for m in sink.handler.messages)
    assert all(b"<fwd@city.example.lg.jp>" not in m.data for m in sink.handler.messages[before:])

    # 3. the record shows every step
    f = await service.incidents.record(inc.id)
    assert f is not None
    text = to_text(sections(f, "en"))
    for step in ("Relay decided: pass", "Mistake reported", "Route notified", OFFICER, DEPUTY):
        assert step in text
    assert "Sent at once without a hold" in text
    # and through the command line, from the same store
    rc = await asyncio.to_thread(
        main, ["incidents", "-c", str(cfg_path), "show", inc.id, "--format", "md", "--lang", "ja"]
    )
    out = capsys.readouterr().out
    assert rc == 0 and f"# 誤送信インシデント記録 {inc.id}" in out and "報告先に通知" in out
    rc = await asyncio.to_thread(
        main, ["incidents", "-c", str(cfg_path), "--as", "officer", "followup", inc.id, "apology"]
    )
    assert rc == 0
    rc = await asyncio.to_thread(main, ["incidents", "-c", str(cfg_path), "list", "--open"])
    out = capsys.readouterr().out
    assert rc == 0 and inc.id in out and "apology" in out
    # a report from the command line adds to the mail's incident; an unknown mail is refused
    two = await service.store.journal.find(message_id="<two@city.example.lg.jp>")
    rc = await asyncio.to_thread(
        main,
        ["incidents", "-c", str(cfg_path), "report", "--decision", two[0].id, "--note", "cli"],
    )
    assert rc == 0 and second.id in capsys.readouterr().out
    kinds = [e.kind for e in await service.store.journal.incident_events(second.id)]
    assert "reported_again" in kinds
    rc = await asyncio.to_thread(
        main, ["incidents", "-c", str(cfg_path), "report", "--decision", "M-NOPE"]
    )
    assert rc == 1
    pdf = cfg_path.parent / "record.pdf"
    rc = await asyncio.to_thread(
        main, ["incidents", "-c", str(cfg_path), "show", inc.id, "--format", "pdf", "-o", str(pdf)]
    )
    assert rc == 0 and pdf.read_bytes().startswith(b"%PDF")
