"""The review page and the administrators' view, through the ASGI app (httpx)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from test_holds_support import (
    LOOKALIKE,
    THIRD_PARTY,
    Env,
    do_hold,
    make_env,
    queued,
    text_of,
    verdict,
)

from leakguard.holds.model import HoldState
from leakguard.relay.users import add_user
from leakguard.types import Action
from leakguard.web.app import create_app


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path)
    try:
        yield e
    finally:
        await e.store.close()


def client_for(env: Env) -> httpx.AsyncClient:
    app = create_app(env.service, env.web)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://review.test")


def link_path(notice: bytes) -> str:
    m = re.search(r"http://review\.test(/h/[A-Za-z0-9_.\-]+)", text_of(notice))
    assert m
    return m.group(1)


def visible(html: str) -> str:
    """The page's text without tags (addresses are marked up piece by piece)."""
    return re.sub(r"<[^>]+>", "", html)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, html[:500]
    return m.group(1)


async def _notice_for(env: Env, rcpt: str) -> bytes:
    for _, rcpts, raw, _ in await queued(env, "notice"):
        if rcpts == [rcpt]:
            return raw
    raise AssertionError(f"no notice for {rcpt}")


async def test_get_shows_and_changes_nothing_post_releases(env: Env) -> None:
    h = await do_hold(env)
    path = link_path(await _notice_for(env, h.mail_from))
    async with client_for(env) as c:
        r = await c.get(path)
        assert r.status_code == 200
        assert "宛先が知らないはずの第三者" in r.text
        shown = visible(r.text)
        assert "a@client-one.example.com" in shown and "b@client-two.example.net" in shown
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert r.headers["referrer-policy"] == "no-referrer"
        # many GETs and HEADs (link scanners) change nothing
        for _ in range(3):
            await c.get(path + "?a=release")
            await c.head(path)
        got = await env.store.get_hold(h.id)
        assert got is not None and got.state == HoldState.HELD
        # POST without the CSRF token is refused
        r2 = await c.post(path, data={"action": "release"})
        assert r2.status_code == 403
        got = await env.store.get_hold(h.id)
        assert got is not None and got.state == HoldState.HELD
        # with it, the mail is released and queued once
        r3 = await c.post(path, data={"action": "release", "csrf": csrf_of(r.text)})
        assert r3.status_code == 200 and "送信しました" in r3.text
        got = await env.store.get_hold(h.id)
        assert got is not None and got.state == HoldState.RELEASED
        assert len(await queued(env, "mail")) == 1
        # the link is single-use: opened again it says what happened, and does nothing
        r4 = await c.get(path)
        assert r4.status_code == 410 and "使用済み" in r4.text and "送信済み" in r4.text
        r5 = await c.post(path, data={"action": "discard", "csrf": csrf_of(r.text)})
        assert r5.status_code == 410
        assert len(await queued(env, "mail")) == 1
        got = await env.store.get_hold(h.id)
        assert got is not None and got.state == HoldState.RELEASED


async def test_csrf_token_from_another_browser_is_refused(env: Env) -> None:
    h = await do_hold(env)
    path = link_path(await _notice_for(env, h.mail_from))
    async with client_for(env) as victim, client_for(env) as attacker:
        page = await attacker.get(path)
        token = csrf_of(page.text)
        await victim.get(path)  # the victim has their own CSRF cookie
        r = await victim.post(path, data={"action": "discard", "csrf": token})
        assert r.status_code == 403
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.HELD


