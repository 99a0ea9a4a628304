"""AUTH throttling: nobody can lock another user out by failing logins in their name."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from leakguard.metrics import Metrics
from leakguard.relay.auth import MAX_FAILURES, PEER_SOFT_AFTER, SOFT_MAX_DELAY, Throttle
from leakguard.relay.server import ListenerRuntime, RelayHandler

USER = "alice@city.example.lg.jp"
GOOD = "right"


class Users:
    async def authenticate(self, login: str, password: str) -> str | None:
        return login if (login, password) == (USER, GOOD) else None

    def senders_of(self, principal: str) -> tuple[str, ...]:
        return ()


class Log:
    def info(self, *_a: Any, **_k: Any) -> None: ...


def handler() -> RelayHandler:
    h = RelayHandler(
        None,  # type: ignore[arg-type]  # AUTH does not touch the relay
        ListenerRuntime(name="sub", kind="submission", trusted_networks=[]),
        authenticator=Users(),
        throttle=Throttle(),
        metrics=Metrics(),
        max_recipients=10,
        log=Log(),
    )
    h.fail_delay = 0.0
    h.soft_delay_unit = 0.0  # the delay itself is checked through login_delay()
    return h


def server(ip: str) -> Any:
    return SimpleNamespace(session=SimpleNamespace(peer=(ip, 40000)))


async def login(h: RelayHandler, ip: str, password: str, user: str = USER) -> bool | str:
    res = await h._check(server(ip), "PLAIN", user.encode(), password.encode())
    if res.success:
        return True
    return res.message or False


async def test_attacker_cannot_lock_out_the_user_from_elsewhere() -> None:
    h = handler()
    for _ in range(MAX_FAILURES * 3):
        await login(h, "203.0.113.9", "guess")
    # the attacker's own address is blocked for this login, even with the right password
    assert "454" in str(await login(h, "203.0.113.9", GOOD))
    # the user, from their own address, still gets in
    assert await login(h, "10.0.0.5", GOOD) is True


async def test_pair_is_hard_blocked() -> None:
    h = handler()
    for _ in range(MAX_FAILURES):
        assert await login(h, "198.51.100.7", "bad") is False
    assert "454" in str(await login(h, "198.51.100.7", "bad"))


async def test_an_office_behind_one_address_is_not_locked_out() -> None:
    # 32 failures for different users from one address (one office behind one NAT) must not
    # block the other users there: the address is only slowed down.
    h = handler()
    for i in range(32):
        assert await login(h, "198.51.100.8", "bad", user=f"u{i}@x.example") is False
    assert await login(h, "198.51.100.8", GOOD) is True
    h.soft_delay_unit = 0.5
    assert h.login_delay("u:nobody", "p:198.51.100.8") == SOFT_MAX_DELAY  # spraying is slowed
    assert h.login_delay("u:nobody", "p:198.51.100.99") == 0.0
    assert PEER_SOFT_AFTER < 32


class SlowUsers(Users):
    """Every check takes a while, so concurrent attempts overlap (as argon2 would)."""

    def __init__(self) -> None:
        self.checked = 0

    async def authenticate(self, login: str, password: str) -> str | None:
        self.checked += 1
        await asyncio.sleep(0.01)
        return await super().authenticate(login, password)


async def test_concurrent_attempts_cannot_overrun_the_limit() -> None:
    for n in (20, 80):
        h = handler()
        users = SlowUsers()
        h.authenticator = users
        results = await asyncio.gather(*(login(h, "203.0.113.50", "bad") for _ in range(n)))
        assert users.checked == MAX_FAILURES, (n, users.checked)
        assert sum("454" in str(r) for r in results) == n - MAX_FAILURES


async def test_per_login_failures_from_anywhere_only_slow_down() -> None:
    h = handler()
    assert h.login_delay(f"u:{USER}") == 0.0
    for i in range(40):  # a distributed guess: a new address each time
        assert await login(h, f"192.0.2.{i}", "bad") is False
    h.soft_delay_unit = 0.5
    delay = h.login_delay(f"u:{USER}")
    assert delay == SOFT_MAX_DELAY
    h.soft_delay_unit = 0.0
    assert await login(h, "192.0.2.201", GOOD) is True  # slowed, never locked out
    assert h.login_delay(f"u:{USER}") == 0.0  # a success clears the slow-down
