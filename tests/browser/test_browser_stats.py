"""Headless Chromium: /admin/stats in Japanese and English, desktop and phone (390x844).

With ``LEAKGUARD_SCREENSHOTS=1`` the screenshots go to docs/img/stats-ja.png,
stats-en.png and stats-phone.png (else to the test's temporary directory).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from stats_seed import NOISY, seed

from leakguard.relay.users import add_user

Live = Any  # the ``live`` fixture of tests/browser/conftest.py

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def _small(path: Path) -> None:
    """Screenshots for the docs: 64 colours are plenty for a page of text and bars."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with reportlab
        return
    with Image.open(path) as im:
        q = im.convert("RGB").quantize(colors=64, dither=Image.Dither.NONE)
    q.save(path, optimize=True)


async def _login(page: Any, base: str, lang: str) -> None:
    await page.goto(f"{base}/admin/stats?lang={lang}")
    assert "/admin/login" in page.url  # not logged in: sent to the login page
    await page.fill("input[name=user]", "admin")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.goto(f"{base}/admin/stats?lang={lang}")


async def test_stats_page_ja_en_phone(live: Live, browser: Any, tmp_path: Path) -> None:
    env = live.env
    users = tmp_path / "admins.txt"
    add_user(users, "admin", PASSWORD)
    env.web.admin_users_file = str(users)
    env.clock.t = datetime.now(UTC)
    await seed(env.store, env.clock.t, hostile="personal-data", traffic=True)
    out = ROOT / "docs" / "img" if os.environ.get("LEAKGUARD_SCREENSHOTS") else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    for lang, h1, noisy_word in (("ja", "統計", "要見直し"), ("en", "Statistics", "noisy")):
        ctx = await browser.new_context(viewport={"width": 1100, "height": 900})
        page = await ctx.new_page()
        await _login(page, live.base_url, lang)
        assert (await page.inner_text("h1")) == h1
        charts = page.locator("svg.chart")
        assert await charts.count() == 2
        assert await charts.nth(0).is_visible() and await charts.nth(1).is_visible()
        assert await page.locator("svg.chart > title").first.text_content()
        box = await charts.nth(0).bounding_box()
        assert box is not None and box["width"] > 600 and box["height"] > 150
        # daily bars and per-rule bars were drawn
        assert await page.locator("svg.chart rect").count() > 40
        assert await page.locator("#noisy").is_visible()
        row = page.locator("#rules tr", has_text=NOISY)
        assert noisy_word in await row.inner_text()
        assert "90%" in await row.inner_text()
        assert await page.locator("#departments").is_visible()
        await page.screenshot(path=str(out / f"stats-{lang}.png"), full_page=True)
        _small(out / f"stats-{lang}.png")
        # the text alternative of the daily chart opens
        assert not await page.locator("#days").is_visible()
        await page.click("details summary")
        assert await page.locator("#days tbody tr").count() >= 30
        # period selector
        await page.click("a.period >> nth=0")
        assert "days=7" in page.url
        current = await page.inner_text(".period.current")
        assert current in ("7日間", "7 days")
        await ctx.close()
    # phone: nothing wider than the screen except inside the scrolling tables
    mctx = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = await mctx.new_page()
    await _login(page, live.base_url, "ja")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    box = await page.locator("svg.chart").nth(0).bounding_box()
    assert box is not None and box["width"] <= 390
    assert await page.locator("#noisy").is_visible()
    await page.screenshot(path=str(out / "stats-phone.png"))
    _small(out / "stats-phone.png")
    # the admin bar links to the page; the language switch keeps working
    await page.click("a.lang")
    assert (await page.inner_text("h1")) == "Statistics"
    await mctx.close()
