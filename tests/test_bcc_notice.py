"""The sender is told when the relay moved recipients to Bcc (issue 9): over real SMTP
(a Service with the FakeEngine and an upstream sink), and the notifier on its own."""

from __future__ import annotations

import asyncio
import email.policy
import smtplib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from e2e.sink import Sink
from relay_fakes import FakeEngine

from leakguard.config import ServiceConfig
from leakguard.officer.bcc_notice import BccChange, BccNoticeSettings, BccNotifier
from leakguard.officer.links import ReportLinks, ReportRef
from leakguard.organization import Organization, Person
from leakguard.service import Service
from leakguard.types import Action, Localized, Message, RuleMatch, Verdict

ALICE = "alice@city.example.lg.jp"
X = "x@alpha.example"
Y = "y@beta.example"
OUTSIDER = "someone@outside.example"


def parse(raw: bytes) -> EmailMessage:
    m = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(m, EmailMessage)
    return m


def body(raw: bytes, subtype: str = "plain") -> str:
    part = parse(raw).get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())


def mail(sender: str, subject: str, tag: str) -> bytes:
    return (
        f"From: {sender}\r\n"
        f'To: "<script>alert(1)</script> Xavier" <{X}>, "Yuki & Co" <{Y}>\r\n'
        f"Subject: {subject}\r\nMessage-ID: <{tag}@city.example.lg.jp>\r\n"
        "Date: Mon, 30 Nov 2026 09:00:00 +0900\r\nX-Test-Action: bcc\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n"
    ).encode()


