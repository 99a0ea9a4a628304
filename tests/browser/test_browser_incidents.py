"""Headless Chromium (issue 9): the incident record page in Japanese and English, on a
desktop and a phone (390x844), its print stylesheet, follow-up checkboxes; the report page.

Screenshots go to docs/img/ when LEAKGUARD_SCREENSHOTS=1 (else to the test's tmp dir)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_holds_support import ORG, THIRD_PARTY, Env, do_hold, make_env, verdict

from leakguard.holds.commands import Decision
from leakguard.holds.model import Via
from leakguard.officer.config import IncidentsConfig
from leakguard.officer.incidents import IncidentService
from leakguard.officer.links import ReportLinks, ReportRef
from leakguard.relay.users import add_user
from leakguard.store.journal import DecisionEntry, IncidentRecord

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
TANAKA = "tanaka@city.example.lg.jp"
PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Desk:
    env: Env
    svc: IncidentService
    links: ReportLinks
    base: str
    incident: IncidentRecord
    shots: Path


def _summary() -> dict[str, Any]:
    reason = {
        "ja": "引用部分に、宛先が知らないはずの第三者のアドレスがあります",
        "en": "The quoted thread contains a third party's address the recipients should not see",
    }
    return {
        "facts": {"quoted_third_party_addresses": 1, "personal_data.my_number": 1},
        "rules": [
            {"id": "forwarded-third-party", "action": "hold", "mode": "enforce", "reason": reason}
        ],
        "audit_rules": [],
        "findings": [
            {
                "detector": "personal",
                "fact": "personal_data.my_number",
                "addresses": [],
                "detail": "マイナンバー ********9018",
                "evidence": {"location": "添付 申請者一覧.xlsx, シート1, 行 4"},
            },
            {
                "detector": "quoted",
                "fact": "quoted_third_party_addresses",
                "addresses": ["secret-person@other-client.example.org"],
                "detail": "third party in quoted thread",
                "evidence": {},
            },
        ],
    }


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    import uvicorn

    from leakguard.web.app import create_app

    env = await make_env(tmp_path)
    env.clock.t = datetime.now(UTC)
    users = tmp_path / "admins.txt"
    add_user(users, "officer", PASSWORD)
    env.web.admin_users_file = str(users)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env.web.base_url = base
    links = ReportLinks("browser-secret", base_url=base, max_age_seconds=3600)
    svc = IncidentService(
        env.store,
        IncidentsConfig.model_validate(
            {"officers": ["security@city.example.lg.jp"], "deputy": "deputy@city.example.lg.jp"}
        ),
        organization=ORG,
        notice_from="leakguard@city.example.lg.jp",
        links=links,
        base_url=base,
        policy_rules=lambda: ["forwarded-third-party", "lookalike", "bulk-external", "pii-hold"],
    )
    env.service.on_resolved.append(svc.on_resolved)
    h = await do_hold(
        env,
        verdict(findings=[THIRD_PARTY]),
        subject="Re: 申請者一覧の送付 (マイナンバー 1234 5678 9018)",
    )
    await env.store.journal.record(
        [
            (
                DecisionEntry(
                    id="M-BROWSER00001",
                    at=env.clock.t,
                    sender=TANAKA,
                    action="hold",
                    outcome="held",
                    rcpts=h.rcpts,
                    external_rcpts=2,
                    department="市民課",
                    subject="Re: 申請者一覧の送付 (マイナンバー **** **** 9018)",
                    message_id="<orig-1@city.example.lg.jp>",
                    rules=h.rules,
                    summary=_summary(),
                    hold_id=h.id,
                    size=48213,
                    policy_version="3f9c2a1",
                ),
                None,
            ),
            (
                DecisionEntry(
                    id="M-BROWSER00002",
                    at=env.clock.t,
                    sender=TANAKA,
                    action="pass",
                    outcome="sent",
                    rcpts=("kojin@client-one.example.com", "suzuki@city.example.lg.jp"),
                    external_rcpts=1,
                    department="市民課",
                    subject='見積書の送付 <b>"至急"</b>',
                    message_id="<orig-2@city.example.lg.jp>",
                ),
                None,
            ),
        ]
    )
    await env.service.resolve(h.id, Decision.RELEASE, actor=TANAKA, via=Via.WEB, identity=TANAKA)
    inc = await svc.report(
        hold_id=h.id,
        actor=TANAKA,
        via="web",
        note="[Wrong recipient] 別の会社に送ってしまいました",
    )
    await svc.followup(inc.id, "apology", done=True, actor="admin:officer")
    app = create_app(env.service, env.web, incidents=svc)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serve = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.02)
    shots = ROOT / "docs" / "img" if os.environ.get("LEAKGUARD_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    try:
        yield Desk(env, svc, links, base, inc, shots)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serve, 5)
        await env.store.close()


async def _login(page: Any, base: str, lang: str) -> None:
    await page.goto(f"{base}/admin/login?lang={lang}")
    await page.fill("input[name=user]", "officer")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")


async def _no_overflow(page: Any) -> None:
    width = await page.evaluate("document.documentElement.clientWidth")
    scroll = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width + 1, (scroll, width)


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_incident_record_page(desk: Desk, browser: Any, lang: str) -> None:
    page = await browser.new_page(viewport={"width": 1100, "height": 900})
    await _login(page, desk.base, lang)
    await page.goto(f"{desk.base}/admin/incidents?lang={lang}")
    rows = await page.inner_text("#incidents")
    assert desk.incident.id in rows
    assert ("ヒヤリハット" if lang == "ja" else "near miss") in rows  # the release alerted
    await page.click(f"text={desk.incident.id}")
    title = await page.inner_text("#title")
    assert desk.incident.id in title
    assert ("誤送信インシデント記録" if lang == "ja" else "incident record") in title
    body = await page.inner_text("#record")
    near = [i for i in await desk.env.store.journal.list_incidents() if i.kind == "near_miss"]
    assert len(near) == 1 and near[0].id in body  # the release's alert, linked
    assert "1234 5678" not in body and "9018" in body  # masked only
    if lang == "ja":
        for s in ("含まれていた個人情報", "誰がどのように送信したか", "経過", "事後対応"):
            assert s in body
        assert "該当しなかったルール: lookalike, bulk-external, pii-hold" in body
        assert f"{TANAKA} が web で操作し、「送信済み」になりました" in body
    else:
        assert "Mistake reported" in body and "Route notified" in body
        assert "Rules that stayed silent: lookalike, bulk-external, pii-hold" in body
    await page.screenshot(path=str(desk.shots / f"incident-{lang}.png"), full_page=True)
    # tick a follow-up: POST + CSRF, back on the page with it ticked
    await page.check("input[name=deletion_requested]")
    await page.click("#save")
    assert await page.is_visible("#saved")
    assert await page.is_checked("input[name=deletion_requested]")
    assert await page.is_checked("input[name=apology]")
    got = await desk.env.store.journal.get_incident(desk.incident.id)
    assert got is not None and set(got.followups) == {"apology", "deletion_requested"}
    # the print stylesheet: no navigation or buttons, black on white
    await page.emulate_media(media="print")
    assert not await page.is_visible(".adminbar")
    assert not await page.is_visible("#save")
    assert not await page.is_visible("header.top")
    bg = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    color = await page.evaluate("getComputedStyle(document.body).color")
    assert bg in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)") and color == "rgb(0, 0, 0)"
    await page.close()


async def test_incident_page_on_a_phone(desk: Desk, browser: Any) -> None:
    page = await browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    await _login(page, desk.base, "ja")
    await page.goto(f"{desk.base}/admin/incidents/{desk.incident.id}?lang=ja")
    await _no_overflow(page)
    assert desk.incident.id in await page.inner_text("#title")
    box = await page.locator("#save").bounding_box()
    assert box is not None and box["height"] >= 40 and box["width"] > 300  # full-width button
    await page.screenshot(path=str(desk.shots / "incident-phone.png"), full_page=True)
    await page.close()


async def test_hold_page_links_its_incidents_and_reads_on_a_phone(desk: Desk, browser: Any) -> None:
    """From the held mail's admin page to its incidents; its timeline is one readable block
    per event on a phone (the time was broken one character a line)."""
    hold_id = desk.incident.hold_id
    assert hold_id is not None
    page = await browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    await _login(page, desk.base, "ja")
    await page.goto(f"{desk.base}/admin/h/{hold_id}?lang=ja")
    await _no_overflow(page)
    first = page.locator("#timeline td").first
    box = await first.bounding_box()
    assert box is not None and box["width"] > 150 and box["height"] < 30  # the time, one line
    await page.click(f"#incidents a:text('{desk.incident.id}')")
    await page.wait_for_url(f"**/admin/incidents/{desk.incident.id}?lang=ja")
    await page.click("#hold-link")
    await page.wait_for_url(f"**/admin/h/{hold_id}?lang=ja")
    await page.close()


@pytest.mark.parametrize("viewport", [(1000, 800), (390, 844)])
async def test_report_page(desk: Desk, browser: Any, viewport: tuple[int, int]) -> None:
    link = desk.links.url(ReportRef(actor=TANAKA, decision_id="M-BROWSER00002"))
    page = await browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    await page.goto(link + "?lang=ja")
    assert "誤送信を報告する" in await page.inner_text("#title")
    assert '見積書の送付 <b>"至急"</b>' in await page.inner_text("#subject")  # shown as text
    assert await page.locator("#subject b").count() == 0
    await _no_overflow(page)
    if viewport[0] > 400:
        await page.screenshot(path=str(desk.shots / "report-ja.png"), full_page=True)
    await page.check("input[value=visible_recipients]")
    await page.fill("textarea[name=note]", "BCC にすべきでした")
    await page.click("#send")
    result = await page.inner_text("#result")
    assert "報告を受け付けました" in result
    assert "このあと起こること" in await page.inner_text("#next")
    incs = [
        i
        for i in await desk.env.store.journal.list_incidents()
        if i.decision_id == "M-BROWSER00002"
    ]
    assert len(incs) == 1 and incs[0].id in result
    await page.close()