async def test_forged_and_expired_links(env: Env) -> None:
    h = await do_hold(env)
    path = link_path(await _notice_for(env, h.mail_from))
    async with client_for(env) as c:
        r = await c.get(path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB"))
        assert r.status_code == 404 and "無効" in r.text
        r = await c.get("/h/not-a-signed-token")
        assert r.status_code == 404
        # past the hold's expiry the token is dead even though the signature is fine: the
        # page says the link expired and what became of the mail, and offers nothing
        env.clock.advance(hours=73)
        r = await c.get(path)
        assert r.status_code == 410 and "期限切れ" in r.text
        assert 'name="action"' not in r.text


async def test_used_link_says_who_released_it_and_when(env: Env) -> None:
    h = await do_hold(env)
    path = link_path(await _notice_for(env, h.mail_from))
    async with client_for(env) as c:
        page = await c.get(path)
        await c.post(path, data={"action": "release", "csrf": csrf_of(page.text)})
        again = await c.get(path)
        assert again.status_code == 410
        assert "このリンクは使用済みです" in again.text
        # by whom (the sender, via the web) and when (local time of the release)
        assert f"{h.mail_from} によって処理されました" in visible(again.text)
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d JST に", again.text), again.text
        en = await c.get(path + "?lang=en")
        assert "This link was already used" in en.text
        assert f"handled by {h.mail_from} on" in visible(en.text) and "released" in en.text
        assert 'name="action"' not in en.text


async def test_used_link_after_admin_release_names_the_administrator(env: Env) -> None:
    from leakguard.holds.model import Via
    from leakguard.holds.service import Decision

    h = await do_hold(env)
    path = link_path(await _notice_for(env, h.mail_from))
    out = await env.service.resolve(
        h.id, Decision.DISCARD, actor="admin:sato", via=Via.CLI, admin=True
    )
    assert out.ok
    async with client_for(env) as c:
        r = await c.get(path + "?lang=en")
        # unused link of a closed hold: the page says what happened to the mail it was
        # issued for, by whom, and offers nothing
        assert r.status_code == 200
        assert "already been handled" in r.text and "handled by administrator sato on" in r.text
        assert 'name="action"' not in r.text


async def test_used_link_never_shows_another_hold(env: Env) -> None:
    a = await do_hold(env)
    path_a = link_path(await _notice_for(env, a.mail_from))
    b = await do_hold(env, subject="another mail")
    assert b.id != a.id
    async with client_for(env) as c:
        page = await c.get(path_a)
        await c.post(path_a, data={"action": "discard", "csrf": csrf_of(page.text)})
        r = await c.get(path_a)
        assert r.status_code == 410
        assert a.id in r.text and b.id not in r.text
        # a forged token (valid shape, wrong signature) reveals nothing at all
        forged = path_a[:-4] + ("AAAA" if not path_a.endswith("AAAA") else "BBBB")
        r2 = await c.get(forged)
        assert r2.status_code == 404
        assert a.id not in r2.text and b.id not in r2.text
        # a genuinely signed token that the store never issued reveals nothing either
        from leakguard.holds.tokens import new_token

        unknown = "/h/" + env.service.signer.sign(new_token())
        r3 = await c.get(unknown)
        assert r3.status_code == 404 and a.id not in r3.text and b.id not in r3.text


async def test_confirmation_step_when_third_party_found(env: Env) -> None:
    h = await do_hold(env, verdict(findings=[THIRD_PARTY, LOOKALIKE]))
    path = link_path(await _notice_for(env, h.mail_from))
    async with client_for(env) as c:
        page = await c.get(path)
        csrf = csrf_of(page.text)
        r = await c.post(path, data={"action": "release", "csrf": csrf})
        assert r.status_code == 200 and 'name="confirm" value="1"' in r.text
        assert "secret-person@other-client.example.org" in visible(r.text)
        got = await env.store.get_hold(h.id)
        assert got is not None and got.state == HoldState.HELD
        assert await queued(env, "mail") == []
        r = await c.post(path, data={"action": "release", "csrf": csrf, "confirm": "1"})
        assert r.status_code == 200
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.RELEASED
    assert len(await queued(env, "mail")) == 1


async def test_hostile_html_is_sanitised(env: Env) -> None:
    hostile = (
        '<p onclick="x()">Hello<script>window.pwned=1</script>'
        '<img src="http://tracker.example/p.gif" onerror="window.pwned=2">'
        '<a href="javascript:alert(1)">click</a><a href="https://phish.example/">bank</a>'
        '<style>body{display:none}</style><iframe src="http://evil.example/"></iframe></p>'
    )
    h = await do_hold(env, html=hostile)
    path = link_path(await _notice_for(env, h.mail_from))
    async with client_for(env) as c:
        r = await c.get(path + "?view=html")
    assert r.status_code == 200
    start = r.text.index('id="htmlview"')
    view = r.text[start : r.text.index("</div>", start)]
    for bad in (
        "<script",
        "onerror",
        "onclick",
        "javascript:",
        "href=",
        "src=",
        "<style",
        "<iframe",
        "tracker.example",
    ):
        assert bad not in view, bad
    assert "Hello" in view and "bank" in view


async def test_delay_page_offers_cancel_and_send_now(env: Env) -> None:
    h = await do_hold(env, verdict(action=Action.DELAY, delay_seconds=300))
    path = link_path(await _notice_for(env, h.mail_from))
    async with client_for(env) as c:
        page = await c.get(path + "?lang=en")
        assert "Cancel sending" in page.text and "Send now" in page.text
        r = await c.post(path, data={"action": "discard", "csrf": csrf_of(page.text)})
        assert r.status_code == 200
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.DISCARDED
    env.clock.advance(minutes=10)
    await env.service.tick()
    assert await queued(env, "mail") == []


async def test_sender_cannot_release_when_approval_needed(env: Env) -> None:
    h = await do_hold(env, verdict(approval="supervisor"))
    assert h.approvers == ("sato@city.example.lg.jp",)
    sender_path = link_path(await _notice_for(env, h.mail_from))
    approver_path = link_path(await _notice_for(env, "sato@city.example.lg.jp"))
    async with client_for(env) as c:
        page = await c.get(sender_path)
        assert 'value="release"' not in page.text and 'value="discard"' in page.text
        r = await c.post(sender_path, data={"action": "release", "csrf": csrf_of(page.text)})
        assert r.status_code == 409
        got = await env.store.get_hold(h.id)
        assert got is not None and got.state == HoldState.HELD
        page = await c.get(approver_path)
        assert "Release (send)" in page.text  # the supervisor reads English (directory)
        r = await c.post(approver_path, data={"action": "release", "csrf": csrf_of(page.text)})
        assert r.status_code == 200
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.RELEASED


async def test_admin_login_list_filters_timeline_and_release(env: Env, tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    add_user(users, "admin", "correct horse battery")
    env.web.admin_users_file = str(users)
    h1 = await do_hold(env, subject="first mail")
    h2 = await do_hold(
        env,
        verdict(action=Action.DELAY, delay_seconds=60),
        subject="second mail",
        mail_from="alice@city.example.lg.jp",
        sender="alice@city.example.lg.jp",
    )
    async with client_for(env) as c:
        r = await c.get("/admin")
        assert r.status_code == 303 and "/admin/login" in r.headers["location"]
        page = await c.get("/admin/login?lang=en")
        csrf = csrf_of(page.text)
        bad = await c.post(
            "/admin/login?lang=en", data={"user": "admin", "password": "nope", "csrf": csrf}
        )
        assert bad.status_code == 403 and "Wrong user name or password" in bad.text
        ok = await c.post(
            "/admin/login",
            data={"user": "admin", "password": "correct horse battery", "csrf": csrf},
        )
        assert ok.status_code == 303
        lst = await c.get("/admin?lang=en")
        assert h1.id in lst.text and h2.id in lst.text
        only_delayed = await c.get("/admin?state=delayed")
        assert h2.id in only_delayed.text and h1.id not in only_delayed.text
        by_sender = await c.get("/admin", params={"sender": "alice@city.example.lg.jp"})
        assert h2.id in by_sender.text and h1.id not in by_sender.text
        by_rule = await c.get("/admin", params={"rule": "forwarded-third-party"})
        assert h1.id in by_rule.text and h2.id not in by_rule.text
        env.clock.advance(hours=2)
        aged = await c.get("/admin", params={"age": "1h"})
        assert h1.id in aged.text
        detail = await c.get(f"/admin/h/{h1.id}?lang=en")
        assert "Timeline" in detail.text and "notice held" in detail.text
        r = await c.post(
            f"/admin/h/{h1.id}", data={"action": "release", "csrf": csrf_of(detail.text)}
        )
        assert r.status_code == 200
        detail = await c.get(f"/admin/h/{h1.id}?lang=en")
        assert "admin:admin" in detail.text
    got = await env.store.get_hold(h1.id)
    assert got is not None and got.state == HoldState.RELEASED