def send(port: int, sender: str, raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.test")
        c.mail(sender)
        c.rcpt(X)
        c.rcpt(Y)
        return c.data(raw)


class Live:
    def __init__(self, service: Service, sink: Sink) -> None:
        self.service = service
        self.sink = sink

    @property
    def port(self) -> int:
        return self.service.smtp_ports["plain-0"]

    async def settle(self) -> None:
        relay = self.service.relay
        assert relay is not None and relay.bcc_notices is not None and relay.journal is not None
        await relay.bcc_notices.flush()
        await relay.journal.flush()


async def start(tmp_path: Path, sink: Sink, **extra: Any) -> Service:
    cfg = ServiceConfig.model_validate(
        {
            "hostname": "relay.test",
            "data_dir": str(tmp_path / "data"),
            "listeners": [{"kind": "plain", "listen": "127.0.0.1:0"}],
            "upstream": {"host": "127.0.0.1", "port": sink.port, "tls": "none"},
            "web": {"listen": "127.0.0.1:0", "secret": "e2e-secret"},
            "delivery": {"poll_interval": "1s"},
            **extra,
        }
    )
    service = Service(config=cfg, policy_path=tmp_path / "unused.yaml", engine=FakeEngine())
    await service.start()
    return service


@pytest.fixture
async def live(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Live]:
    extra = getattr(request, "param", {"holds": {"language": "en"}})
    with Sink() as sink:
        service = await start(tmp_path, sink, **extra)
        try:
            yield Live(service, sink)
        finally:
            await service.stop(timeout=5)


def _wait(sink: Sink, cond: Any, timeout: float = 10.0) -> list[Any]:
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        got = [m for m in sink.messages if cond(m)]
        if got:
            return got
        time.sleep(0.05)
    return []


@pytest.mark.e2e
async def test_bcc_rewrite_delivers_and_notifies_the_internal_sender(live: Live) -> None:
    subject = "<img src=x onerror=alert(1)> 名簿 マイナンバー 1234 5678 9018"
    code, _ = await asyncio.to_thread(send, live.port, ALICE, mail(ALICE, subject, "b1"))
    assert code == 250
    await live.settle()
    # the upstream got the rewritten mail: the external recipients are no longer visible
    (sent,) = await asyncio.to_thread(_wait, live.sink, lambda m: X in m.rcpts)
    assert sorted(sent.rcpts) == [X, Y]
    head = sent.data.split(b"\r\n\r\n", 1)[0]
    assert X.encode() not in head and Y.encode() not in head
    # ... and the sender got the notice, through the delivery queue
    (notice,) = await asyncio.to_thread(_wait, live.sink, lambda m: m.rcpts == [ALICE])
    raw = notice.data
    msg = parse(raw)
    assert msg["Subject"].startswith("[leakguard] Your mail was sent with recipients moved to Bcc")
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Leakguard-Notice"].startswith("bcc_notice; decision=M-")
    assert msg["In-Reply-To"] == "<b1@city.example.lg.jp>"
    text, html = body(raw), body(raw, "html")
    assert "Moved from To/Cc to Bcc (2)" in text
    assert X in text and Y in text
    assert "Too many external recipients" in text and "[test-bcc]" in text
    assert "The mail was delivered" in text
    # identifiers in the subject are masked, everywhere
    assert "1234 5678 9018" not in raw.decode("utf-8", "replace")
    assert "1234 5678 9018" not in text and "1234 5678 9018" not in html
    # hostile names and subject are escaped in the HTML part
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert "Yuki &amp; Co" in html
    # the report link names this decision and the sender, signed
    assert live.service.store is not None and live.service.report_links is not None
    (row,) = await live.service.store.journal.find(sender=ALICE)
    assert row.outcome == "sent_bcc"
    assert msg["X-Leakguard-Notice"] == f"bcc_notice; decision={row.id}"
    prefix = live.service.report_links.base_url + "/report/"
    assert prefix.startswith("http://127.0.0.1:")
    signed = text.split(prefix, 1)[1].split()[0]
    assert f'href="{prefix}{signed}"' in html
    assert live.service.report_links.verify(signed) == ReportRef(actor=ALICE, decision_id=row.id)


@pytest.mark.e2e
async def test_no_notice_to_an_external_sender(live: Live) -> None:
    code, _ = await asyncio.to_thread(send, live.port, OUTSIDER, mail(OUTSIDER, "hi", "b2"))
    assert code == 250
    await live.settle()
    assert await asyncio.to_thread(_wait, live.sink, lambda m: X in m.rcpts)
    assert live.service.store is not None
    await asyncio.sleep(0.3)
    queued = [d for d in await live.service.store.list_deliveries() if d.kind == "notice"]
    assert queued == []
    assert not [m for m in live.sink.messages if OUTSIDER in m.rcpts]


@pytest.mark.e2e
@pytest.mark.parametrize("live", [{"incidents": {"bcc_notice": False}}], indirect=True)
async def test_bcc_notice_can_be_turned_off(live: Live) -> None:
    code, _ = await asyncio.to_thread(send, live.port, ALICE, mail(ALICE, "hi", "b3"))
    assert code == 250
    await live.settle()
    assert await asyncio.to_thread(_wait, live.sink, lambda m: X in m.rcpts)
    assert live.service.store is not None
    await asyncio.sleep(0.3)
    assert [d for d in await live.service.store.list_deliveries() if d.kind == "notice"] == []


@pytest.mark.e2e
@pytest.mark.parametrize("live", [{}], indirect=True)
async def test_notice_in_japanese_by_default(live: Live) -> None:
    code, _ = await asyncio.to_thread(send, live.port, ALICE, mail(ALICE, "見積", "b4"))
    assert code == 250
    await live.settle()
    (notice,) = await asyncio.to_thread(_wait, live.sink, lambda m: m.rcpts == [ALICE])
    msg = parse(notice.data)
    assert msg["Subject"] == "[leakguard] 宛先を Bcc に移して送信しました: 見積"
    text = body(notice.data)
    assert "To/Cc から Bcc に移した宛先 (2 件)" in text and "社外の宛先が多すぎます" in text
    assert "誤送信を報告する" in text


# ---------------------------------------------------------------------- the notifier alone

ORG = Organization(
    internal_domains=["city.example.lg.jp"],
    directory=[
        Person("alice@city.example.lg.jp", "Alice", language="en"),
        Person("taro@city.example.lg.jp", "太郎"),
    ],
)


class Queue:
    def __init__(self, fail: bool = False) -> None:
        self.items: list[tuple[bytes, str, list[str], str]] = []
        self.fail = fail

    async def enqueue_delivery(
        self, raw: bytes, mail_from: str, rcpts: Any, *, kind: str = "mail"
    ) -> int:
        if self.fail:
            raise RuntimeError("store down")
        self.items.append((raw, mail_from, list(rcpts), kind))
        return len(self.items)


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.events.append((event, kw))

    error = info


def _message(subject: str = "s", headers: tuple[tuple[str, str], ...] = ()) -> Message:
    return Message(
        raw=b"",
        subject=subject,
        message_id="<m@city.example.lg.jp>",
        from_=(),
        sender_header=None,
        reply_to=(),
        to=(),
        cc=(),
        bcc=(),
        envelope_from=None,
        envelope_rcpts=(),
        text_parts=(),
        attachments=(),
        attached_messages=(),
        quoted_blocks=(),
        headers=headers,
    )


VERDICT = Verdict(
    action=Action.BCC,
    rules=(
        RuleMatch(
            rule_id="bulk-external",
            action=Action.BCC,
            reason=Localized("社外の宛先が多数見えています", "Many external recipients"),
        ),
    ),
    audit_rules=(),
    facts={},
    findings=(),
)


def notifier(queue: Queue, log: Log, **kw: Any) -> BccNotifier:
    settings = BccNoticeSettings(
        notice_from="leakguard@city.example.lg.jp",
        report_address="leakguard-report@city.example.lg.jp",
        command_address="leakguard-hold@city.example.lg.jp",
        **kw,
    )
    links = ReportLinks("s", base_url="https://guard.test", max_age_seconds=3600)
    return BccNotifier(queue, settings, links=links, log=log)


async def _submit(n: BccNotifier, **kw: Any) -> None:
    args: dict[str, Any] = dict(
        org=ORG,
        decision_id="M-TEST",
        mail_from="taro@city.example.lg.jp",
        auth_user=None,
        rcpts=[X, Y],
        message=_message(),
        verdict=VERDICT,
        removed=(X, Y),
        names={},
    )
    args.update(kw)
    n.submit(**args)
    await n.flush()


async def test_language_from_the_directory_and_who_is_told() -> None:
    q, log = Queue(), Log()
    n = notifier(q, log)
    await _submit(n, auth_user=ALICE, mail_from="shared@city.example.lg.jp")
    ((raw, frm, rcpts, kind),) = q.items
    assert rcpts == [ALICE] and kind == "notice" and frm == "leakguard@city.example.lg.jp"
    assert "Many external recipients" in body(raw)
    await _submit(n)  # taro: no language in the directory, the default (ja)
    assert q.items[-1][2] == ["taro@city.example.lg.jp"]
    assert "社外の宛先が多数見えています" in body(q.items[-1][0])
    # an AUTH login that is not an address: the envelope sender is told
    await _submit(n, auth_user="alice-login")
    assert q.items[-1][2] == ["taro@city.example.lg.jp"]
    assert len(q.items) == 3


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"mail_from": OUTSIDER}, "not_internal"),
        ({"mail_from": OUTSIDER, "auth_user": OUTSIDER}, "not_internal"),
        ({"rcpts": [X, "leakguard-report@city.example.lg.jp"]}, "command_or_report_address"),
        ({"rcpts": ["leakguard-hold+abc@city.example.lg.jp"]}, "command_or_report_address"),
        ({"mail_from": "leakguard@city.example.lg.jp"}, "notice_sender"),
        ({"message": _message(headers=(("Auto-Submitted", "auto-generated"),))}, "automatic"),
    ],
)
async def test_no_notice(kw: dict[str, Any], reason: str) -> None:
    q, log = Queue(), Log()
    await _submit(notifier(q, log), **kw)
    assert q.items == []
    assert ("bcc_notice.skipped", {"decision_id": "M-TEST", "reason": reason}) in log.events


