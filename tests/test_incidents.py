"""Incident reports and near-miss alerts (issue 9): idempotent reports, who is told, the
signed webhook against a local HTTP server, near-miss rules, the record as Markdown and PDF
(parsed back with pdfium), the report address intake and the ``incidents`` command."""

from __future__ import annotations

import asyncio
import base64
import email.policy
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_holds_support import (
    LOOKALIKE,
    ORG,
    THIRD_PARTY,
    do_hold,
    make_env,
    verdict,
)
from test_store import store  # noqa: F401  (the sqlite + postgres fixture)

from leakguard.holds.commands import Decision
from leakguard.holds.model import Via
from leakguard.masking import redact_text
from leakguard.officer.config import IncidentsConfig
from leakguard.officer.incidents import (
    IncidentService,
    ReportRefused,
    alert_triggers,
    webhook_signature,
)
from leakguard.officer.links import ReportLinks
from leakguard.officer.record import sections, to_markdown, to_pdf, to_text
from leakguard.officer.report_mail import read_report, strip_prefixes
from leakguard.store import SqlStore
from leakguard.store.journal import DecisionEntry
from leakguard.types import Action, Finding, Localized, RuleMatch, Verdict

NOW = datetime.now(UTC)
TANAKA = "tanaka@city.example.lg.jp"
SATO = "sato@city.example.lg.jp"  # tanaka's supervisor in the directory (language en)
OFFICER = "security@city.example.lg.jp"
DEPUTY = "deputy@city.example.lg.jp"
MYNUMBER = "1234 5678 9018"


def cfg(**kw: Any) -> IncidentsConfig:
    base: dict[str, Any] = {
        "officers": [OFFICER],
        "deputy": DEPUTY,
        "report_address": "report@city.example.lg.jp",
    }
    base.update(kw)
    return IncidentsConfig.model_validate(base)


def service(store: SqlStore, config: IncidentsConfig | None = None, **kw: Any) -> IncidentService:  # noqa: F811
    return IncidentService(
        store,
        config or cfg(),
        organization=ORG,
        notice_from="leakguard@city.example.lg.jp",
        links=ReportLinks("s3cret", base_url="http://review.test", max_age_seconds=3600),
        base_url="http://review.test",
        policy_rules=lambda: ["forwarded-third-party", "lookalike", "bulk-external"],
        **kw,
    )


def row(i: int = 1, **kw: Any) -> DecisionEntry:
    fields: dict[str, Any] = dict(
        id=f"M-INC{i:09d}",
        at=NOW - timedelta(minutes=i),
        sender=TANAKA,
        action="pass",
        outcome="sent",
        rcpts=("a@client-one.example.com", "suzuki@city.example.lg.jp"),
        external_rcpts=1,
        subject="見積 ****9018",
        message_id=f"<m{i}@city.example.lg.jp>",
        department="総務課",
        summary={
            "facts": {"personal_data.my_number": 1},
            "rules": [],
            "audit_rules": [
                {
                    "id": "audit-pii",
                    "action": "hold",
                    "mode": "audit",
                    "reason": {"ja": "a", "en": "a"},
                }
            ],
            "findings": [
                {
                    "detector": "personal",
                    "fact": "personal_data.my_number",
                    "addresses": [],
                    "detail": "My Number ********9018",
                    "evidence": {"location": "body line 3"},
                }
            ],
        },
        sha256="0" * 64,
        size=1234,
    )
    fields.update(kw)
    return DecisionEntry(**fields)


async def queued_notices(store: SqlStore) -> dict[str, bytes]:  # noqa: F811
    out = {}
    for d in await store.list_deliveries():
        if d.kind == "notice":
            out[d.rcpts[0]] = await store.get_message(d.message_sha256)
    return out


def body_of(raw: bytes) -> str:
    m = BytesParser(policy=email.policy.default).parsebytes(raw)
    part = m.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


# ---------------------------------------------------------------------- reports


