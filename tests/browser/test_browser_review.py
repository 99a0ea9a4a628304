"""Headless Chromium: from a real notice to a released mail at the upstream; hostile HTML."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest
from test_holds_support import LOOKALIKE, THIRD_PARTY, do_hold, queued, text_of, verdict

from leakguard.holds.model import HoldState
from leakguard.types import Finding

Live = Any  # the ``live`` fixture of tests/browser/conftest.py

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]


async def _notice(live: Live, rcpt: str) -> bytes:
    for _, rcpts, raw, _ in await queued(live.env, "notice"):
        if rcpts == [rcpt]:
            return raw
    raise AssertionError("no notice")


def _link(live: Live, notice: bytes) -> str:
    m = re.search(re.escape(live.base_url) + r"/h/[A-Za-z0-9_.\-]+", text_of(notice))
    assert m
    return m.group(0)


async def _wait_for(cond: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_open_notice_link_read_reasons_click_release(live: Live, browser: Any) -> None:
    h = await do_hold(live.env)
    link = _link(live, await _notice(live, h.mail_from))
    page = await browser.new_page()
    await page.goto(link)
    body = await page.inner_text("body")
    assert "宛先が知らないはずの第三者" in body
    assert "a@client-one.example.com" in body
    await page.click("button[value=release]")
    assert "送信しました" in await page.inner_text("#result")
    got = await live.env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.RELEASED
    # the delivery worker sends it to the upstream sink
    await _wait_for(
        lambda: any(m[2].find(b"Subject:") >= 0 and h.rcpts[0] in m[1] for m in live.sink.messages)
    )
    mail_from, rcpts, raw = next(m for m in live.sink.messages if h.rcpts[0] in m[1])
    assert mail_from == h.mail_from and sorted(rcpts) == sorted(h.rcpts)
    assert b"Message-ID: <orig-1@city.example.lg.jp>" in raw
    await page.close()


async def test_confirmation_step_in_the_browser(live: Live, browser: Any) -> None:
    h = await do_hold(live.env, verdict(findings=[THIRD_PARTY, LOOKALIKE]))
    page = await browser.new_page()
    await page.goto(_link(live, await _notice(live, h.mail_from)) + "?lang=en")
    await page.click("button[value=release]")
    assert "Really send?" in await page.inner_text("body")
    got = await live.env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.HELD
    await page.click("#confirm")
    assert "released" in await page.inner_text("#result")
    await page.close()


async def test_report_button_and_mistake_discard(live: Live, browser: Any) -> None:
    """Issue 9: 「誤送信を報告する」 and 「破棄 (誤送信でした)」 on the review page (ja/en,
    phone-sized too); the mistake discard goes through the one resolve path."""
    from test_holds_support import SECRET

    from leakguard.officer.links import ReportLinks, ReportRef

    links = ReportLinks(SECRET, base_url=live.base_url, max_age_seconds=86400)
    live.env.service.report_links = links
    h = await do_hold(live.env)
    link = _link(live, await _notice(live, h.mail_from))
    ctx = await browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = await ctx.new_page()
    await page.goto(link + "?lang=en")
    report = page.locator("#report-link")
    assert (await report.inner_text()).strip() == "Report a mistake"
    href = await report.get_attribute("href")
    assert href and href.startswith(live.base_url + "/report/")
    assert links.verify(href.rsplit("/", 1)[1]) == ReportRef(actor=h.mail_from, hold_id=h.id)
    mistake = page.locator("button[value=discard_mistake]")
    assert (await mistake.inner_text()).strip() == "Discard — this was a mistake"
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await page.goto(link)
    assert (await page.locator("#report-link").inner_text()).strip() == "誤送信を報告する"
    await page.click("button[value=discard_mistake]")
    assert "破棄しました" in await page.inner_text("#result")
    got = await live.env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.DISCARDED
    timeline = await live.env.store.timeline(h.id)
    assert any("[mistake]" in tr.note for tr in timeline)
    await ctx.close()


HOSTILE = """<html><head><script>window.pwned = 1</script>
<style>body{background:red}</style><meta http-equiv="refresh" content="0;url=http://127.0.0.1:{port}/r"></head>
<body onload="window.pwned=2"><p>Dear customer</p>
<img src="http://127.0.0.1:{port}/pixel.gif" onerror="window.pwned=3">
<a href="javascript:window.pwned=4" id="js">click</a>
<svg onload="window.pwned=5"><script>window.pwned=6</script></svg>
<iframe src="http://127.0.0.1:{port}/frame"></iframe>
<form action="http://127.0.0.1:{port}/steal"><input name=x></form>
<div style="background:url(http://127.0.0.1:{port}/bg.png)">styled</div>
</body></html>"""


async def test_hostile_html_renders_inert(live: Live, browser: Any) -> None:
    canary = live.sink.port  # any port on localhost other than the web server's
    html = HOSTILE.replace("{port}", str(canary))
    h = await do_hold(
        live.env,
        html=html,
        body="<script>window.pwned=7</script> see http://127.0.0.1/x\n",
        subject="<script>window.pwned=8</script>",
    )
    link = _link(live, await _notice(live, h.mail_from))
    page = await browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    for url in (link, link + "?view=html"):
        await page.goto(url)
        await page.wait_for_timeout(300)
        assert await page.evaluate("typeof window.pwned") == "undefined"
    text = await page.inner_text("#htmlview")
    assert "Dear customer" in text and "styled" in text
    assert await page.locator("#htmlview a[href]").count() == 0
    assert await page.locator("#htmlview img[src]").count() == 0
    foreign = [u for u in requests if not u.startswith(live.base_url)]
    assert foreign == [], foreign
    # the notice's own HTML part, rendered in a browser, is inert too
    notice_html = text_of(await _notice(live, h.mail_from), "html")
    await page.set_content(notice_html)
    await page.wait_for_timeout(200)
    assert await page.evaluate("typeof window.pwned") == "undefined"
    hrefs = await page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    assert hrefs and all(h.startswith(live.base_url + "/h/") for h in hrefs)
    assert await page.get_by_text("<script>window.pwned=8</script>").count() >= 1
    await page.close()


async def test_page_is_usable_on_a_phone(live: Live, browser: Any) -> None:
    h = await do_hold(live.env, verdict(offer_bcc=True))
    ctx = await browser.new_context(
        viewport={"width": 375, "height": 740}, is_mobile=True, java_script_enabled=False
    )
    page = await ctx.new_page()
    await page.goto(_link(live, await _notice(live, h.mail_from)))
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    button = page.locator("button[value=release_bcc]")
    box = await button.bounding_box()
    assert box is not None and box["height"] >= 40
    await button.click()  # works without JavaScript
    got = await live.env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.RELEASED_BCC
    await ctx.close()


SIMILAR = Finding(
    detector="names",
    fact="name_similar_recipients",
    addresses=("b@client-two.example.net",),
    detail="similar",
    evidence={
        "similar_to": "suzuki@city.example.lg.jp",
        "similar_name": "鈴木 一郎",
        "source": "directory",
    },
)


@pytest.mark.skipif(
    not os.environ.get("LEAKGUARD_SCREENSHOTS"),
    reason="set LEAKGUARD_SCREENSHOTS=1 to refresh docs/screenshots",
)
async def test_screenshots(live: Live, browser: Any) -> None:
    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    bodies = {}
    bodies["en"] = (
        "Dear Ms Smith,\n\nThank you for the meeting yesterday. Please find the "
        "materials below.\nDetails: https://files.example.com/share/abc\n\n"
        "> -----Original Message-----\n> From: secret-person@other-client.example.org\n"
    )
    bodies["ja"] = (
        "山田様\n\nいつもお世話になっております。\n先日のお打ち合わせの件、資料をお送りします。\n"
        "詳細は https://files.example.com/share/abc をご覧ください。\n\n"
        "> -----Original Message-----\n> From: secret-person@other-client.example.org\n"
    )
    for lang, sender in (("ja", "tanaka@city.example.lg.jp"), ("en", "alice@city.example.lg.jp")):
        h = await do_hold(
            live.env,
            verdict(findings=[THIRD_PARTY, LOOKALIKE, SIMILAR], offer_bcc=True),
            mail_from=sender,
            sender=sender,
            body=bodies[lang],
            subject="Re: 打ち合わせ資料の送付" if lang == "ja" else "Re: Meeting materials",
            cc=["suzuki@city.example.lg.jp"],
        )
        notice = await _notice(live, sender)
        ctx = await browser.new_context(viewport={"width": 720, "height": 900})
        page = await ctx.new_page()
        await page.set_content(text_of(notice, "html"))
        await page.screenshot(path=str(out / f"notice-{lang}.png"), full_page=True)
        await page.goto(_link(live, notice))
        await page.screenshot(path=str(out / f"review-{lang}.png"), full_page=True)
        await ctx.close()
        mctx = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        mpage = await mctx.new_page()
        await mpage.goto(_link(live, notice))
        await mpage.screenshot(path=str(out / f"review-phone-{lang}.png"))
        await mctx.close()
        assert h.id
