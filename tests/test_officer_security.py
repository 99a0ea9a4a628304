"""Security review of the officer's desk (issue 9): hostile text in the incident record
(PDF, Markdown, text), identifiers in every output, terminal escapes in the new CLIs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pypdfium2 as pdfium

from leakguard.holds.model import HoldRecord, HoldState, Transition, Via
from leakguard.officer.record import (
    Document,
    IncidentFile,
    Section,
    sections,
    to_markdown,
    to_pdf,
    to_text,
)
from leakguard.store.hold_deliveries import HoldDelivery
from leakguard.store.journal import IncidentEvent, IncidentRecord

MYNUMBER = "123456789018"  # a valid check digit
CARD = "4111111111111111"
T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)

HOSTILE = (
    '<img src="/etc/passwd"/> <font name="Courier" size="80">big</font> '
    '<a href="javascript:alert(1)">x</a> <b><i>unbalanced &amp; & &#0; <para> <br/> '
    "\x00\x01\x1b[2J\u202e \udc80 https://evil.example/login www.evil.example "
    "# heading | cell | ![img](x) [link](https://evil.example) `code` "
)


def _pdf_text(pdf: bytes) -> str:
    doc = pdfium.PdfDocument(pdf)
    return "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))


def _doc(text: str) -> Document:
    return Document(
        title=text,
        sections=(
            Section(
                "summary",
                text,
                fields=((text, text),),
                items=(text,),
                table=((text, text, text, text), (text, text, text, text)),
            ),
        ),
        footer=text,
    )


def test_pdf_takes_hostile_text_as_plain_text() -> None:
    pdf = to_pdf(_doc(HOSTILE))  # raised UnicodeEncodeError on the lone surrogate
    assert pdf.startswith(b"%PDF")
    text = _pdf_text(pdf)
    # the markup is text on the page, not an image, a link or a font change
    assert '<img src="/etc/passwd"/>' in text
    assert '<a href="javascript:alert(1)">' in text
    assert b"/URI" not in pdf and b"/Annots" not in pdf and b"/XObject" not in pdf
    assert b"root:" not in pdf


def test_markdown_of_hostile_text_is_inert() -> None:
    md = to_markdown(_doc(HOSTILE))
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e\ud800-\udfff]", md)
    assert "<" not in md and ">" not in md
    assert "https://" not in md and "www.evil" not in md  # no GFM bare links
    assert "](" not in md.replace("\\](", "")  # every [ ] escaped: no inline links
    for line in md.splitlines():
        # headings only where the renderer put them; no line starts a table or HTML block
        assert not line.startswith("#") or line.startswith(("# ", "## "))
        assert "\\#" in line or "#" not in line.lstrip("# ")
        assert "|" not in line.replace("\\|", "") or line.startswith("|")
    body = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert all(ln.replace("\\|", "").count("|") == 5 for ln in body)  # 4 cells, no more


def _file(note: str, error: str) -> IncidentFile:
    hold = HoldRecord(
        id="H-TESTHOLD",
        state=HoldState.RELEASED,
        created_at=T0,
        expires_at=T0 + timedelta(days=1),
        due_at=None,
        escalate_at=None,
        message_sha256="0" * 64,
        mail_from="tanaka@city.example.lg.jp",
        rcpts=("a@client.example.com",),
        auth_user="tanaka@city.example.lg.jp",
        subject="見積",
        action="hold",
        rules=("r1",),
        verdict_json="{}",
        approvers=(),
        offer_bcc=False,
        language="ja",
    )
    inc = IncidentRecord(
        id="I-TEST",
        kind="report",
        state="open",
        created_at=T0,
        reported_by="tanaka@city.example.lg.jp",
        via="reply",
        hold_id=hold.id,
        sender=hold.mail_from,
        rules=("r1",),
    )
    return IncidentFile(
        incident=inc,
        events=(IncidentEvent(T0, "leakguard", "reported", "x"),),
        decision=None,
        hold=hold,
        transitions=(
            Transition(hold.id, T0, None, HoldState.HELD, "system", Via.RELAY),
            Transition(hold.id, T0, None, None, "tanaka@city.example.lg.jp", Via.REPLY, note),
            Transition(hold.id, T0, HoldState.HELD, HoldState.RELEASED, "tanaka", Via.REPLY, note),
        ),
        deliveries=(
            HoldDelivery(1, "mail", "failed", ("a@client.example.com",), 3, T0, T0, error),
        ),
        internal=frozenset(),
        policy_rules=("r1",),
        generated_at=T0,
    )


def test_record_masks_identifiers_in_hold_notes_and_delivery_errors() -> None:
    note = f"reported: マイナンバー {MYNUMBER} カード {CARD}"
    error = f"550 5.7.1 rejected: card {CARD} my number {MYNUMBER}"
    f = _file(note, error)
    for lang in ("ja", "en"):
        doc = sections(f, lang)
        outputs = [to_text(doc), to_markdown(doc), _pdf_text(to_pdf(doc))]
        for out in outputs:
            flat = re.sub(r"[^0-9]", "", out)
            assert MYNUMBER not in flat and CARD not in flat, out
        assert "9018" in outputs[0]  # masked, not dropped


EVIL = "\x1b]0;owned\x07\x1b[2J\u202egpj.exe\x9b31m"


class _Journal:
    def __init__(self, rows: list[IncidentRecord]) -> None:
        self.rows = rows

    async def list_incidents(self, *, state: str | None, limit: int) -> list[IncidentRecord]:
        return self.rows


class _Svc:
    timezone = "Asia/Tokyo"

    def __init__(self, f: IncidentFile) -> None:
        self.f = f
        self.store = type("S", (), {"journal": _Journal([f.incident])})()

    async def record(self, incident_id: str) -> IncidentFile:
        return self.f


async def test_incidents_cli_prints_no_terminal_escapes(capsys: Any) -> None:
    import argparse
    import dataclasses

    from leakguard.commands.incidents import _list, _show

    f = _file(EVIL, EVIL)
    hold = dataclasses.replace(f.hold, subject="見積 " + EVIL) if f.hold else None
    inc = dataclasses.replace(f.incident, sender="a" + EVIL + "@x", note=EVIL)
    f = dataclasses.replace(f, hold=hold, incident=inc)
    svc = _Svc(f)
    for args in (
        argparse.Namespace(open=False, limit=10, json=False),
        argparse.Namespace(open=False, limit=10, json=True),
    ):
        assert await _list(svc, args, "en") == 0
    for fmt in ("text", "md"):
        args = argparse.Namespace(incident_id=inc.id, format=fmt, output=None)
        assert await _show(svc, args, "ja") == 0
    out = capsys.readouterr().out
    assert "owned" in out  # shown, escaped
    assert not any(c in out for c in "\x1b\x07\x9b\u202e"), repr(out)
