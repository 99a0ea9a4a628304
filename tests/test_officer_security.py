"""Security review of the officer's desk (issue 9): hostile text in the incident record
(PDF, Markdown, text), identifiers in every output, terminal escapes in the new CLIs."""

from __future__ import annotations

import email.policy
import re
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from typing import Any

import pypdfium2 as pdfium
from test_incidents import hook  # noqa: F401  (the webhook receiver fixture)
from test_store import store  # noqa: F401  (the sqlite + postgres fixture)

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
from leakguard.store import SqlStore
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


async def test_no_full_identifier_in_any_officer_output(
    store: SqlStore,  # noqa: F811
    hook: Any,  # noqa: F811
) -> None:
    """A mail whose subject, display names, attachment names and rule evidence carry a
    valid My Number and card number: the journal row, the alert mails, the webhook body,
    the record (text, md, PDF) and the incident events never hold either in full."""
    import json

    import structlog
    from test_holds_support import message_of, raw_mail
    from test_incidents import body_of, cfg, queued_notices, service

    from leakguard.relay.journal import JournalSettings, JournalWriter
    from leakguard.types import Action, Finding, Localized, RuleMatch, Verdict

    spaced = "1234 5678 9018"
    card = "4111-1111-1111-1111"
    raw = raw_mail(
        sender=f"田中 {MYNUMBER} <tanaka@city.example.lg.jp>",
        to=(f"Card {card} <a@client-one.example.com>",),
        subject=f"マイナンバー {spaced} カード {card}",
    )
    msg = message_of(
        raw, mail_from="tanaka@city.example.lg.jp", rcpts=("a@client-one.example.com",)
    )
    finding = Finding(
        detector="personal",
        fact="personal_data.my_number",
        addresses=(),
        detail=f"My Number {MYNUMBER} in attachment {MYNUMBER}.xlsx",
        evidence={"attachment": f"名簿_{CARD}.xlsx", "location": f"line {spaced} {card}"},
    )
    verdict = Verdict(
        action=Action.HOLD,
        rules=(RuleMatch("pii", Action.HOLD, Localized("個人情報", "PII"), findings=(finding,)),),
        audit_rules=(),
        facts={"personal_data.my_number": 1},
        findings=(finding,),
    )
    writer = JournalWriter(
        store, JournalSettings(mode="hashed"), sealer=None, executor=None, log=None
    )
    entry, retained = writer.build(
        decision_id="M-SECURITY0001",
        raw=raw,
        message=msg,
        verdict=verdict,
        sender="tanaka@city.example.lg.jp",
        auth_user=None,
        rcpts=("a@client-one.example.com",),
        external_rcpts=1,
        department="総務課",
        reply=f"250 2.0.0 held {MYNUMBER}",
        hold_id=None,
        at=T0,
        retain=True,
    )
    await store.journal.record([(entry, retained)])
    url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
    svc = service(store, cfg(webhook_url=url, webhook_secret="k"), webhook_backoff=0.01)
    with structlog.testing.capture_logs() as logs:
        inc = await svc.report(
            decision_id=entry.id,
            actor="tanaka@city.example.lg.jp",
            via="web",
            note=f"番号 {MYNUMBER} カード {card} を送ってしまった",
        )
        await svc.drain(10)
    f = await svc.record(inc.id)
    assert f is not None
    outputs: dict[str, str] = {
        "journal": repr(await store.journal.get(entry.id)),
        "webhook": "".join(b.decode() for _, b in hook.got),
        "logs": json.dumps(logs, ensure_ascii=False, default=str),
        "events": repr(await store.journal.incident_events(inc.id)),
    }
    for addr, mail in (await queued_notices(store)).items():
        outputs[f"alert {addr}"] = body_of(mail) + str(
            BytesParser(policy=email.policy.default).parsebytes(mail)["Subject"]
        )
    for lang in ("ja", "en"):
        doc = sections(f, lang)
        outputs[f"text {lang}"] = to_text(doc)
        outputs[f"md {lang}"] = to_markdown(doc)
        outputs[f"pdf {lang}"] = _pdf_text(to_pdf(doc))
    assert hook.got and len(outputs) > 8
    for name, out in outputs.items():
        digits = re.sub(r"[^0-9]", "", out)
        assert MYNUMBER not in digits and CARD not in digits, (name, out)


def test_report_mail_reading_is_linear_in_hostile_quotes() -> None:
    """``Message-ID:`` lines were searched with ``^[>\\s]*``, which crosses lines: a body of
    quote marks took quadratic time (minutes for 200 kB, holding the GIL)."""
    import time

    from leakguard.officer.report_mail import read_report

    raw = (
        "From: tanaka@city.example.lg.jp\r\nTo: report@city.example.lg.jp\r\n"
        "Subject: Fwd: x\r\nIn-Reply-To: <m8@city.example.lg.jp>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "> Message-ID: <m7@city.example.lg.jp>\r\n" + ">\r\n" * 40_000 + "end\r\n"
    ).encode()
    start = time.perf_counter()
    reading = read_report(raw)
    assert time.perf_counter() - start < 1.5
    assert reading.message_ids == ("<m7@city.example.lg.jp>", "<m8@city.example.lg.jp>")


def test_report_links_and_hold_links_do_not_cross() -> None:
    """Same secret, own salts: a report link is no hold-review link, nor the reverse, and
    a report link names one mail only."""
    from leakguard.holds.tokens import LinkSigner, new_token
    from leakguard.officer.links import ReportLinks, ReportRef

    secret = "one-web-secret"
    reports = ReportLinks(secret, base_url="https://g.test", max_age_seconds=3600)
    holds = LinkSigner(secret, max_age_seconds=3600)
    token = new_token()
    hold_link = holds.sign(token)
    report_link = reports.sign(ReportRef(actor="tanaka@x.example", decision_id="M-X"))
    assert holds.unsign(hold_link) == token
    assert reports.verify(report_link) == ReportRef("tanaka@x.example", "M-X", None)
    assert reports.verify(hold_link) is None
    assert holds.unsign(report_link) is None and holds.unsign_any_age(report_link) is None
    # the payload is signed: naming another mail (or another person) breaks the signature
    import base64
    import json

    head = report_link.split(".")[0]
    payload = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    assert payload == {"a": "tanaka@x.example", "d": "M-X"}
    other = base64.urlsafe_b64encode(
        json.dumps({"a": "tanaka@x.example", "d": "M-Y"}, separators=(",", ":")).encode()
    )
    forged = other.decode().rstrip("=") + report_link[len(head) :]
    assert reports.verify(forged) is None