async def test_nothing_moved_or_disabled_means_no_notice() -> None:
    q, log = Queue(), Log()
    await _submit(notifier(q, log), removed=())
    await _submit(notifier(q, log, enabled=False))
    assert q.items == [] and log.events == []


async def test_a_queueing_failure_is_logged_not_raised() -> None:
    log = Log()
    await _submit(notifier(Queue(fail=True), log))
    assert [e for e, _ in log.events] == ["bcc_notice.failed"]


def test_many_recipients_are_counted() -> None:
    n = notifier(Queue(), Log())
    moved = tuple(f"user{i}@ext{i}.example" for i in range(45))
    raw = n.build(
        BccChange(
            decision_id="M-X",
            to=ALICE,
            lang="en",
            subject="s",
            moved=moved,
            reasons=(("bulk-external", "Many"),),
            message_id="",
            at=datetime(2026, 11, 30, tzinfo=UTC),
        )
    )
    text = body(raw)
    assert "Moved from To/Cc to Bcc (45)" in text and "and 25 more" in text
    assert "user19@ext19.example" in text and "user20@ext20.example" not in text
    assert parse(raw)["In-Reply-To"] is None


async def test_identifiers_in_names_and_subject_never_reach_the_notice() -> None:
    mynumber, card = "123456789018", "4111 1111 1111 1111"
    q, log = Queue(), Log()
    n = notifier(q, log)
    await _submit(
        n,
        message=_message(subject=f"見積 {mynumber} {card}"),
        names={X: f"田中 {mynumber}", Y: f"Card {card}"},
    )
    assert len(q.items) == 1
    raw = q.items[0][0]
    for out in (body(raw), body(raw, "html"), str(parse(raw)["Subject"])):
        digits = "".join(ch for ch in out if ch.isdigit())
        assert mynumber not in digits and card.replace(" ", "") not in digits, out
    assert "9018" in body(raw)  # masked, not dropped


