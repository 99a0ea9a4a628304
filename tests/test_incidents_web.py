"""The report page and the admin incident pages over HTTP: forged links, CSRF, escaping of
hostile subjects and rule ids, idempotent reports, follow-ups, close, PDF download."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from test_holds_support import ORG, Env, make_env
from test_web_admin_sessions import PASSWORD, client, csrf_of, login

from leakguard.officer.config import IncidentsConfig
from leakguard.officer.incidents import IncidentService
from leakguard.officer.links import ReportLinks, ReportRef
from leakguard.relay.users import add_user
from leakguard.store.journal import DecisionEntry
from leakguard.web.app import create_app

TANAKA = "tanaka@city.example.lg.jp"
HOSTILE = '<script>alert(1)</script><img src=x onerror="y">'
RULE = '<b>rule"x</b>'


@dataclass
class W:
    env: Env
    svc: IncidentService
    links: ReportLinks
    c: httpx.AsyncClient


@pytest.fixture
async def w(tmp_path: Path) -> AsyncIterator[W]:
    env = await make_env(tmp_path)
    users = tmp_path / "admins.txt"
    add_user(users, "admin", PASSWORD)
    env.web.admin_users_file = str(users)
    links = ReportLinks("link-secret", base_url="http://review.test", max_age_seconds=3600)
    svc = IncidentService(
        env.store,
        IncidentsConfig.model_validate({"officers": ["security@city.example.lg.jp"]}),
        organization=ORG,
        notice_from="leakguard@city.example.lg.jp",
        links=links,
        base_url="http://review.test",
        policy_rules=lambda: [RULE, "silent-one"],
    )
    now = datetime.now(UTC)
    await env.store.journal.record(
        [
            (
                DecisionEntry(
                    id="M-WEB000000001",
                    at=now - timedelta(minutes=5),
                    sender=TANAKA,
                    action="bcc",
                    outcome="sent_bcc",
                    rcpts=("a@client-one.example.com", "suzuki@city.example.lg.jp"),
                    external_rcpts=1,
                    subject=HOSTILE,
                    message_id="<w1@city.example.lg.jp>",
                    rules=(RULE,),
                    summary={
                        "rules": [
                            {
                                "id": RULE,
                                "action": "bcc",
                                "reason": {"ja": HOSTILE, "en": HOSTILE},
                            }
                        ]
                    },
                ),
                None,
            )
        ]
    )
    app = create_app(env.service, env.web, incidents=svc)
    async with client(app) as c:
        try:
            yield W(env, svc, links, c)
        finally:
            await env.store.close()


def plain(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def link(w: W, actor: str = TANAKA, decision_id: str = "M-WEB000000001") -> str:
    return "/report/" + w.links.sign(ReportRef(actor=actor, decision_id=decision_id))


async def test_report_page_shows_the_mail_escaped_and_files_once(w: W) -> None:
    # one link for the whole test, as in a real notice: a page's CSRF token is bound to the
    # link it was served on, and a link signed again in a later second is another string
    url = link(w)
    r = await w.c.get(url + "?lang=ja")
    assert r.status_code == 200
    assert "誤送信を報告する" in r.text and "a@client-one.example.com" in plain(r.text)
    assert "<script>alert(1)" not in r.text and "&lt;script&gt;alert(1)" in r.text
    assert "社外" in r.text and "社内" in r.text
    csrf = csrf_of(r.text)
    # CSRF required
    bad = await w.c.post(url, data={"reason": "wrong_recipient", "note": "x"})
    assert bad.status_code == 403
    assert await w.env.store.journal.list_incidents() == []
    # too long a note is refused, nothing filed
    long = await w.c.post(url, data={"csrf": csrf, "note": "x" * 2001})
    assert long.status_code == 400 and await w.env.store.journal.list_incidents() == []
    ok = await w.c.post(
        url + "?lang=en",
        data={"csrf": csrf, "reason": "wrong_recipient", "note": "to the wrong client"},
    )
    assert ok.status_code == 200
    [inc] = await w.env.store.journal.list_incidents()
    assert inc.id in ok.text and "What happens next" in ok.text and "What to do now" in ok.text
    # it names who was really told: no deputy is configured here
    assert "The security officer and your supervisor have just been told" in ok.text
    assert "deputy" not in ok.text
    assert inc.note == "[宛先を間違えた / Wrong recipient] to the wrong client"
    assert inc.via == "web"
    again = await w.c.post(url, data={"csrf": csrf, "reason": "other"})
    assert again.status_code == 200 and "既に報告されています" in again.text
    assert len(await w.env.store.journal.list_incidents()) == 1
    page = await w.c.get(url)
    assert inc.id in page.text  # the page says it was reported already


async def test_forged_expired_or_foreign_links_are_refused(w: W) -> None:
    good = link(w)
    forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    for bad in (forged, "/report/nonsense", "/report/" + "x" * 700):
        r = await w.c.get(bad)
        assert r.status_code == 404 and "client-one" not in r.text
    stranger = await w.c.get(link(w, actor="mallory@city.example.lg.jp"))
    assert stranger.status_code == 403 and "client-one" not in stranger.text
    unknown = await w.c.get(link(w, decision_id="M-NOPE"))
    assert unknown.status_code == 404
    other_secret = ReportLinks("another", base_url="http://x", max_age_seconds=60)
    r = await w.c.get("/report/" + other_secret.sign(ReportRef(TANAKA, "M-WEB000000001")))
    assert r.status_code == 404
    page = await w.c.get(good)
    r = await w.c.post(forged, data={"csrf": csrf_of(page.text)})
    assert r.status_code == 404 and await w.env.store.journal.list_incidents() == []


async def test_admin_pages_need_login_csrf_and_escape(w: W) -> None:
    inc = await w.svc.report(decision_id="M-WEB000000001", actor=TANAKA, via="web", note=HOSTILE)
    r = await w.c.get("/admin/incidents")
    assert r.status_code == 303 and "/admin/login" in r.headers["location"]
    r = await w.c.get(f"/admin/incidents/{inc.id}/record.pdf")
    assert r.status_code == 303
    await login(w.c)
    lst = await w.c.get("/admin/incidents?lang=en")
    assert lst.status_code == 200 and inc.id in lst.text
    assert "<b>rule" not in lst.text and "&lt;b&gt;rule" in lst.text
    page = await w.c.get(f"/admin/incidents/{inc.id}?lang=ja")
    assert page.status_code == 200
    assert "誤送信インシデント記録" in page.text
    assert "<script>alert(1)" not in page.text and "<b>rule" not in page.text
    assert "silent-one" in page.text  # rules that stayed silent
    assert "@media print" not in page.text  # print rules live in the stylesheet
    css = await w.c.get("/static/incidents.css")
    assert "@media print" in css.text and "size:A4" in css.text
    csrf = csrf_of(page.text)
    r = await w.c.post(f"/admin/incidents/{inc.id}", data={"op": "close"})
    assert r.status_code == 403
    r = await w.c.post(
        f"/admin/incidents/{inc.id}",
        data={"csrf": csrf, "op": "followups", "apology": "1", "deletion_requested": "1"},
    )
    assert r.status_code == 303
    got = await w.env.store.journal.get_incident(inc.id)
    assert got is not None and set(got.followups) == {"apology", "deletion_requested"}
    assert got.followups["apology"]["by"] == "admin:admin"
    await w.c.post(
        f"/admin/incidents/{inc.id}", data={"csrf": csrf, "op": "followups", "apology": "1"}
    )
    await w.c.post(f"/admin/incidents/{inc.id}", data={"csrf": csrf, "op": "close"})
    got = await w.env.store.journal.get_incident(inc.id)
    assert got is not None and set(got.followups) == {"apology"} and got.state == "closed"
    shown = await w.c.get(f"/admin/incidents/{inc.id}?lang=en")
    assert "Follow-up unticked" in shown.text and "Closed" in shown.text
    assert 'id="reopen"' in shown.text
    opened = await w.c.get("/admin/incidents?open=1")
    assert inc.id not in opened.text
    pdf = await w.c.get(f"/admin/incidents/{inc.id}/record.pdf?lang=ja")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    md = await w.c.get(f"/admin/incidents/{inc.id}/record.md?lang=en")
    assert md.status_code == 200 and "# Mis-sent mail incident record" in md.text
    assert "<script>" not in md.text
    assert (await w.c.get("/admin/incidents/I-NOPE")).status_code == 404
    assert (await w.c.get(f"/admin/incidents/{inc.id}/record.exe")).status_code == 404


async def test_report_form_is_read_only_for_a_genuine_link_and_is_bounded(w: W) -> None:
    good = link(w)
    page = await w.c.get(good)
    csrf = csrf_of(page.text)
    forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    # a forged link: refused before its (large) body is read
    r = await w.c.post(forged, data={"csrf": csrf, "note": "x" * 900_000})
    assert r.status_code == 404
    # over the app's body limit: 413 before any handler (issue 12)
    r = await w.c.post(forged, data={"csrf": csrf, "note": "x" * 2_000_000})
    assert r.status_code == 413
    # a genuine link: many fields, or one huge field, are a 400 and file nothing
    many = {"csrf": csrf, "reason": "other", **{f"f{i}": "x" for i in range(200)}}
    r = await w.c.post(good, data=many)
    assert r.status_code == 400
    r = await w.c.post(good, data={"csrf": csrf, "note": "x" * 200_000})
    assert r.status_code == 400
    assert await w.env.store.journal.list_incidents() == []
    ok = await w.c.post(good, data={"csrf": csrf, "reason": "other", "note": "宛先" * 999})
    assert ok.status_code == 200 and len(await w.env.store.journal.list_incidents()) == 1


async def test_hold_and_incident_pages_link_each_other(w: W) -> None:
    """An officer moves between a held mail and the incidents filed for it (a near-miss
    alert on release, then the sender's report) without searching by hand."""
    from test_holds_support import THIRD_PARTY, do_hold, verdict

    from leakguard.holds.commands import Decision
    from leakguard.holds.model import Via

    w.env.service.on_resolved.append(w.svc.on_resolved)
    h = await do_hold(w.env, verdict(findings=[THIRD_PARTY]))
    out = await w.env.service.resolve(
        h.id, Decision.RELEASE, actor=TANAKA, via=Via.WEB, identity=TANAKA
    )
    assert out.ok
    [alert] = await w.env.store.journal.list_incidents(kind="near_miss")
    report = await w.svc.report(hold_id=h.id, actor=TANAKA, via="web")
    await login(w.c)
    hold_page = (await w.c.get(f"/admin/h/{h.id}?lang=ja")).text
    assert f'href="/admin/incidents/{alert.id}?lang=ja"' in hold_page
    assert f'href="/admin/incidents/{report.id}?lang=ja"' in hold_page
    assert "このメールのインシデント" in hold_page and "ヒヤリハット" in hold_page
    rec = (await w.c.get(f"/admin/incidents/{alert.id}?lang=en")).text
    assert f'href="/admin/h/{h.id}?lang=en"' in rec
    assert f'href="/admin/incidents/{report.id}?lang=en"' in rec
    # the near miss names its reason in words, not only the fact name
    assert "third-party addresses in quoted or forwarded text" in rec
    # a mail that was never held links no hold
    plain_report = await w.svc.report(decision_id="M-WEB000000001", actor=TANAKA, via="web")
    other = (await w.c.get(f"/admin/incidents/{plain_report.id}?lang=en")).text
    assert 'id="hold-link"' not in other
