"""Budgets per step (issue 12): separate bounded pools, and each step fails closed when its
budget is exceeded: the review page, the notice summary, reply reading, release as Bcc, the
DSN. A runaway in one pool does not delay another pool's work."""

from __future__ import annotations

import asyncio
import email
import threading
import time
from collections.abc import AsyncIterator, Iterator
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from prometheus_client import CollectorRegistry
from test_holds_support import Env, do_hold, make_env, parse, queued, text_of, verdict

from leakguard import budget, stepproc
from leakguard.delivery import Delivery, DeliverySettings, MemoryTransport, Reply
from leakguard.holds import service as holds_service
from leakguard.holds.model import HoldState, Via
from leakguard.holds.service import Decision
from leakguard.metrics import Metrics
from leakguard.store import SqlStore
from leakguard.web import app as web_app
from leakguard.web.app import create_app
from leakguard.web.render import fallback_view

SHORT = 0.3  # seconds: the budget these tests give a step


class Runaway:
    """A function that never returns on its own (until the test ends): a hostile mail."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, *_a: Any, **_k: Any) -> Any:
        self.calls += 1
        self.release.wait(30)
        raise RuntimeError("runaway released")


@pytest.fixture
def runaway() -> Iterator[Runaway]:
    r = Runaway()
    yield r
    r.release.set()


@pytest.fixture(autouse=True)
def short_budgets() -> Iterator[None]:
    saved = dict(budget.DEFAULT_BUDGETS)
    for step in saved:
        budget.configure(step, budget.Budget(workers=2, seconds=SHORT, backlog=4))
    # the steps in worker processes (stepproc): test hooks on, the workers up before the
    # clock of the first call runs
    stepproc.configure(test_hooks=True)
    stepproc.start()
    yield
    stepproc.configure()
    budget.shutdown()
    budget.DEFAULT_BUDGETS.clear()
    budget.DEFAULT_BUDGETS.update(saved)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path)
    try:
        yield e
    finally:
        await e.store.close()


# --------------------------------------------------------------------------- the pools


async def test_budget_exceeded_is_counted_and_logged(runaway: Runaway) -> None:
    metrics = Metrics(CollectorRegistry())
    budget.use_metrics(metrics.step_budget_exceeded)
    try:
        with structlog.testing.capture_logs() as logs:
            t0 = time.monotonic()
            with pytest.raises(budget.BudgetExceeded) as info:
                await budget.run(budget.REVIEW_PAGE, runaway)
            assert time.monotonic() - t0 < SHORT + 1.0
        assert info.value.step == "review_page" and info.value.reason == "timeout"
        got = metrics.registry.get_sample_value(
            "leakguard_step_budget_exceeded_total", {"step": "review_page", "reason": "timeout"}
        )
        assert got == 1.0
        ev = [e for e in logs if e["event"] == "step_budget_exceeded"]
        assert ev and ev[0]["step"] == "review_page" and ev[0]["budget_seconds"] == SHORT
    finally:
        budget.use_metrics(None)


async def test_results_and_exceptions_pass_through() -> None:
    assert await budget.run(budget.DSN, lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(ZeroDivisionError):
        await budget.run(budget.DSN, lambda: 1 // 0)


async def test_a_runaway_fills_only_its_own_pool(runaway: Runaway) -> None:
    # the review pool: 2 threads, a backlog of 4. Runaways time out and keep running;
    # calls still queued when their budget ends are cancelled and never run
    for _ in range(3):
        with pytest.raises(budget.BudgetExceeded):
            await budget.run(budget.REVIEW_PAGE, runaway)
    assert budget.pool(budget.REVIEW_PAGE).pending == 2 and runaway.calls == 2
    queued_calls = [asyncio.create_task(budget.run(budget.REVIEW_PAGE, runaway)) for _ in range(2)]
    await asyncio.sleep(0.05)
    assert budget.pool(budget.REVIEW_PAGE).pending == 4
    # the pool is full now: the next call is refused at once, without waiting its budget
    t0 = time.monotonic()
    with pytest.raises(budget.BudgetExceeded) as info:
        await budget.run(budget.REVIEW_PAGE, lambda: "never")
    assert info.value.reason == "backlog" and time.monotonic() - t0 < 0.1
    # every other pool still works at full speed
    for step in (budget.NOTICE, budget.REPLY, budget.BCC_REWRITE, budget.DSN, budget.PASSWORD):
        t0 = time.monotonic()
        assert await budget.run(step, lambda s=step: s) == step
        assert time.monotonic() - t0 < 0.2, step
    for task in queued_calls:
        with pytest.raises(budget.BudgetExceeded):
            await task
    assert runaway.calls == 2  # the queued ones never ran
    # once the runaways end, the pool recovers
    runaway.release.set()
    for _ in range(50):
        if budget.pool(budget.REVIEW_PAGE).pending == 0:
            break
        await asyncio.sleep(0.05)
    assert await budget.run(budget.REVIEW_PAGE, lambda: "again") == "again"


async def test_concurrent_runaways_and_normal_work_in_another_pool(runaway: Runaway) -> None:
    """While the review pool is busy with runaways, notices are built without delay."""
    slow = [asyncio.create_task(budget.run(budget.REVIEW_PAGE, runaway)) for _ in range(2)]
    await asyncio.sleep(0.05)
    t0 = time.monotonic()
    done = await asyncio.gather(*(budget.run(budget.NOTICE, time.sleep, 0.01) for _ in range(4)))
    assert len(done) == 4 and time.monotonic() - t0 < SHORT
    for t in slow:
        with pytest.raises(budget.BudgetExceeded):
            await t


# --------------------------------------------------------------------------- fail closed


def _client(env: Env) -> httpx.AsyncClient:
    app = create_app(env.service, env.web)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://review.test")


async def test_review_page_past_budget_shows_plain_truncated_view(
    env: Env, runaway: Runaway, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await do_hold(env, body="個人番号 1234 5678 9018 を送ります\n")
    ((_, _, notice, _),) = await queued(env, "notice")
    import re

    path = re.search(r"http://review\.test(/h/[A-Za-z0-9_.\-]+)", text_of(notice))
    assert path
    stepproc.pool(budget.REVIEW_PAGE).hook = stepproc.HOOK_HANG
    async with _client(env) as c:
        r = await c.get(path.group(1))
        assert r.status_code == 200
        assert stepproc.pool(budget.REVIEW_PAGE).replaced == 1  # killed at the budget
        assert 'id="incomplete"' in r.text and "すべてを表示できませんでした" in r.text
        assert 'id="textview"' in r.text
        assert "9018" in r.text and "1234 5678 9018" not in r.text  # still masked
        r = await c.get(path.group(1) + "?lang=en")
        assert "could not be fully displayed" in r.text
        # the answers still work on that page
        assert 'name="csrf"' in r.text
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.HELD


def test_fallback_view_is_cheap_and_safe_on_a_bomb() -> None:
    raw = b"From: a@b.example\r\nContent-Type: text/html\r\n\r\n" + b"<div>" * 2_000_000
    raw += b"\x00\x1b]0;x\x07\xed\xa0\x80"
    t0 = time.perf_counter()
    v = fallback_view(raw)
    assert time.perf_counter() - t0 < 0.5
    assert v.incomplete and v.truncated and v.html == "" and v.headers == ()
    assert "\x00" not in v.text and "\x1b" not in v.text
    v.text.encode("utf-8")
    assert len(v.text) <= 32 * 1024


async def test_notice_past_budget_is_sent_without_the_summary(
    env: Env, runaway: Runaway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(holds_service.HoldService, "_summary_of", runaway)
    h = await do_hold(env, body="本文の最初の行です\n")
    assert h.state == HoldState.HELD  # still held: fail closed
    ((_, rcpts, raw, _),) = await queued(env, "notice")
    text, html = text_of(raw), text_of(raw, "html")
    assert "宛先の見出し・本文の冒頭・添付ファイルの一覧をこの通知に載せていません" in text
    assert "本文の冒頭" in html
    assert "本文の最初の行です" not in text
    # the envelope recipients are still listed, and the answers are there
    assert "a@client-one.example.com" in text
    assert "http://review.test/h/" in text
    # English
    monkeypatch.setattr(holds_service.HoldService, "_summary_of", runaway)
    await do_hold(env, mail_from="alice@city.example.lg.jp", sender="alice@city.example.lg.jp")
    en = [r for _, rc, r, _ in await queued(env, "notice") if rc == ["alice@city.example.lg.jp"]]
    assert en and "Reading this mail took too long" in text_of(en[0])
    assert rcpts


async def test_reply_past_budget_is_unclear_and_never_releases(
    env: Env, runaway: Runaway, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await do_hold(env)
    ((_, _, notice, _),) = await queued(env, "notice")
    import re

    m = re.search(r"leakguard-hold\+([a-z2-7]{32})@", str(parse(notice)["Reply-To"]))
    assert m
    stepproc.pool(budget.REPLY).hook = stepproc.HOOK_HANG
    res = await env.service.handle_reply(
        raw=b"From: tanaka@city.example.lg.jp\r\nSubject: Re: x\r\n\r\nrelease\r\n",
        mail_from="tanaka@city.example.lg.jp",
        rcpts=[f"leakguard-hold+{m.group(1)}@city.example.lg.jp"],
        auth_user=None,
    )
    assert res.startswith("250") and "refused" in res
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.HELD
    assert await queued(env, "mail") == []
    answers = [r for _, _, r, hid in await queued(env, "notice") if r != notice]
    assert answers and "内容を判断できませんでした" in text_of(answers[-1])


async def test_release_as_bcc_past_budget_is_refused_and_the_hold_stays(
    env: Env, runaway: Runaway, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await do_hold(
        env,
        verdict(offer_bcc=True),
        to=["a@client-one.example.com", "b@client-two.example.net"],
    )
    stepproc.pool(budget.BCC_RELEASE).hook = stepproc.HOOK_HANG
    out = await env.service.resolve(
        h.id,
        Decision.RELEASE_BCC,
        actor="tanaka@city.example.lg.jp",
        via=Via.WEB,
        identity="tanaka@city.example.lg.jp",
    )
    assert not out.ok and out.code == "bcc_rewrite_budget"
    assert "BCCで送信できませんでした" in out.message("ja")
    assert "could not be released as Bcc" in out.message("en")
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.HELD
    assert await queued(env, "mail") == []
    tl = await env.store.timeline(h.id)
    assert any("rewrite budget" in tr.note for tr in tl)


async def test_release_as_bcc_past_budget_keeps_the_link_usable(
    env: Env, runaway: Runaway, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await do_hold(env, verdict(offer_bcc=True), to=["a@client-one.example.com"])
    ((_, _, notice, _),) = await queued(env, "notice")
    import re

    signed = re.search(r"http://review\.test/h/([A-Za-z0-9_.\-]+)", text_of(notice))
    assert signed
    stepproc.pool(budget.BCC_RELEASE).hook = stepproc.HOOK_CRASH
    out = await env.service.act_on_link(signed.group(1), Decision.RELEASE_BCC)
    assert out.code == "bcc_rewrite_budget"
    stepproc.pool(budget.BCC_RELEASE).hook = ""
    out = await env.service.act_on_link(signed.group(1), Decision.DISCARD)
    assert out.ok and out.code == "discarded"
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.DISCARDED


async def test_dsn_past_budget_is_minimal(
    store: SqlStore, runaway: Runaway, monkeypatch: pytest.MonkeyPatch
) -> None:
    stepproc.pool(budget.DSN).hook = stepproc.HOOK_MEMORY  # the minimal DSN is built here
    t = MemoryTransport()
    t.refuse = {"bob@partner.example.co.jp": Reply(550, "5.1.1 no such user")}
    d = Delivery(
        store,
        t,
        DeliverySettings(retry_base=0.05, retry_max=0.1, poll_interval=0.05, hostname="relay.test"),
    )
    raw = (
        b"From: alice@city.example.lg.jp\r\nTo: bob@partner.example.co.jp\r\n"
        b"Subject: secret-subject\r\n\r\nbody\r\n"
    )
    out = await d.deliver_now(
        raw, "alice@city.example.lg.jp", ["bob@partner.example.co.jp", "c@city.example.lg.jp"]
    )
    assert out.reply.startswith("250")
    (rec,) = [q for q in await store.list_deliveries() if q.kind == "dsn"]
    dsn_raw = await store.get_message(rec.message_sha256)
    dsn = email.message_from_bytes(dsn_raw, policy=default_policy)
    assert dsn.get_content_type() == "multipart/report"
    body = dsn_raw.decode("utf-8", "replace")
    assert "secret-subject" not in body and "text/rfc822-headers" not in body
    text = dsn.get_body(preferencelist=("plain",))
    assert text is not None
    content = text.get_content()
    assert "bob@partner.example.co.jp" in content
    assert "読み取りに時間がかかりすぎた" in content and "reading them took too long" in content


async def test_admin_login_past_budget_is_refused(
    env: Env, runaway: Runaway, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from leakguard.relay.users import add_user

    users = tmp_path / "admins.txt"
    add_user(users, "admin", "correct horse battery")
    env.web.admin_users_file = str(users)
    monkeypatch.setattr(web_app, "verify_hash", runaway)
    async with _client(env) as c:
        page = await c.get("/admin/login?lang=en")
        import re

        m = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert m
        t0 = time.monotonic()
        r = await c.post(
            "/admin/login?lang=en",
            data={"user": "admin", "password": "correct horse battery", "csrf": m.group(1)},
        )
        assert time.monotonic() - t0 < SHORT + 2.0
        assert r.status_code == 403 and "Wrong user name or password" in r.text
        assert runaway.calls == 1


async def test_review_page_html_bomb_is_killed_and_frees_the_review_worker(env: Env) -> None:
    """End to end through the web page: an HTML bomb held for review runs past the review
    budget, the page shows the plain, truncated view with the ja/en note, and the worker is
    killed, so that the next review page (one worker, a backlog of one) is shown in full
    at once. A thread past its budget ran on and kept the pool full."""
    budget.configure(budget.REVIEW_PAGE, budget.Budget(workers=1, seconds=0.25, backlog=1))
    stepproc.configure(test_hooks=True)
    stepproc.start([budget.REVIEW_PAGE])
    import re

    from test_holds_support import message_of

    head = (
        b"From: tanaka@city.example.lg.jp\r\nTo: a@client-one.example.com\r\n"
        b"Subject: bomb\r\nMIME-Version: 1.0\r\n"
    )
    bomb = head + b"Content-Type: text/html\r\n\r\n" + b"<div>" * 800_000 + b"x"  # ~0.5 s
    await env.service.hold(
        raw=bomb,
        verdict=verdict(),
        message=message_of(
            bomb, mail_from="tanaka@city.example.lg.jp", rcpts=["a@client-one.example.com"]
        ),
        mail_from="tanaka@city.example.lg.jp",
        rcpts=["a@client-one.example.com"],
        auth_user=None,
    )
    await do_hold(env, body="ふつうの本文です\n")
    links = [
        re.search(r"http://review\.test(/h/[A-Za-z0-9_.\-]+)", text_of(n))
        for _, _, n, _ in await queued(env, "notice")
    ]
    assert len(links) == 2 and all(links)
    p = stepproc.pool(budget.REVIEW_PAGE)
    async with _client(env) as c:
        r = await c.get(links[0].group(1))  # type: ignore[union-attr]
        assert r.status_code == 200
        assert 'id="incomplete"' in r.text and "すべてを表示できませんでした" in r.text
        assert p.replaced == 1 and p.pending == 0
        # the same pool, with room for a loaded machine: a thread past its budget would
        # still hold the one worker (backlog 1), whatever the budget of the next call
        p.budget = budget.Budget(workers=1, seconds=10.0, backlog=1)
        r = await c.get(links[1].group(1) + "?lang=en")  # type: ignore[union-attr]
        assert r.status_code == 200
        assert 'id="incomplete"' not in r.text and "ふつうの本文です" in r.text
