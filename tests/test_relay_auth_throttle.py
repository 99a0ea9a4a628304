"""AUTH throttling: nobody can lock another user out by failing logins in their name."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from leakguard.metrics import Metrics
from leakguard.relay.auth import MAX_FAILURES, MAX_PEER_FAILURES, SOFT_MAX_DELAY, Throttle
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


async def test_pair_and_peer_are_hard_blocked() -> None:
    h = handler()
    for _ in range(MAX_FAILURES):
        assert await login(h, "198.51.100.7", "bad") is False
    assert "454" in str(await login(h, "198.51.100.7", "bad"))
    # one client trying many logins: blocked per client address
    h = handler()
    for i in range(MAX_PEER_FAILURES):
        assert await login(h, "198.51.100.8", "bad", user=f"u{i}@x.example") is False
    assert "454" in str(await login(h, "198.51.100.8", GOOD))
    assert await login(h, "198.51.100.9", GOOD) is True


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