async def test_report_is_idempotent_and_tells_the_route(store: SqlStore) -> None:  # noqa: F811
    await store.journal.record([(row(1), None)])
    svc = service(store)
    inc = await svc.report(decision_id="M-INC000000001", actor=TANAKA, via="web", note="wrong")
    again = await svc.report(
        decision_id="M-INC000000001", actor=TANAKA.upper(), via="reply", note="still " + MYNUMBER
    )
    assert again.id == inc.id
    assert inc.department == "総務課" and inc.sender == TANAKA and inc.kind == "report"
    events = await store.journal.incident_events(inc.id)
    kinds = [e.kind for e in events]
    assert kinds.count("reported") == 1 and kinds.count("reported_again") == 1
    assert MYNUMBER not in " ".join(e.detail for e in events)  # the note is masked
    # officer, deputy and tanaka's supervisor from the directory, each once, each recorded
    notified = sorted(e.detail for e in events if e.kind == "notified")
    assert notified == [
        f"{DEPUTY} (deputy)",
        f"{SATO} (supervisor)",
        f"{OFFICER} (officer)",
    ]
    mails = await queued_notices(store)
    assert set(mails) == {OFFICER, DEPUTY, SATO}
    officer_text = body_of(mails[OFFICER])
    assert inc.id in officer_text and "誤送信を報告しました" in officer_text
    assert "reported a mistaken mail" in officer_text  # both languages in one mail
    assert "a@client-one.example.com (社外)" in officer_text
    assert "http://review.test/admin/incidents/" + inc.id in officer_text
    # the supervisor reads English first (directory language)
    sato = body_of(mails[SATO])
    assert sato.index("reported a mistaken mail") < sato.index("誤送信を報告しました")
    m = BytesParser(policy=email.policy.default).parsebytes(mails[SATO])
    assert m["Auto-Submitted"] == "auto-generated" and "[Mistake reported]" in str(m["Subject"])
    assert MYNUMBER not in officer_text


async def test_report_refused_for_strangers_and_unknown_mail(store: SqlStore) -> None:  # noqa: F811
    await store.journal.record([(row(2), None)])
    svc = service(store)
    with pytest.raises(ReportRefused) as ei:
        await svc.report(decision_id="M-INC000000002", actor="mallory@evil.example", via="web")
    assert ei.value.code == "not_entitled"
    with pytest.raises(ReportRefused) as ei:
        await svc.report(decision_id="M-NOPE", actor=TANAKA, via="web")
    assert ei.value.code == "unknown_mail"
    inc = await svc.report(decision_id="M-INC000000002", actor="admin:officer", via="cli")
    assert inc.reported_by == "admin:officer"
    assert await store.journal.list_incidents() == [inc]


async def test_supervisor_not_told_when_disabled_and_near_misses_skip_them(
    store: SqlStore,  # noqa: F811
) -> None:
    await store.journal.record([(row(3), None)])
    svc = service(store, cfg(notify_supervisor=False, deputy=None))
    inc = await svc.report(decision_id="M-INC000000003", actor=TANAKA, via="web")
    assert svc.route(inc) == [(OFFICER, "officer")]


async def test_concurrent_reports_make_one_incident(store: SqlStore) -> None:  # noqa: F811
    await store.journal.record([(row(4), None)])
    svc = service(store)
    got = await asyncio.gather(
        *(svc.report(decision_id="M-INC000000004", actor=TANAKA, via="web") for _ in range(5))
    )
    assert len({i.id for i in got}) == 1
    assert len(await store.journal.list_incidents()) == 1


# ---------------------------------------------------------------------- webhook


