"""Issue 9 on the review pages: the report button (review, result and used-link pages)
and the second discard choice 「破棄 (誤送信でした)」 / "Discard — this was a mistake"."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_holds_support import SECRET, Env, do_hold, make_env, queued, verdict
from test_web_review import _notice_for, client_for, csrf_of, link_path

from leakguard.holds.model import HoldRecord, HoldState, Via
from leakguard.holds.service import Decision
from leakguard.officer.links import ReportLinks, ReportRef
from leakguard.types import Action


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path)
    e.service.report_links = ReportLinks(
        SECRET, base_url="http://review.test", max_age_seconds=30 * 86400
    )
    try:
        yield e
    finally:
        await e.store.close()


def report_ref(env: Env, page: str) -> ReportRef | None:
    m = re.search(r'id="report-link" href="http://review\.test/report/([^"]+)"', page)
    if m is None:
        return None
    assert env.service.report_links is not None
    return env.service.report_links.verify(htmllib.unescape(m.group(1)))


async def test_review_page_has_report_button_and_mistake_discard(env: Env) -> None:
    seen: list[tuple[str, Decision, str, Via, bool]] = []

    async def hook(h: HoldRecord, d: Decision, actor: str, via: Via, mistake: bool) -> None:
        seen.append((h.id, d, actor, via, mistake))

    env.service.on_resolved.append(hook)
    h = await do_hold(env)
    path = link_path(await _notice_for(env, h.mail_from))
    async with client_for(env) as c:
        page = await c.get(path)
        assert "誤送信を報告する" in page.text and "破棄 (誤送信でした)" in page.text
        assert report_ref(env, page.text) == ReportRef(actor=h.mail_from, hold_id=h.id)
        en = await c.get(path + "?lang=en")
        assert "Report a mistake" in en.text and "Discard — this was a mistake" in en.text
        r = await c.post(path, data={"action": "discard_mistake", "csrf": csrf_of(page.text)})
        assert r.status_code == 200 and "破棄しました" in r.text
        assert report_ref(env, r.text) is None  # nothing went out: nothing to report
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.DISCARDED
    assert seen == [(h.id, Decision.DISCARD, h.mail_from, Via.WEB, True)]
    tl = await env.store.timeline(h.id)
    assert any("[mistake]" in tr.note for tr in tl)


async def test_released_result_and_used_link_pages_offer_the_report(env: Env) -> None:
    h = await do_hold(env)
    path = link_path(await _notice_for(env, h.mail_from))
    async with client_for(env) as c:
        page = await c.get(path)
        r = await c.post(path, data={"action": "release", "csrf": csrf_of(page.text)})
        assert r.status_code == 200 and "送信しました" in r.text
        assert report_ref(env, r.text) == ReportRef(actor=h.mail_from, hold_id=h.id)
        again = await c.get(path)
        assert again.status_code == 410
        assert report_ref(env, again.text) == ReportRef(actor=h.mail_from, hold_id=h.id)


async def test_mistake_choice_on_delay_and_approval_pages(env: Env) -> None:
    d = await do_hold(env, verdict(action=Action.DELAY, delay_seconds=300))
    a = await do_hold(env, verdict(approval="supervisor"), subject="other")
    async with client_for(env) as c:
        page = await c.get(link_path(await _notice_for(env, d.mail_from)))
        assert 'value="discard_mistake"' in page.text
    assert a.approvers == ("sato@city.example.lg.jp",)
    (raw,) = [
        raw
        for _, rcpts, raw, hold_id in await queued(env, "notice")
        if hold_id == a.id and rcpts == [a.mail_from]
    ]
    async with client_for(env) as c:
        page = await c.get(link_path(raw))
        # the sender may only withdraw: plainly or as a mistake, never release
        assert 'value="discard_mistake"' in page.text
        assert 'value="release"' not in page.text


async def test_admin_resolve_records_a_mistake(env: Env) -> None:
    h = await do_hold(env)
    out = await env.service.resolve(
        h.id, Decision.DISCARD, actor="admin:root", via=Via.WEB, admin=True, mistake=True
    )
    assert out.ok
    tl = await env.store.timeline(h.id)
    assert any(tr.actor == "admin:root" and "[mistake]" in tr.note for tr in tl)


async def test_no_report_button_without_links(tmp_path: Path) -> None:
    e = await make_env(tmp_path, db="plain.db")
    try:
        h = await do_hold(e)
        async with client_for(e) as c:
            page = await c.get(link_path(await _notice_for(e, h.mail_from)))
            assert page.status_code == 200 and 'id="report-link"' not in page.text
            assert 'value="discard_mistake"' in page.text
    finally:
        await e.store.close()
