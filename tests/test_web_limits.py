"""App-wide form limits (issue 12): every form is read with Starlette's limits (no files, a
few fields, small parts: else 400) and any request body over the app's limit is refused
with 413 before a handler reads it, with a page in Japanese and English."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from test_holds_support import Env, do_hold, make_env, queued
from test_web_review import client_for, csrf_of, link_path

from leakguard.holds.model import HoldState
from leakguard.web.app import FORM_MAX_FIELDS, FORM_MAX_PART, MAX_BODY


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path)
    try:
        yield e
    finally:
        await e.store.close()


async def _page(env: Env) -> tuple[str, str, str]:
    h = await do_hold(env)
    ((_, _, notice, _),) = await queued(env, "notice")
    return h.id, link_path(notice), ""


async def test_body_over_the_limit_is_413_in_both_languages(env: Env) -> None:
    hold_id, path, _ = await _page(env)
    async with client_for(env) as c:
        page = await c.get(path)
        csrf = csrf_of(page.text)
        for target in (path, "/admin/login", "/admin/h/" + hold_id, "/nowhere"):
            r = await c.post(target, data={"csrf": csrf, "x": "a" * (MAX_BODY + 1)})
            assert r.status_code == 413, target
            assert "大きすぎる" in r.text and "too large" in r.text
            assert r.headers["x-content-type-options"] == "nosniff"  # still our headers

    got = await env.store.get_hold(hold_id)
    assert got is not None and got.state == HoldState.HELD


async def test_review_form_limits_are_400_and_change_nothing(env: Env) -> None:
    hold_id, path, _ = await _page(env)
    async with client_for(env) as c:
        page = await c.get(path)
        csrf = csrf_of(page.text)
        many = {"csrf": csrf, "action": "release", **{f"f{i}": "x" for i in range(100)}}
        r = await c.post(path, data=many)
        assert r.status_code == 400 and "フォーム" in r.text and "form" in r.text
        r = await c.post(
            path, data={"csrf": csrf, "action": "discard", "x": "y" * (FORM_MAX_PART + 1)}
        )
        assert r.status_code == 400
        r = await c.post(
            path,
            data={"csrf": csrf, "action": "discard"},
            files={"f": ("a.txt", b"hello", "text/plain")},
        )
        assert r.status_code == 400
        got = await env.store.get_hold(hold_id)
        assert got is not None and got.state == HoldState.HELD
        # within the limits the same form works
        fields = {"csrf": csrf, "action": "discard"}
        fields.update({f"f{i}": "x" for i in range(FORM_MAX_FIELDS - len(fields))})
        r = await c.post(path, data=fields)
        assert r.status_code == 200
    got = await env.store.get_hold(hold_id)
    assert got is not None and got.state == HoldState.DISCARDED


async def test_admin_login_form_is_limited(env: Env) -> None:
    async with client_for(env) as c:
        r = await c.post("/admin/login", data={"user": "a", "password": "p" * (FORM_MAX_PART + 10)})
        assert r.status_code == 400


async def test_streamed_body_without_length_is_cut_off_at_the_limit() -> None:
    """Chunked bodies (no Content-Length) are counted as they arrive: the handler that reads
    the body gets no further than the limit, and the client gets the 413 page."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from leakguard.web.app import _BodyLimit

    read: list[int] = []

    async def echo(request: Request) -> PlainTextResponse:
        body = await request.body()
        read.append(len(body))
        return PlainTextResponse(str(len(body)))

    app = Starlette(
        routes=[Route("/", echo, methods=["POST"])],
        middleware=[Middleware(_BodyLimit, max_bytes=10_000)],  # as create_app places it
    )

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"a" * 1000

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/", content=chunks())
        assert r.status_code == 413 and "too large" in r.text
        assert read == []  # the handler never got the body
        r = await c.post("/", content=b"a" * 9_000)
        assert r.status_code == 200 and r.text == "9000"
        r = await c.post("/", content=b"a" * 10_001)
        assert r.status_code == 413