class _Hook(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.got.append((dict(self.headers), body))
        code = self.server.codes.pop(0) if self.server.codes else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *a: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[Any]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    srv.got = []  # type: ignore[attr-defined]
    srv.codes = []  # type: ignore[attr-defined]
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv
    srv.shutdown()


async def test_webhook_is_signed_retried_and_masked(store: SqlStore, hook: Any) -> None:  # noqa: F811
    hook.codes = [503]  # the first attempt fails: retried after the backoff
    await store.journal.record([(row(5), None)])
    url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
    svc = service(store, cfg(webhook_url=url, webhook_secret="hook-key"), webhook_backoff=0.05)
    inc = await svc.report(decision_id="M-INC000000005", actor=TANAKA, via="web", note=MYNUMBER)
    await svc.drain(10)
    assert len(hook.got) == 2
    headers, body = hook.got[-1]
    expected = "sha256=" + hmac.new(b"hook-key", body, hashlib.sha256).hexdigest()
    assert headers["X-Leakguard-Signature"] == expected == webhook_signature(b"hook-key", body)
    data = json.loads(body)
    assert data["event"] == "incident.report" and data["incident"]["id"] == inc.id
    assert data["mail"]["external_recipients"] == 1
    assert MYNUMBER not in body.decode()
    kinds = [e.kind for e in await store.journal.incident_events(inc.id)]
    assert "webhook_ok" in kinds and "webhook_failed" not in kinds


async def test_webhook_gives_up_and_records_it(
    store: SqlStore,  # noqa: F811
    hook: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEAKGUARD_WEBHOOK_SECRET", "from-env")
    hook.codes = [500, 500, 500]
    await store.journal.record([(row(6), None)])
    url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
    svc = service(store, cfg(webhook_url=url), webhook_backoff=0.01, webhook_attempts=3)
    inc = await svc.report(decision_id="M-INC000000006", actor=TANAKA, via="web")
    await svc.drain(10)
    assert len(hook.got) == 3
    headers, body = hook.got[0]
    assert headers["X-Leakguard-Signature"] == webhook_signature(b"from-env", body)
    events = await store.journal.incident_events(inc.id)
    assert [e.detail for e in events if e.kind == "webhook_failed"] == ["HTTP 500"]


# ---------------------------------------------------------------------- near misses


def _v(*findings: Finding, rule: str = "r1", facts: dict[str, int] | None = None) -> Verdict:
    rm = RuleMatch(rule, Action.HOLD, Localized("j", "e"), findings=tuple(findings))
    return Verdict(
        action=Action.HOLD,
        rules=(rm,),
        audit_rules=(),
        facts=facts or {f.fact: 1 for f in findings},
        findings=tuple(findings),
    )


def test_alert_triggers_follow_the_configuration() -> None:
    pii = Finding("personal", "personal_data.my_number", (), "****9018")
    default = cfg()
    assert alert_triggers(_v(THIRD_PARTY), default) == ["quoted_third_party_addresses"]
    assert alert_triggers(_v(LOOKALIKE, pii), default) == ["lookalike_domains", "personal_data"]
    bulk = Finding("recipients", "visible_external_recipients", (), "12")
    assert alert_triggers(_v(bulk, rule="bulk-external"), default) == []
    # by rule id, and exceptions
    assert alert_triggers(
        _v(bulk, rule="bulk-external"), cfg(alert_on_release=["rule:bulk-external"])
    ) == ["rule:bulk-external"]
    assert alert_triggers(_v(THIRD_PARTY, rule="noisy"), cfg(except_rules=["noisy"])) == []
    assert alert_triggers(_v(pii), cfg(alert_on_release=["lookalike_domains"])) == []
    assert alert_triggers(_v(pii), cfg(alert_on_release=[])) == []
    # a verdict recorded without per-rule findings falls back to its facts
    bare = Verdict(
        action=Action.HOLD,
        rules=(RuleMatch("r", Action.HOLD, Localized("j", "e")),),
        audit_rules=(),
        facts={"personal_data_items": 2},
        findings=(),
    )
    assert alert_triggers(bare, default) == ["personal_data"]


async def test_release_against_a_finding_alerts_on_the_spot(tmp_path: Path) -> None:
    env = await make_env(tmp_path)
    try:
        svc = IncidentService(
            env.store,
            cfg(),
            organization=ORG,
            notice_from="leakguard@city.example.lg.jp",
            base_url="http://review.test",
        )
        env.service.on_resolved.append(svc.on_resolved)
        h = await do_hold(env, verdict(findings=[THIRD_PARTY]))
        out = await env.service.resolve(
            h.id, Decision.RELEASE, actor=TANAKA, via=Via.WEB, identity=TANAKA
        )
        assert out.ok
        [inc] = await env.store.journal.list_incidents(kind="near_miss")
        assert inc.hold_id == h.id and inc.note == "quoted_third_party_addresses"
        assert inc.reported_by == TANAKA and inc.via == "web"
        mails = await queued_notices(env.store)
        assert OFFICER in mails and DEPUTY in mails and SATO not in mails
        body = body_of(mails[OFFICER])
        assert "quoted_third_party_addresses" in body
        # the reasons and the hold's state are words a reader understands, in both languages
        assert (
            "警告の理由: 引用・転送部分にある第三者のアドレス (quoted_third_party_addresses)"
            in body
        )
        assert "third-party addresses in quoted or forwarded text" in body
        assert f"{h.id} (送信済み)" in body
        assert f"報告者: {TANAKA} (Web (リンク・画面))" in body
        assert f"Reported by: {TANAKA} (web (link or page))" in body
        record = to_text(sections(await svc.record(inc.id), "ja"))  # type: ignore[arg-type]
        assert "引用・転送部分にある第三者のアドレス" in record
        # the timeline too: the alert's reason and each role told, in words
        timeline = record[record.index("経過") :]
        assert "引用・転送部分にある第三者のアドレス" in timeline
        assert f"{OFFICER} (情報セキュリティ担当者)" in timeline and "(officer)" not in timeline
        # a second resolution event for the same hold adds to the same incident
        moved = await env.store.get_hold(h.id)
        assert moved is not None
        await svc.near_miss(moved, decision=Decision.RELEASE, actor="x", via="web", mistake=False)
        assert len(await env.store.journal.list_incidents()) == 1
        # a discard that is not "a mistake" is no near miss; a mistake is
        h2 = await do_hold(env, verdict(findings=[THIRD_PARTY]), subject="別件")
        await env.service.resolve(
            h2.id, Decision.DISCARD, actor=TANAKA, via=Via.WEB, identity=TANAKA
        )
        assert len(await env.store.journal.list_incidents()) == 1
        gone = await env.store.get_hold(h2.id)
        assert gone is not None
        mistake = await svc.near_miss(
            gone, decision=Decision.DISCARD, actor=TANAKA, via="web", mistake=True
        )
        assert mistake is not None and mistake.note == "mistake"
        off = IncidentService(
            env.store,
            cfg(alert_on_mistake=False),
            organization=ORG,
            notice_from="leakguard@city.example.lg.jp",
        )
        assert (
            await off.near_miss(
                gone, decision=Decision.DISCARD, actor=TANAKA, via="web", mistake=True
            )
            is None
        )
    finally:
        await env.store.close()


async def test_report_of_a_hold_via_the_hook(tmp_path: Path) -> None:
    env = await make_env(tmp_path)
    try:
        svc = IncidentService(
            env.store, cfg(), organization=ORG, notice_from="leakguard@city.example.lg.jp"
        )
        env.service.on_report.append(svc.on_report)
        h = await do_hold(env, verdict(findings=[LOOKALIKE]))
        for hook in env.service.on_report:
            await hook(h, TANAKA, Via.REPLY, "wrong company")
        [inc] = await env.store.journal.list_incidents()
        assert inc.hold_id == h.id and inc.via == "reply" and inc.rules == h.rules
        doc = sections(await svc.record(inc.id), "en")  # type: ignore[arg-type]
        text = to_text(doc)
        assert "b@client-two.example.net (external)" in text
        assert "Not sent (held)" in text
    finally:
        await env.store.close()


async def test_the_approver_of_a_held_mail_may_report_it(tmp_path: Path) -> None:
    """The supervisor who released a two-person-check hold may report it afterwards; a
    colleague who was neither sender nor approver may not."""
    env = await make_env(tmp_path)
    try:
        svc = IncidentService(
            env.store, cfg(), organization=ORG, notice_from="leakguard@city.example.lg.jp"
        )
        h = await do_hold(env, verdict(approval="supervisor"))
        assert SATO in [a.lower() for a in h.approvers]
        inc = await svc.report(hold_id=h.id, actor=SATO, via="reply", note="承認を誤りました")
        assert inc.hold_id == h.id and inc.reported_by == SATO
        with pytest.raises(ReportRefused):
            await svc.report(hold_id=h.id, actor="suzuki@city.example.lg.jp", via="reply")
    finally:
        await env.store.close()


# ---------------------------------------------------------------------- the record


async def test_record_markdown_and_pdf(store: SqlStore) -> None:  # noqa: F811
    hostile = "<script>x</script> | **bold** " + MYNUMBER
    await store.journal.record([(row(7, subject=hostile, rules=("forwarded-third-party",)), None)])
    svc = service(store)
    inc = await svc.report(decision_id="M-INC000000007", actor=TANAKA, via="web", note="宛先違い")
    await svc.followup(inc.id, "apology", done=True, actor="admin:officer")
    f = await svc.record(inc.id)
    assert f is not None
    md_ja = to_markdown(sections(f, "ja"))
    assert md_ja.startswith(f"# 誤送信インシデント記録 {inc.id}")
    for heading in (
        "含まれていた個人情報 (マスク済み)",
        "経過",
        "事後対応",
        "誰がどのように送信したか",
    ):
        assert f"## {heading}" in md_ja
    assert "my\\_number: My Number \\*\\*\\*\\*\\*\\*\\*\\*9018" in md_ja
    assert "<script>" not in md_ja and "&lt;script&gt;" in md_ja and "\\|" in md_ja
    assert "該当しなかったルール: lookalike, bulk-external" in md_ja
    assert "監査のみ (動作なし): audit-pii" in md_ja
    assert "相手先へのお詫び**: 済" in md_ja and "削除の依頼**: 未" in md_ja
    assert "保留されずにそのまま送信されました" in md_ja
    assert "a@client-one.example.com (社外)" in md_ja
    assert "suzuki@city.example.lg.jp (社内)" in md_ja
    assert MYNUMBER not in md_ja
    md_en = to_markdown(sections(f, "en"))
    assert "Mis-sent mail incident record" in md_en and "Mistake reported" in md_en
    assert "Route notified" in md_en and "Follow-up ticked" in md_en
    pdf = await asyncio.to_thread(to_pdf, sections(f, "ja"))
    assert pdf.startswith(b"%PDF")
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    text = "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    assert inc.id in text and "誤送信インシデント記録" in text and "事後対応" in text
    assert MYNUMBER not in text


# ---------------------------------------------------------------------- reports by mail


FWD = (
    "From: Tanaka <tanaka@city.example.lg.jp>\r\n"
    "To: report@city.example.lg.jp\r\n"
    "Subject: Fwd: 見積 1234 5678 9018\r\n"
    "Message-ID: <rep@city.example.lg.jp>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n宛先を間違えました\r\n\r\n"
    "--b\r\nContent-Type: message/rfc822\r\n\r\n"
    "From: tanaka@city.example.lg.jp\r\nTo: a@client-one.example.com\r\n"
    "Subject: 見積\r\nMessage-ID: <m8@city.example.lg.jp>\r\n\r\nbody\r\n"
    "--b--\r\n"
).encode()


def test_read_report_finds_ids_subjects_and_note() -> None:
    r = read_report(FWD)
    assert not r.automatic
    assert r.message_ids == ("<m8@city.example.lg.jp>",)
    assert "見積" in r.subjects and r.note == "宛先を間違えました"
    assert strip_prefixes("Fwd: RE: 転送: 見積") == "見積"
    inline = (
        b"From: t@x\r\nSubject: FW: hello\r\nIn-Reply-To: <a@x>\r\n\r\noops\r\n"
        b"-----Original Message-----\r\nMessage-ID: <orig@x>\r\n"
    )
    assert read_report(inline).message_ids == ("<orig@x>", "<a@x>")
    assert read_report(b"Auto-Submitted: auto-replied\r\n\r\nx").automatic


def test_read_report_of_a_base64_attached_message() -> None:
    """Some clients (and swaks --attach-type message/rfc822) encode the attached mail in
    base64: its Message-ID and subject are still found."""
    inner = (
        b"From: tanaka@city.example.lg.jp\r\nSubject: =?utf-8?b?6KaL56mN?=\r\n"
        b"Message-ID: <m9@city.example.lg.jp>\r\n\r\nbody\r\n"
    )
    raw = (
        b"From: tanaka@city.example.lg.jp\r\nSubject: FW: report\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\noops\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(inner)
        + b"\r\n--b--\r\n"
    )
    r = read_report(raw)
    assert r.message_ids == ("<m9@city.example.lg.jp>",)
    assert "見積" in r.subjects


async def test_report_by_mail_prefers_the_copy_that_went_out(store: SqlStore) -> None:  # noqa: F811
    """The same mail held first (newer row: sent again) and sent: the report is about what
    went out, whichever of the two is newer."""
    from leakguard.officer.report_mail import find_reported

    await store.journal.record(
        [
            (row(21, message_id="<twice@x>", outcome="sent"), None),
            (row(20, message_id="<twice@x>", action="hold", outcome="held"), None),
        ]
    )
    svc = service(store)
    reading = read_report(FWD.replace(b"<m8@city.example.lg.jp>", b"<twice@x>"))
    found = await find_reported(svc, reading, frozenset({TANAKA}))
    assert found is not None and found.id == "M-INC000000021"


async def test_report_by_mail_by_message_id_and_by_subject(store: SqlStore) -> None:  # noqa: F811
    await store.journal.record(
        [
            (row(8, subject="見積"), None),
            (row(9, subject=redact_text("議事録 " + MYNUMBER), message_id="<other@x>"), None),
            (
                row(10, sender="suzuki@city.example.lg.jp", subject="議事録", message_id="<s@x>"),
                None,
            ),
        ]
    )
    svc = service(store)
    reply = await svc.handle_report_mail(raw=FWD, mail_from=TANAKA, auth_user=TANAKA)
    assert reply.startswith("250 ") and "Report received as I-" in reply
    [inc] = await store.journal.list_incidents()
    assert inc.decision_id == "M-INC000000008" and inc.via == "reply"
    assert inc.note == "宛先を間違えました"
    confirm = body_of((await queued_notices(store))[TANAKA])
    assert inc.id in confirm and "受け付けました" in confirm
    # no Message-ID: the subject of the reporter's own mail (never someone else's)
    by_subject = f"From: t@x\r\nSubject: Fwd: 議事録 {MYNUMBER}\r\n\r\nx\r\n".encode()
    reply = await svc.handle_report_mail(raw=by_subject, mail_from=TANAKA, auth_user=None)
    assert "Report received" in reply
    incs = {i.decision_id for i in await store.journal.list_incidents()}
    assert incs == {"M-INC000000008", "M-INC000000009"}
    # nothing of someone else's is ever matched
    reply = await svc.handle_report_mail(
        raw="From: m@x\r\nSubject: Fwd: 議事録\r\nReferences: <s@x>\r\n\r\nx".encode(),
        mail_from="mallory@city.example.lg.jp",
        auth_user=None,
    )
    assert "not matched" in reply
    assert "見つかりません" in body_of((await queued_notices(store))["mallory@city.example.lg.jp"])


async def test_report_by_mail_from_a_shared_mailbox(store: SqlStore) -> None:  # noqa: F811
    soumu = "soumu@city.example.lg.jp"
    await store.journal.record(
        [(row(11, sender=soumu, auth_user=TANAKA, subject="通知", message_id="<sh@x>"), None)]
    )
    svc = service(store)
    raw = b"From: soumu@city.example.lg.jp\r\nSubject: Fwd: x\r\nReferences: <sh@x>\r\n\r\noops\r\n"
    # sato may send as the shared mailbox (the relay checked MAIL FROM): the mailbox reports
    reply = await svc.handle_report_mail(raw=raw, mail_from=soumu, auth_user=SATO)
    assert "Report received" in reply
    [inc] = await store.journal.list_incidents()
    assert inc.reported_by == soumu and inc.decision_id == "M-INC000000011"
