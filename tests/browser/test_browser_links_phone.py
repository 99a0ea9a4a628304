"""Headless Chromium (issue 10): a used link explains itself; phones never split a domain."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from test_holds_support import do_hold, queued, text_of, verdict

from leakguard.holds.model import HoldState

Live = Any  # the ``live`` fixture of tests/browser/conftest.py

pytestmark = pytest.mark.browser

LONG_TO = (
    "procurement.department.manager@very-long-subdomain.client-one.example.co.jp",
    "b@client-two.example.net",
)
# every piece a line may end with: the local part, '@label' and '.label'
PIECE = re.compile(r"^(?:[^@.]+|@[^@.]+|\.[^@.]+)$")


async def _link(live: Live, rcpt: str) -> str:
    for _, rcpts, raw, _ in await queued(live.env, "notice"):
        if rcpts == [rcpt]:
            m = re.search(re.escape(live.base_url) + r"/h/[A-Za-z0-9_.\-]+", text_of(raw))
            assert m
            return m.group(0)
    raise AssertionError("no notice")


async def test_used_link_says_what_happened(live: Live, browser: Any) -> None:
    h = await do_hold(live.env)
    other = await do_hold(live.env, subject="別件のメール")
    link = await _link(live, h.mail_from)
    page = await browser.new_page()
    await page.goto(link)
    await page.click("button[value=discard]")
    assert "破棄しました" in await page.inner_text("#result")
    # the same link again: not a bare 404 but what happened, by whom, when
    resp = await page.goto(link)
    assert resp is not None and resp.status == 410
    assert "このリンクは使用済みです" in await page.inner_text("#result")
    handled = await page.inner_text("#handled")
    assert f"{h.mail_from} によって処理されました" in handled and "破棄" in handled
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", handled)
    body = await page.inner_text("body")
    assert h.id in body and other.id not in body and "別件" not in body
    assert await page.locator("button").count() == 0  # nothing left to press
    await page.click("a.lang")  # the English version of the same page
    assert "This link was already used" in await page.inner_text("#result")
    assert "discarded" in await page.inner_text("#handled")
    # a forged link shows only that it is invalid
    resp = await page.goto(link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB"))
    assert resp is not None and resp.status == 404
    body = await page.inner_text("body")
    assert h.id not in body and other.id not in body
    got = await live.env.store.get_hold(other.id)
    assert got is not None and got.state == HoldState.HELD
    await page.close()


@pytest.mark.parametrize("width", [320, 375])
async def test_phone_view_breaks_addresses_only_at_at_and_dots(
    live: Live, browser: Any, width: int
) -> None:
    h = await do_hold(live.env, verdict(offer_bcc=True), to=LONG_TO)
    ctx = await browser.new_context(
        viewport={"width": width, "height": 740}, is_mobile=True, device_scale_factor=2
    )
    page = await ctx.new_page()
    await page.goto(await _link(live, h.mail_from))
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    pieces = await page.evaluate(
        """() => [...document.querySelectorAll('.nb')].map(e => [
            e.textContent, e.getClientRects().length])"""
    )
    texts = [p[0] for p in pieces]
    assert "@very-long-subdomain" in texts and ".example" in texts, texts
    for text, rects in pieces:
        assert PIECE.match(text), text
        assert rects == 1, f"{text!r} is split across lines at {width}px"
    # the long address really wraps (at a dot or '@'), so the test is not vacuous
    lines = await page.evaluate(
        """() => {
          const td = [...document.querySelectorAll('.rcpts .addr')]
            .find(e => e.textContent.includes('procurement'));
          const tops = new Set([...td.querySelectorAll('.nb')]
            .map(e => Math.round(e.getBoundingClientRect().top)));
          return tops.size;
        }"""
    )
    assert lines >= 2
    shots = os.environ.get("LEAKGUARD_SHOT_DIR")
    if shots:
        await page.screenshot(path=str(Path(shots) / f"phone-{width}.png"), full_page=True)
    await ctx.close()
