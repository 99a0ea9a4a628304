"""Issue 12, smaller web points: no redirect to the Host header's host, HSTS with an https
base URL, and a CSRF cookie that only the server can issue and that is rotated at login and
logout."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from test_holds_support import Env, do_hold, make_env, queued, text_of

from leakguard.web.app import CSRF_COOKIE, HSTS, create_app

PASSWORD = "correct horse battery"
EVIL = "evil.example"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    from leakguard.relay.users import add_user

    e = await make_env(tmp_path)
    users = tmp_path / "admins.txt"
    add_user(users, "admin", PASSWORD)
    e.web.admin_users_file = str(users)
    try:
        yield e
    finally:
        await e.store.close()


def client(app: Starlette, base: str = "http://review.test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, html[:300]
    return m.group(1)


def set_csrf_cookie(c: httpx.AsyncClient, value: str) -> None:
    c.cookies.delete(CSRF_COOKIE)
    c.cookies.set(CSRF_COOKIE, value, domain="review.test", path="/")


# ------------------------------------------------------------------ redirects


@pytest.mark.parametrize(
    "path", ["/static", "/admin/", "/admin/login/", "/static?x=1", "/admin/?lang=en"]
)
async def test_slash_redirects_never_name_the_host_header(env: Env, path: str) -> None:
    async with client(create_app(env.service, env.web)) as c:
        r = await c.get(path, headers={"Host": EVIL})
    assert r.status_code in (301, 302, 303, 307, 308), (r.status_code, r.text[:200])
    location = r.headers["location"]
    assert EVIL not in location
    assert location.startswith("/") and not location.startswith("//"), location
    if "?" in path:
        assert location.endswith(path.split("?", 1)[1])


@pytest.mark.parametrize(
    "path",
    [
        "http://review.test//admin/",
        "http://review.test//static",
        "/static/nothing/",
        "/nothing",
        "/h/",
    ],
)
async def test_no_redirect_off_site_or_to_nowhere(env: Env, path: str) -> None:
    async with client(create_app(env.service, env.web)) as c:
        r = await c.get(path, headers={"Host": EVIL})
    assert r.status_code == 404, (path, r.status_code, r.headers.get("location"))
    assert "location" not in r.headers


async def test_every_redirect_of_the_app_is_relative(env: Env) -> None:
    async with client(create_app(env.service, env.web)) as c:
        for method, path in (("GET", "/"), ("GET", "/admin"), ("POST", "/admin/logout")):
            r = await c.request(method, path, headers={"Host": EVIL})
            assert r.status_code == 303
            assert r.headers["location"].startswith("/"), r.headers["location"]
            assert EVIL not in r.headers["location"]


# ------------------------------------------------------------------ HSTS


async def test_hsts_with_an_https_base_url(env: Env) -> None:
    env.web.base_url = "https://review.test"
    async with client(create_app(env.service, env.web), "https://review.test") as c:
        for path in ("/admin/login", "/static/style.css", "/h/nothing", "/admin/"):
            r = await c.get(path)
            assert r.headers.get("strict-transport-security") == HSTS, path
    assert HSTS == "max-age=31536000"


async def test_no_hsts_with_an_http_base_url(env: Env) -> None:
    async with client(create_app(env.service, env.web)) as c:
        r = await c.get("/admin/login")
    assert r.status_code == 200
    assert "strict-transport-security" not in r.headers


# ------------------------------------------------------------------ CSRF cookie


async def test_attacker_chosen_csrf_cookie_is_refused(env: Env) -> None:
    """An attacker who can plant a cookie (a sibling host, plain http) and knows the form
    token for it must not get a POST through: the server only accepts cookies it signed."""
    hold = await do_hold(env)
    app = create_app(env.service, env.web)
    web = app.state.web
    notice = next(raw for kind, _, raw, _ in await queued(env, "notice"))
    m = re.search(r"http://review\.test(/h/[A-Za-z0-9_.\-]+)", text_of(notice))
    assert m
    link = m.group(1)
    planted = "attackerchosenvalue_0123456789"
    async with client(app) as c:
        set_csrf_cookie(c, planted)
        page = await c.get(link)
        assert page.status_code == 200
        issued = page.cookies.get(CSRF_COOKIE)
        assert issued and issued != planted  # replaced by a signed one
        assert csrf_of(page.text) != web._csrf_for(planted)
        set_csrf_cookie(c, planted)
        r = await c.post(
            link,
            data={"csrf": web._csrf_for(planted), "action": "discard"},
        )
    assert r.status_code == 403
    still = await env.store.get_hold(hold.id)
    assert still is not None and still.state.is_open


async def test_forged_signature_is_refused(env: Env) -> None:
    app = create_app(env.service, env.web)
    web = app.state.web
    good = web._new_csrf_cookie()
    assert web._csrf_cookie_ok(good)
    nonce, sig = good.split(".")
    for bad in (nonce, f"{nonce}.{'0' * 32}", f"{nonce}x.{sig}", f"{nonce}.{sig}.x", "", "." * 3):
        assert not web._csrf_cookie_ok(bad), bad
    # another installation's key signs other cookies
    other = await make_env(Path(env.web.admin_users_file or ".").parent / "other")
    try:
        other.service.secret = "another secret"
        assert not create_app(other.service, other.web).state.web._csrf_cookie_ok(good)
    finally:
        await other.store.close()


async def test_csrf_cookie_rotates_at_login_and_logout(env: Env) -> None:
    async with client(create_app(env.service, env.web)) as c:
        page = await c.get("/admin/login")
        before = c.cookies.get(CSRF_COOKIE)
        assert before
        r = await c.post(
            "/admin/login", data={"user": "admin", "password": PASSWORD, "csrf": csrf_of(page.text)}
        )
        assert r.status_code == 303
        after = c.cookies.get(CSRF_COOKIE)
        assert after and after != before
        # the token of the pre-login cookie is dead: a logout with it does nothing
        r = await c.post("/admin/logout", data={"csrf": csrf_of(page.text)})
        assert (await c.get("/admin")).status_code == 200
        admin_page = await c.get("/admin")
        r = await c.post("/admin/logout", data={"csrf": csrf_of(admin_page.text)})
        assert r.status_code == 303
        assert c.cookies.get(CSRF_COOKIE) not in (None, before, after)
        assert (await c.get("/admin")).status_code == 303
