"""A hold notice that could not be queued is queued later by the timers, once per person
(security review L7)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from test_holds_support import ORG, SECRET, Env, do_hold, make_env, queued, verdict

from leakguard.holds.model import HoldState, Via
from leakguard.holds.service import (
    NOTICE_FAILED,
    NOTICE_GAVE_UP,
    NOTICE_RESENT,
    Decision,
    HoldService,
)

SENDER = "tanaka@city.example.lg.jp"
SUPERVISOR = "sato@city.example.lg.jp"


class FlakyQueue:
    """Wraps ``store.enqueue_delivery`` and ``store.enqueue_once`` (the notices that go once
    per person): fails the calls whose numbers (counted over both) are in ``fail``."""

    def __init__(self, env: Env, fail: Sequence[int] | None = None, always: bool = False) -> None:
        self.real = env.store.enqueue_delivery
        self.real_once = env.store.enqueue_once
        self.fail = set(fail or ())
        self.always = always
        self.calls = 0
        env.store.enqueue_delivery = self  # type: ignore[method-assign]
        env.store.enqueue_once = self.once  # type: ignore[method-assign]

    def _count(self) -> None:
        self.calls += 1
        if self.always or self.calls in self.fail:
            raise OSError("disk full")

    async def __call__(self, *args: Any, **kw: Any) -> int:
        self._count()
        return await self.real(*args, **kw)

    async def once(self, *args: Any, **kw: Any) -> int | None:
        self._count()
        return await self.real_once(*args, **kw)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path)
    try:
        yield e
    finally:
        await e.store.close()


async def notices_to(env: Env, rcpt: str) -> list[bytes]:
    return [raw for _, rcpts, raw, _ in await queued(env, "notice") if rcpts == [rcpt]]


async def notes(env: Env, hold_id: str) -> list[str]:
    return [tr.note for tr in await env.store.timeline(hold_id)]


async def test_failed_notice_is_queued_by_the_next_tick_once(env: Env) -> None:
    FlakyQueue(env, fail=[1])
    h = await do_hold(env)  # the hold is stored; its notice is not
    assert (await env.store.get_hold(h.id)) is not None
    assert await notices_to(env, SENDER) == []
    assert NOTICE_FAILED in await notes(env, h.id)
    assert await env.service.tick() == 1
    (notice,) = await notices_to(env, SENDER)
    assert b"leakguard-hold+" in notice  # a real notice with its reply command address
    assert NOTICE_RESENT in await notes(env, h.id)
    env.clock.advance(minutes=5)
    assert await env.service.tick() == 0
    assert len(await notices_to(env, SENDER)) == 1


async def test_partial_failure_sends_each_missing_notice_once(env: Env) -> None:
    FlakyQueue(env, fail=[2])  # the approver's notice goes out, the sender's does not
    h = await do_hold(env, verdict(approval="supervisor"))
    assert len(await notices_to(env, SUPERVISOR)) == 1
    assert await notices_to(env, SENDER) == []
    await env.service.tick()
    assert len(await notices_to(env, SUPERVISOR)) == 1  # not asked twice
    assert len(await notices_to(env, SENDER)) == 1
    await env.service.tick()
    assert len(await notices_to(env, SENDER)) == 1
    assert (await env.store.get_hold(h.id)).state == HoldState.HELD  # type: ignore[union-attr]


async def test_retry_gives_up_after_repeated_failures(env: Env) -> None:
    flaky = FlakyQueue(env, always=True)
    h = await do_hold(env)
    for _ in range(8):
        await env.service.tick()
    assert flaky.calls == 1 + 5  # the first try and five retries, then no more
    assert NOTICE_GAVE_UP in await notes(env, h.id)
    assert (await env.store.get_hold(h.id)).state == HoldState.HELD  # type: ignore[union-attr]
    # a new process does not start over either
    svc = HoldService(
        env.store, env.config, env.web, secret=SECRET, organization=ORG, now=env.clock
    )
    await svc.tick()
    assert flaky.calls == 6


async def test_closed_holds_get_no_late_notice(env: Env) -> None:
    FlakyQueue(env, fail=[1])
    h = await do_hold(env)
    out = await env.service.resolve(
        h.id, Decision.DISCARD, actor="admin:x", via=Via.CLI, admin=True
    )
    assert out.ok
    told = await notices_to(env, SENDER)  # "discarded by an administrator"
    assert len(told) == 1
    await env.service.tick()
    assert await notices_to(env, SENDER) == told  # no late "held" notice
    assert NOTICE_RESENT not in await notes(env, h.id)


async def test_a_new_process_finds_holds_whose_notice_never_left(env: Env) -> None:
    # a crash right after the hold committed: no notice and no event about it
    async def crash(*_: Any, **__: Any) -> None:
        return None

    env.service._notify_new = crash  # type: ignore[method-assign]
    await do_hold(env)
    assert await notices_to(env, SENDER) == []
    svc = HoldService(
        env.store, env.config, env.web, secret=SECRET, organization=ORG, now=env.clock
    )
    assert await svc.tick() == 0  # too young: its notice may still be on its way
    env.clock.advance(minutes=2)
    svc2 = HoldService(
        env.store, env.config, env.web, secret=SECRET, organization=ORG, now=env.clock
    )
    assert await svc2.tick() == 1
    assert len(await notices_to(env, SENDER)) == 1
    await svc2.tick()
    assert len(await notices_to(env, SENDER)) == 1


async def test_a_hold_too_young_at_restart_gets_its_notice_once_it_comes_of_age(
    env: Env,
) -> None:
    # SIGKILL right after the hold committed, restart at once (the fault suite's case): the
    # first scan finds the hold too young; a later tick of the same process must find it
    async def crash(*_: Any, **__: Any) -> None:
        return None

    env.service._notify_new = crash  # type: ignore[method-assign]
    h = await do_hold(env)
    svc = HoldService(
        env.store, env.config, env.web, secret=SECRET, organization=ORG, now=env.clock
    )
    assert await svc.tick() == 0  # too young: its notice may still be on its way
    env.clock.advance(seconds=30)
    assert await svc.tick() == 0
    env.clock.advance(seconds=31)
    assert await svc.tick() == 1
    assert len(await notices_to(env, SENDER)) == 1
    assert NOTICE_RESENT in await notes(env, h.id)
    env.clock.advance(minutes=5)
    assert await svc.tick() == 0
    assert len(await notices_to(env, SENDER)) == 1


async def test_notice_grace_is_configurable(tmp_path: Path) -> None:
    e = await make_env(tmp_path, notice_grace="3s")
    try:

        async def crash(*_: Any, **__: Any) -> None:
            return None

        e.service._notify_new = crash  # type: ignore[method-assign]
        await do_hold(e)
        svc = HoldService(e.store, e.config, e.web, secret=SECRET, organization=ORG, now=e.clock)
        assert await svc.tick() == 0
        e.clock.advance(seconds=4)
        assert await svc.tick() == 1
    finally:
        await e.store.close()


async def test_scan_leaves_noticed_and_suppressed_holds_alone(env: Env) -> None:
    await do_hold(env)  # noticed normally
    await do_hold(env, extra_headers=[("Auto-Submitted", "auto-replied")])  # suppressed
    before = len(await queued(env, "notice"))
    env.clock.advance(minutes=10)
    svc = HoldService(
        env.store, env.config, env.web, secret=SECRET, organization=ORG, now=env.clock
    )
    assert await svc.tick() == 0
    assert len(await queued(env, "notice")) == before


async def test_background_notices_are_queued_after_hold_returns(env: Env) -> None:
    """``leakguard serve`` (issue 11): the relay's 250 waits for the hold's commit only;
    the first notice is queued right after, and drained on stop."""
    env.service.background_notices = True
    h = await do_hold(env)
    assert await queued(env, "notice") == []  # not before ``hold`` returned
    assert h.state is HoldState.HELD
    await env.service.drain_notices(10)
    notices = await queued(env, "notice")
    assert len(notices) == 1 and notices[0][3] == h.id
