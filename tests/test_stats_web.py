"""``/admin/stats`` over HTTP: login required, ja/en, periods, SVG charts, escaping."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from stats_seed import HOSTILE, NOISY, seed
from test_holds_support import Env, make_env
from test_web_admin_sessions import PASSWORD, client, login

from leakguard.relay.users import add_user
from leakguard.web.app import create_app


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path)
    users = tmp_path / "admins.txt"
    add_user(users, "admin", PASSWORD)
    e.web.admin_users_file = str(users)
    e.clock.t = datetime.now(UTC)
    await seed(e.store, e.clock.t)
    try:
        yield e
    finally:
        await e.store.close()


async def test_login_required(env: Env) -> None:
    async with client(create_app(env.service, env.web)) as c:
        r = await c.get("/admin/stats?lang=en")
        assert r.status_code == 303 and r.headers["location"] == "/admin/login?lang=en"
        assert NOISY not in r.text


async def test_page_en_and_ja(env: Env) -> None:
    async with client(create_app(env.service, env.web)) as c:
        await login(c)
        r = await c.get("/admin/stats?lang=en")
        assert r.status_code == 200
        html = r.text
        assert "<h1>Statistics</h1>" in html
        assert 'aria-current="page">30 days' in html
        # charts: server-side SVG with title and desc
        assert html.count('<svg class="chart"') == 2
        assert re.search(r'<svg[^>]+role="img"[^>]+aria-labelledby="daily-t daily-d"', html)
        assert '<title id="rules-t">Holds per rule and release rate</title>' in html
        # noisy rule flagged with an explanation
        assert 'id="noisy"' in html and "sent anyway" in html
        rules = html[html.index('id="rules"') :]
        row = rules[rules.index(NOISY) - 300 : rules.index(NOISY) + 400]
        assert "noisy" in row and ">90%<" in row
        assert 'id="departments"' in html and "財政課" in html
        # the mails decided, each once, above the per-rule numbers
        total = re.search(r'<p id="mails-total">Mails decided: (\d+) \(', html)
        assert total is not None and int(total.group(1)) > 0
        assert "counts for each rule" in html
        # each rule that held mail links to the holds it made (the admin list, filtered)
        assert f'href="/admin?rule={NOISY}&amp;lang=en"' in html
        # the admin bar links here
        assert 'href="/admin/stats?lang=en"' in html
        assert "1234-5678-9012" not in html
        ja = (await c.get("/admin/stats?lang=ja&days=7")).text
        assert "<h1>統計</h1>" in ja and 'aria-current="page">7日間' in ja
        assert "要見直し" in ja and "送信率" in ja and "部署別" in ja
        # 7 days: the audit hits 7-11 days ago are outside, the one 2 days ago inside
        assert "new-rule" in ja
        # an unknown period falls back to 30 days
        odd = (await c.get("/admin/stats?lang=en&days=100000")).text
        assert 'aria-current="page">30 days' in odd


async def test_hostile_rule_and_department_are_escaped(env: Env) -> None:
    async with client(create_app(env.service, env.web)) as c:
        await login(c)
        for lang in ("en", "ja"):
            html = (await c.get(f"/admin/stats?lang={lang}")).text
            assert HOSTILE not in html
            assert "&lt;script&gt;alert(" in html
            assert "<script" not in html
        r = await c.get("/admin/stats?lang=en")
        assert "script-src" not in r.headers["content-security-policy"]


async def test_empty_store(tmp_path: Path) -> None:
    e = await make_env(tmp_path)
    users = tmp_path / "admins.txt"
    add_user(users, "admin", PASSWORD)
    e.web.admin_users_file = str(users)
    try:
        async with client(create_app(e.service, e.web)) as c:
            await login(c)
            r = await c.get("/admin/stats?lang=en")
            assert r.status_code == 200 and "Nothing was recorded in this period." in r.text
    finally:
        await e.store.close()
