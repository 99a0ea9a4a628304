"""Administrators' sessions and users file: refused SMTP users file, revocation on removal,
password change, logout on any node (security review L1, L2; issue 11)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from test_holds_support import Env, do_hold, make_env

from leakguard.relay.users import add_user, remove_user
from leakguard.web.app import SESSION_COOKIE, WebConfigError, create_app

PASSWORD = "correct horse battery"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path)
    users = tmp_path / "admins.txt"
    add_user(users, "admin", PASSWORD)
    e.web.admin_users_file = str(users)
    try:
        yield e
    finally:
        await e.store.close()


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://review.test")


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, html[:300]
    return m.group(1)


async def login(c: httpx.AsyncClient, user: str = "admin", password: str = PASSWORD) -> str:
    """Log in; returns the session cookie value."""
    page = await c.get("/admin/login")
    r = await c.post(
        "/admin/login", data={"user": user, "password": password, "csrf": csrf_of(page.text)}
    )
    assert r.status_code == 303, r.text[:300]
    cookie = c.cookies.get(SESSION_COOKIE)
    assert cookie
    return cookie


async def is_in(c: httpx.AsyncClient) -> bool:
    r = await c.get("/admin")
    if r.status_code == 200:
        return True
    assert r.status_code == 303 and "/admin/login" in r.headers["location"]
    return False


def with_cookie(c: httpx.AsyncClient, cookie: str) -> None:
    c.cookies.set(SESSION_COOKIE, cookie, domain="review.test", path="/admin")


# ------------------------------------------------------------------ L2: SMTP users file


def test_admin_file_that_is_the_smtp_users_file_is_refused(env: Env, tmp_path: Path) -> None:
    assert env.web.admin_users_file is not None
    with pytest.raises(WebConfigError) as err:
        create_app(env.service, env.web, smtp_users_file=env.web.admin_users_file)
    text = str(err.value)
    assert "SMTP AUTH" in text and "管理者" in text and "every mail user" in text.lower()
    assert env.web.admin_users_file in text


def test_same_file_under_another_name_is_refused(env: Env, tmp_path: Path) -> None:
    assert env.web.admin_users_file is not None
    admin = Path(env.web.admin_users_file)
    link = tmp_path / "sub" / "smtp-users.txt"
    link.parent.mkdir()
    link.symlink_to(admin)
    with pytest.raises(WebConfigError):
        create_app(env.service, env.web, smtp_users_file=link)
    hard = tmp_path / "hard-users.txt"
    hard.hardlink_to(admin)
    with pytest.raises(WebConfigError):
        create_app(env.service, env.web, smtp_users_file=hard)
    dotted = tmp_path / "sub" / ".." / "admins.txt"  # same path, spelled differently
    with pytest.raises(WebConfigError):
        create_app(env.service, env.web, smtp_users_file=str(dotted))


async def test_separate_smtp_users_file_is_fine_and_its_users_are_not_admins(
    env: Env, tmp_path: Path
) -> None:
    smtp = tmp_path / "users.txt"
    add_user(smtp, "tanaka@city.example.lg.jp", "mail password")
    app = create_app(env.service, env.web, smtp_users_file=smtp)
    async with client(app) as c:
        page = await c.get("/admin/login")
        r = await c.post(
            "/admin/login",
            data={
                "user": "tanaka@city.example.lg.jp",
                "password": "mail password",
                "csrf": csrf_of(page.text),
            },
        )
        assert r.status_code == 403
        await login(c)
        assert await is_in(c)


# ------------------------------------------------------------------ L1: sessions


async def test_session_ends_when_the_user_is_removed(env: Env) -> None:
    await do_hold(env)
    assert env.web.admin_users_file is not None
    add_user(Path(env.web.admin_users_file), "other", "other password")
    async with client(create_app(env.service, env.web)) as c:
        await login(c)
        assert await is_in(c)
        remove_user(Path(env.web.admin_users_file), "admin")
        assert not await is_in(c)
        h = await do_hold(env, subject="x")
        r = await c.post(f"/admin/h/{h.id}", data={"action": "release", "csrf": "x"})
        assert r.status_code == 303  # not even looked at
        add_user(Path(env.web.admin_users_file), "admin", PASSWORD)
        assert not await is_in(c)  # re-adding the user does not revive the old session


async def test_session_ends_when_the_password_changes(env: Env) -> None:
    assert env.web.admin_users_file is not None
    async with client(create_app(env.service, env.web)) as c:
        await login(c)
        assert await is_in(c)
        add_user(Path(env.web.admin_users_file), "admin", "a new password")
        assert not await is_in(c)
        await login(c, password="a new password")
        assert await is_in(c)


async def test_session_ends_when_the_users_file_goes_away(env: Env) -> None:
    assert env.web.admin_users_file is not None
    async with client(create_app(env.service, env.web)) as c:
        await login(c)
        assert await is_in(c)
        Path(env.web.admin_users_file).unlink()
        assert not await is_in(c)


async def test_logout_revokes_the_session_server_side(env: Env) -> None:
    app = create_app(env.service, env.web)
    async with client(app) as c:
        cookie = await login(c)
        page = await c.get("/admin")
        assert page.status_code == 200
        r = await c.post("/admin/logout", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 303
        assert not await is_in(c)
        # a copy of the cookie (another tab, a stolen cookie) is dead too
        with_cookie(c, cookie)
        assert not await is_in(c)
        # other sessions of the same user live on
        second = await login(c)
        assert second != cookie and await is_in(c)
    async with client(app) as c2:
        with_cookie(c2, cookie)
        assert not await is_in(c2)
        with_cookie(c2, second)
        assert await is_in(c2)


async def test_logout_without_csrf_does_not_revoke(env: Env) -> None:
    async with client(create_app(env.service, env.web)) as c:
        await login(c)
        r = await c.post("/admin/logout", data={"csrf": "forged"})
        assert r.status_code == 303
        assert await is_in(c)


async def test_a_session_holds_on_every_node_and_a_logout_ends_it_everywhere(env: Env) -> None:
    """Two web apps on one store and one web secret (two workers, two hosts, or a restart):
    a session opened on A is valid on B; a logout on B ends it on A (issue 11)."""
    node_a, node_b = create_app(env.service, env.web), create_app(env.service, env.web)
    async with client(node_a) as a, client(node_b) as b:
        cookie = await login(a)
        with_cookie(b, cookie)
        assert await is_in(b)
        page = await b.get("/admin")
        r = await b.post("/admin/logout", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 303
        assert not await is_in(a)  # A never saw the logout: the store told it
        assert await env.store.session_revoked(_session_id(env, cookie))


async def test_a_session_is_refused_under_another_web_secret(env: Env) -> None:
    async with client(create_app(env.service, env.web)) as c:
        cookie = await login(c)
    env.service.secret = "another secret entirely"
    async with client(create_app(env.service, env.web)) as c2:
        with_cookie(c2, cookie)
        assert not await is_in(c2)


def _session_id(env: Env, cookie: str) -> str:
    import base64
    import json

    payload = cookie.split(".")[0]
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(data["n"])


async def test_forged_and_old_style_cookies_are_refused(env: Env) -> None:
    from itsdangerous import URLSafeTimedSerializer

    old = URLSafeTimedSerializer(env.service.secret, salt="leakguard.admin-session.v1")
    async with client(create_app(env.service, env.web)) as c:
        with_cookie(c, str(old.dumps({"u": "admin"})))
        assert not await is_in(c)
        with_cookie(c, "x" * 5000)
        assert not await is_in(c)


# ------------------------------------------------------------------ issue 12: login on the loop


async def test_failed_admin_logins_do_not_stall_the_event_loop(env: Env) -> None:
    """argon2 runs in a worker thread: while 20 wrong passwords are checked concurrently, the
    event loop (which also serves SMTP) keeps ticking."""
    import asyncio
    import time

    app = create_app(env.service, env.web)
    async with client(app) as c:
        page = await c.get("/admin/login")
        token = csrf_of(page.text)
        worst = 0.0
        done = False

        async def probe() -> None:
            nonlocal worst
            while not done:
                t0 = time.perf_counter()
                await asyncio.sleep(0.005)
                worst = max(worst, time.perf_counter() - t0 - 0.005)

        task = asyncio.create_task(probe())
        rs = await asyncio.gather(
            *(
                c.post(
                    "/admin/login",
                    data={"user": "admin", "password": f"wrong{i}", "csrf": token},
                )
                for i in range(20)
            )
        )
        done = True
        await task
    assert all(r.status_code == 403 for r in rs)
    # On the loop, 20 verifications stalled it for about 2 s on this 2-core machine; in a
    # worker thread the worst tick is a scheduling delay (generous bound: noisy machines).
    assert worst < 0.5, worst


# ------------------------------------------------------------------ serve --workers N


async def test_a_session_made_on_one_worker_is_good_on_another(env: Env) -> None:
    """Every worker derives the session key from the web secret: the kernel may hand the
    next request to any worker (or a balancer to any node)."""
    worker_a = create_app(env.service, env.web)
    worker_b = create_app(env.service, env.web)
    async with client(worker_a) as a:
        cookie = await login(a)
    async with client(worker_b) as b:
        with_cookie(b, cookie)
        assert await is_in(b)


async def test_logout_on_one_worker_ends_the_session_on_another(env: Env) -> None:
    worker_a = create_app(env.service, env.web)
    worker_b = create_app(env.service, env.web)
    async with client(worker_a) as a:
        cookie = await login(a)
        page = await a.get("/admin")
        r = await a.post("/admin/logout", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 303
    async with client(worker_b) as b:
        with_cookie(b, cookie)
        assert not await is_in(b)