def test_notice_headers_refuse_cr_and_lf_and_encode_japanese() -> None:
    """``alternative_mail`` (compat32, issue 11) keeps what the SMTP policy guaranteed: no
    header injection, RFC 2047 for non-ASCII values, CRLF line ends."""
    import email
    import email.policy

    import pytest

    from leakguard.holds.notice import alternative_mail

    for bad in ("a\r\nBcc: victim@x.jp", "a\nBcc: victim@x.jp", "a\rB"):
        with pytest.raises(ValueError):
            alternative_mail([("Subject", bad)], "t", "<p>h</p>")
    raw = alternative_mail([("Subject", "件名 " * 40), ("To", ALICE)], "本文", "<p>本文</p>")
    assert raw.isascii() and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert m["Subject"] == ("件名 " * 40).strip() or m["Subject"] == "件名 " * 40
    assert [p.get_content() for p in m.iter_parts()] == ["本文", "<p>本文</p>"]


def test_notice_mime_written_directly_reads_back_exactly() -> None:
    """``alternative_mail`` writes the MIME itself (issue 11, stop 18): every value and
    part reads back as given, addresses stay addresses, and no line is longer than SMTP
    allows (a long ASCII line goes as base64, not 7bit)."""
    import email
    import email.policy

    from leakguard.holds.notice import alternative_mail

    subject = "【確認】" + "予算要求の取りまとめ " * 12 + "end"
    long_line = "x" * 1500
    raw = alternative_mail(
        [
            ("From", "漏えい防止システム <leakguard@city.example.lg.jp>"),
            ("To", '"Sato, Kazuya" <kazuya.sato@city.example.lg.jp>'),
            ("Subject", subject),
            ("References", "<" + "a" * 90 + "@x.jp> <" + "b" * 90 + "@x.jp>"),
        ],
        "ascii text\n" + long_line + "\n",
        "<p>本文 text</p>",
    )
    assert raw.isascii()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert m["Subject"] == subject
    assert m["From"].addresses[0].addr_spec == "leakguard@city.example.lg.jp"
    assert m["From"].addresses[0].display_name == "漏えい防止システム"
    assert m["To"].addresses[0].display_name == "Sato, Kazuya"
    text, html = list(m.iter_parts())
    assert text["Content-Transfer-Encoding"] == "base64"  # a 1,500-character line
    assert text.get_content().replace("\r\n", "\n") == "ascii text\n" + long_line + "\n"
    assert html.get_content() == "<p>本文 text</p>"
    assert m.get_content_type() == "multipart/alternative"
