"""Review and report pages have no session: their forms' CSRF tokens are bound to the link
as well as to the browser's cookie (issue 12). A token issued on one link's page, even with
the very cookie the server issued for it (planted in the victim's browser), does not
answer another link."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_holds_support import Env, do_hold, make_env, queued
from test_web_review import client_for, csrf_of, link_path

from leakguard.holds.model import HoldState
from leakguard.web.app import CSRF_COOKIE


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path)
    try:
        yield e
    finally:
        await e.store.close()


async def _paths(env: Env) -> dict[str, str]:
    """hold id -> review path of its sender's notice."""
    return {hid: link_path(raw) for _k, _r, raw, hid in await queued(env, "notice")}


async def test_token_from_another_links_page_is_refused_with_the_same_cookie(env: Env) -> None:
    mine = await do_hold(env, subject="mine")
    theirs = await do_hold(env, subject="theirs")
    paths = await _paths(env)
    async with client_for(env) as c:
        page_a = await c.get(paths[mine.id])
        page_b = await c.get(paths[theirs.id])
        token_a, token_b = csrf_of(page_a.text), csrf_of(page_b.text)
        assert token_a != token_b  # one cookie, two links, two tokens
        r = await c.post(paths[theirs.id], data={"action": "discard", "csrf": token_a})
        assert r.status_code == 403
        got = await env.store.get_hold(theirs.id)
        assert got is not None and got.state == HoldState.HELD
        r = await c.post(paths[theirs.id], data={"action": "discard", "csrf": token_b})
        assert r.status_code == 200
        got = await env.store.get_hold(theirs.id)
        assert got is not None and got.state == HoldState.DISCARDED
        got = await env.store.get_hold(mine.id)
        assert got is not None and got.state == HoldState.HELD


async def test_planted_server_issued_cookie_does_not_help(env: Env) -> None:
    """The attacker opens a link of their own, gets a genuine cookie and its token, and
    plants both on the victim: the victim's link does not accept that token."""
    attacker_hold = await do_hold(env, subject="attacker")
    victim_hold = await do_hold(env, subject="victim")
    paths = await _paths(env)
    async with client_for(env) as attacker:
        page = await attacker.get(paths[attacker_hold.id])
        cookie = attacker.cookies.get(CSRF_COOKIE)
        token = csrf_of(page.text)
    assert cookie
    async with client_for(env) as victim:
        victim.cookies.set(CSRF_COOKIE, cookie, domain="review.test")
        r = await victim.post(paths[victim_hold.id], data={"action": "release", "csrf": token})
        assert r.status_code == 403
        # the victim's own page, with the planted cookie, gets a token for this link only
        page = await victim.get(paths[victim_hold.id])
        assert csrf_of(page.text) != token
    got = await env.store.get_hold(victim_hold.id)
    assert got is not None and got.state == HoldState.HELD
