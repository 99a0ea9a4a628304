"""Delays, expiry, escalation and the two-person check, including a restart mid-delay."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_holds_support import (
    ORG,
    SECRET,
    Env,
    do_hold,
    make_env,
    message_of,
    parse,
    queued,
    raw_mail,
    text_of,
    verdict,
)

from leakguard.holds.model import HoldRecord, HoldState, Via
from leakguard.holds.service import ADMIN_ONLY, Decision, HoldService
from leakguard.store import open_store, sqlite_url
from leakguard.types import Action

SENDER = "tanaka@city.example.lg.jp"
SUPERVISOR = "sato@city.example.lg.jp"
DEPUTY = "deputy@city.example.lg.jp"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path, deputy=DEPUTY, escalate_after="1h")
    try:
        yield e
    finally:
        await e.store.close()


def token_of(raw: bytes) -> str:
    m = re.search(r"\+([a-z2-7]{32})@", str(parse(raw)["Reply-To"]))
    assert m
    return m.group(1)


async def notices_to(env: Env, rcpt: str) -> list[bytes]:
    return [raw for _, rcpts, raw, _ in await queued(env, "notice") if rcpts == [rcpt]]


async def reply(
    env: Env, token: str, body: str, mail_from: str, auth_user: str | None = None
) -> str:
    return await env.service.handle_reply(
        raw=f"Subject: Re\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n".encode(),
        mail_from=mail_from,
        rcpts=[f"leakguard-hold+{token}@city.example.lg.jp"],
        auth_user=auth_user,
    )


async def state(env: Env, hold_id: str) -> HoldState:
    h = await env.store.get_hold(hold_id)
    assert h is not None
    return h.state


async def test_expiry_discards_and_tells_the_sender(env: Env) -> None:
    h = await do_hold(env)
    env.clock.advance(hours=71)
    assert await env.service.tick() == 0
    assert await state(env, h.id) == HoldState.HELD
    env.clock.advance(hours=2)
    assert await env.service.tick() == 1
    assert await state(env, h.id) == HoldState.EXPIRED
    assert await queued(env, "mail") == []
    told = await notices_to(env, SENDER)
    assert len(told) == 2 and "期限切れ" in str(parse(told[-1])["Subject"])
    assert "破棄されました" in text_of(told[-1])
    tl = await env.store.timeline(h.id)
    assert tl[-1].to_state is None or tl[-1].via == Via.RELAY  # the notice event is last
    assert any(tr.to_state == HoldState.EXPIRED and tr.via == Via.TIMER for tr in tl)
    assert await env.service.tick() == 0  # nothing due any more


async def test_delay_leaves_by_itself_and_cancel_stops_it(env: Env) -> None:
    h1 = await do_hold(env, verdict(action=Action.DELAY, delay_seconds=300))
    h2 = await do_hold(env, verdict(action=Action.DELAY, delay_seconds=300), subject="second")
    token2 = token_of((await notices_to(env, SENDER))[-1])
    assert "refused" not in await reply(env, token2, "キャンセル", SENDER)
    assert await state(env, h2.id) == HoldState.DISCARDED
    env.clock.advance(minutes=4)
    await env.service.tick()
    assert await state(env, h1.id) == HoldState.DELAYED
    env.clock.advance(minutes=2)
    await env.service.tick()
    assert await state(env, h1.id) == HoldState.RELEASED
    mails = await queued(env, "mail")
    assert len(mails) == 1 and mails[0][3] == h1.id
    # the auto-release is what the sender was told would happen: no extra mail about it
    assert all(
        "送信しました" not in str(parse(r)["Subject"]) for r in await notices_to(env, SENDER)
    )


async def test_delay_send_now(env: Env) -> None:
    h = await do_hold(env, verdict(action=Action.DELAY))  # default delay 5m
    assert h.due_at is not None and (h.due_at - h.created_at).total_seconds() == 300
    token = token_of((await notices_to(env, SENDER))[-1])
    await reply(env, token, "送信", SENDER)
    assert await state(env, h.id) == HoldState.RELEASED
    assert len(await queued(env, "mail")) == 1


async def test_restart_in_the_middle_of_a_delay(tmp_path: Path) -> None:
    env = await make_env(tmp_path)
    h = await do_hold(env, verdict(action=Action.DELAY, delay_seconds=600))
    env.clock.advance(minutes=3)
    await env.service.tick()
    await env.store.close()  # "crash": everything in memory is gone
    store = await open_store(sqlite_url(tmp_path / "lg.db"))
    try:
        svc = HoldService(store, env.config, env.web, secret=SECRET, now=env.clock)
        env.clock.advance(minutes=8)
        # the timer loop of the new process picks the hold up from the store
        task = asyncio.create_task(svc.run_timers(interval=0.05))
        for _ in range(100):
            got = await store.get_hold(h.id)
            if got is not None and got.state == HoldState.RELEASED:
                break
            await asyncio.sleep(0.02)
        svc.stop_timers()
        await asyncio.wait_for(task, 2)
        got = await store.get_hold(h.id)
        assert got is not None and got.state == HoldState.RELEASED
        deliveries = [d for d in await store.list_deliveries() if d.kind == "mail"]
        assert len(deliveries) == 1 and deliveries[0].hold_id == h.id
    finally:
        await store.close()


async def test_two_person_check_wrong_people_and_the_approver(env: Env) -> None:
    h = await do_hold(env, verdict(approval="supervisor"))
    assert h.approvers == (SUPERVISOR,)
    approver_notice = (await notices_to(env, SUPERVISOR))[0]
    sender_notice = (await notices_to(env, SENDER))[0]
    # the supervisor's notice is in English (directory), names the sender
    assert "Approval needed" in str(parse(approver_notice)["Subject"])
    assert "田中 太郎" in text_of(approver_notice)
    # the sender is told who has it
    assert SUPERVISOR in text_of(sender_notice) and "承認待ち" in text_of(sender_notice)
    a_token = token_of(approver_notice)
    s_token = token_of(sender_notice)
    # a colleague replying with the approver's token: refused, nothing changes
    assert "refused" in await reply(env, a_token, "release", "suzuki@city.example.lg.jp")
    # the sender may not release their own held mail
    assert "refused" in await reply(env, s_token, "release", SENDER)
    assert await state(env, h.id) == HoldState.HELD
    assert await queued(env, "mail") == []
    refusal = (await notices_to(env, SENDER))[-1]
    assert "承認者" in text_of(refusal)
    # the approver releases
    assert "accepted" in await reply(env, a_token, "release", SUPERVISOR)
    assert await state(env, h.id) == HoldState.RELEASED
    assert len(await queued(env, "mail")) == 1
    told = (await notices_to(env, SENDER))[-1]
    assert "送信しました" in str(parse(told)["Subject"]) and SUPERVISOR in text_of(told)


async def test_sender_may_withdraw_under_approval(env: Env) -> None:
    h = await do_hold(env, verdict(approval="supervisor"))
    s_token = token_of((await notices_to(env, SENDER))[0])
    assert "accepted" in await reply(env, s_token, "取り下げ", SENDER)
    assert await state(env, h.id) == HoldState.DISCARDED
    told = (await notices_to(env, SUPERVISOR))[-1]
    assert "Discarded" in str(parse(told)["Subject"])


async def test_escalation_to_deputy(env: Env) -> None:
    h = await do_hold(env, verdict(approval="supervisor"))
    assert h.escalate_at is not None
    env.clock.advance(minutes=59)
    await env.service.tick()
    assert await notices_to(env, DEPUTY) == []
    env.clock.advance(minutes=2)
    assert await env.service.tick() == 1
    got = await env.store.get_hold(h.id)
    assert got is not None and got.escalated and got.approvers == (SUPERVISOR, DEPUTY)
    (deputy_notice,) = await notices_to(env, DEPUTY)
    assert "1時間" in text_of(deputy_notice)
    told = (await notices_to(env, SENDER))[-1]
    assert DEPUTY in text_of(told) and "承認者を追加" in str(parse(told)["Subject"])
    await env.service.tick()
    assert len(await notices_to(env, DEPUTY)) == 1  # escalated once
    assert "accepted" in await reply(env, token_of(deputy_notice), "release", DEPUTY)
    assert await state(env, h.id) == HoldState.RELEASED
    assert any(tr.note == f"escalated to {DEPUTY}" for tr in await env.store.timeline(h.id))


async def test_group_approval(env: Env) -> None:
    h = await do_hold(env, verdict(approval="group:security"))
    assert h.approvers == ("sec1@city.example.lg.jp", "sec2@city.example.lg.jp")
    n1 = (await notices_to(env, "sec1@city.example.lg.jp"))[0]
    n2 = (await notices_to(env, "sec2@city.example.lg.jp"))[0]
    assert "accepted" in await reply(env, token_of(n2), "破棄", "sec2@city.example.lg.jp")
    assert "refused" in await reply(env, token_of(n1), "release", "sec1@city.example.lg.jp")
    assert await state(env, h.id) == HoldState.DISCARDED
    assert await queued(env, "mail") == []


async def test_unresolvable_approval_leaves_it_to_administrators(tmp_path: Path) -> None:
    env = await make_env(tmp_path)  # no deputy
    try:
        h = await do_hold(env, verdict(approval="group:nobody"))
        assert h.approvers == (ADMIN_ONLY,)
        sender_notice = (await notices_to(env, SENDER))[0]
        assert "承認者が見つかりません" in text_of(sender_notice)
        out = await env.service.resolve(
            h.id, Decision.RELEASE, actor=SENDER, via=Via.WEB, identity=SENDER
        )
        assert not out.ok and out.code == "needs_approval"
        out = await env.service.resolve(
            h.id, Decision.RELEASE, actor="admin:root", via=Via.CLI, admin=True
        )
        assert out.ok
    finally:
        await env.store.close()


async def test_supervisor_is_never_the_sender(env: Env) -> None:
    h = await do_hold(env, verdict(approval=SENDER))
    assert h.approvers == (DEPUTY,)


# ----------------------------------------------------------------- the sender never approves


async def _hold_as(
    env: Env, *, mail_from: str, auth_user: str | None, approval: str = "supervisor"
) -> HoldRecord:
    raw = raw_mail(sender=mail_from)
    rcpts = ["a@client-one.example.com"]
    return await env.service.hold(
        raw=raw,
        verdict=verdict(approval=approval),
        message=message_of(raw, mail_from=mail_from, rcpts=rcpts),
        mail_from=mail_from,
        rcpts=rcpts,
        auth_user=auth_user,
    )


async def test_deputy_who_is_the_sender_is_never_escalated_to(tmp_path: Path) -> None:
    env = await make_env(tmp_path, deputy=SENDER, escalate_after="1h")
    try:
        h = await do_hold(env, verdict(approval="supervisor"))
        assert h.approvers == (SUPERVISOR,) and h.escalate_at is None
        out = await env.service.resolve(
            h.id, Decision.RELEASE, actor=SENDER, via=Via.REPLY, identity=SENDER
        )
        assert out.code == "needs_approval"
        env.clock.advance(hours=2)
        await env.service.tick()
        got = await env.store.get_hold(h.id)
        assert got is not None and got.approvers == (SUPERVISOR,)
        out = await env.service.resolve(
            h.id, Decision.RELEASE, actor=SENDER, via=Via.REPLY, identity=SENDER
        )
        assert not out.ok and out.code == "needs_approval"
        assert await state(env, h.id) == HoldState.HELD
        assert await queued(env, "mail") == []
        # the real approver still can
        out = await env.service.resolve(
            h.id, Decision.RELEASE, actor=SUPERVISOR, via=Via.REPLY, identity=SUPERVISOR
        )
        assert out.ok
    finally:
        await env.store.close()


async def test_escalation_due_when_deputy_became_the_sender_is_skipped(env: Env) -> None:
    h = await do_hold(env, verdict(approval="supervisor"))
    assert h.escalate_at is not None  # made while the deputy was someone else
    env.config.deputy = SENDER  # configuration changed before the escalation came due
    env.clock.advance(hours=2)
    assert await env.service.tick() == 1
    got = await env.store.get_hold(h.id)
    assert got is not None and got.escalated and got.approvers == (SUPERVISOR,)
    assert await notices_to(env, DEPUTY) == []
    assert len(await notices_to(env, SENDER)) == 1  # only the first notice, no "escalated"
    assert any("escalation skipped" in tr.note for tr in await env.store.timeline(h.id))
    out = await env.service.resolve(
        h.id, Decision.RELEASE, actor=SENDER, via=Via.REPLY, identity=SENDER
    )
    assert out.code == "needs_approval"
    assert await env.service.tick() == 0  # not due again


async def test_role_of_never_makes_the_sender_an_approver(env: Env) -> None:
    h = await do_hold(env, verdict(approval="supervisor"))
    # a record whose approvers include the sender and the AUTH user (e.g. made before the fix)
    bad = dataclasses.replace(
        h, approvers=(SUPERVISOR, SENDER, "Login-Name"), auth_user="login-name"
    )
    assert HoldService.role_of(bad, SENDER) == "sender"
    assert HoldService.role_of(bad, SENDER.upper()) == "sender"
    assert HoldService.role_of(bad, " login-name ") == "sender"
    assert HoldService.role_of(bad, SUPERVISOR) == "approver"
    assert HoldService.role_of(bad, "suzuki@city.example.lg.jp") == ""
    assert HoldService.role_of(bad, "") == "" and HoldService.role_of(bad, None) == ""


async def test_auth_user_is_never_an_approver_of_what_they_sent(env: Env) -> None:
    # the supervisor submits mail from the sender's (shared) mailbox with their own login
    h = await _hold_as(env, mail_from=SENDER, auth_user=SUPERVISOR)
    assert SUPERVISOR not in h.approvers and h.approvers == (DEPUTY,)
    assert h.escalate_at is None  # the deputy already approves
    out = await env.service.resolve(
        h.id, Decision.RELEASE, actor=SUPERVISOR, via=Via.REPLY, identity=SUPERVISOR
    )
    assert not out.ok and out.code == "needs_approval"
    # nobody asked the supervisor to approve their own mail; the deputy was asked
    assert await notices_to(env, SUPERVISOR) == []
    (deputy_notice,) = await notices_to(env, DEPUTY)
    assert "【承認依頼】" in str(parse(deputy_notice)["Subject"])
    out = await env.service.resolve(
        h.id, Decision.RELEASE, actor=DEPUTY, via=Via.REPLY, identity=DEPUTY
    )
    assert out.ok


async def test_auth_user_who_is_also_the_deputy_leaves_it_to_administrators(
    tmp_path: Path,
) -> None:
    env = await make_env(tmp_path, deputy=SUPERVISOR, escalate_after="1h")
    try:
        h = await _hold_as(env, mail_from=SENDER, auth_user=SUPERVISOR)
        assert h.approvers == (ADMIN_ONLY,) and h.escalate_at is None
        for who in (SENDER, SUPERVISOR):
            out = await env.service.resolve(
                h.id, Decision.RELEASE, actor=who, via=Via.WEB, identity=who
            )
            assert out.code == "needs_approval"
        out = await env.service.resolve(
            h.id, Decision.RELEASE, actor="admin:root", via=Via.CLI, admin=True
        )
        assert out.ok
    finally:
        await env.store.close()


async def test_two_nodes_timers_escalate_expire_and_release_once(env: Env) -> None:
    """Two relays (here two HoldService objects) tick over one store at the same moment:
    every escalation notice, outcome notice and released delivery is queued once
    (issue 11: timers fire once across workers and nodes)."""
    other = HoldService(
        env.store, env.config, env.web, secret=SECRET, organization=ORG, now=env.clock
    )
    esc = await do_hold(env, verdict(approval="supervisor"))
    exp = await do_hold(env, subject="expires")
    delayed = await do_hold(env, verdict(action=Action.DELAY), subject="later")
    before = {rcpt: len(await notices_to(env, rcpt)) for rcpt in (SENDER, DEPUTY)}
    env.clock.advance(minutes=61)  # past the escalation
    await asyncio.gather(env.service.tick(), other.tick(), env.service.tick(), other.tick())
    await asyncio.gather(env.service.tick(), other.tick())
    assert len(await notices_to(env, DEPUTY)) == before[DEPUTY] + 1
    notes = [tr.note for tr in await env.store.timeline(esc.id)]
    assert notes.count(f"escalated to {DEPUTY}") == 1
    assert sum(n.startswith("info escalated sent to") for n in notes) == 1
    env.clock.advance(hours=80)  # past expiry and the delay
    await asyncio.gather(env.service.tick(), other.tick(), env.service.tick(), other.tick())
    assert await state(env, exp.id) == HoldState.EXPIRED
    exp_notes = [tr.note for tr in await env.store.timeline(exp.id)]
    assert sum(n.startswith("info expired sent to") for n in exp_notes) == 1
    assert await state(env, delayed.id) == HoldState.RELEASED
    mails = [q for q in await queued(env, "mail") if q[3] == delayed.id]
    assert len(mails) == 1


async def test_two_workers_fire_each_timer_once(tmp_path: Path) -> None:
    """``serve --workers N``, or several relays: two HoldServices, each with its own store
    connection to one database, tick at the same instant. Each escalation, expiry and delay
    happens once, and each notice is queued once."""
    a = await make_env(tmp_path, deputy=DEPUTY, escalate_after="1h")
    store_b = await open_store(sqlite_url(tmp_path / "lg.db"))
    b = dataclasses.replace(
        a,
        store=store_b,
        service=HoldService(
            store_b,
            a.config,
            a.web,
            secret=SECRET,
            organization=a.service._org,
            now=a.clock,
        ),
    )
    try:
        esc = await do_hold(a, verdict(approval="supervisor"))
        exp = await do_hold(a, subject="expires")
        a.clock.advance(minutes=61)
        for _ in range(5):  # several rounds of simultaneous ticks
            await asyncio.gather(a.service.tick(), b.service.tick())
        assert len(await notices_to(a, DEPUTY)) == 1  # one approval notice to the deputy
        notes = [tr.note for tr in await a.store.timeline(esc.id)]
        assert notes.count(f"escalated to {DEPUTY}") == 1
        a.clock.advance(hours=72)
        before = len(await notices_to(a, SENDER))
        for _ in range(5):
            await asyncio.gather(a.service.tick(), b.service.tick())
        assert await state(a, exp.id) == HoldState.EXPIRED
        expired = [tr for tr in await a.store.timeline(exp.id) if tr.to_state == HoldState.EXPIRED]
        assert len(expired) == 1
        # expiry of both holds told the sender once each (and nothing else was sent)
        assert len(await notices_to(a, SENDER)) == before + 2
    finally:
        await store_b.close()
        await a.store.close()
