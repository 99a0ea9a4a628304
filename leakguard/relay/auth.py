"""Who is sending: SMTP AUTH back-ends and the rule that a user sends only as themselves.

Password hashing (argon2) runs in a worker thread so the event loop never stalls on it.

Throttling (the trade, documented in docs/security.md): a hard lock only for one login from
one client address (``MAX_FAILURES``), reserved atomically before any await so concurrent
attempts cannot overrun it. Failures for a login from anywhere, and failures from one client
address for any login, only *slow attempts down* (``SOFT_*``), never lock out: an office
behind one NAT must not be locked out by one user's typos or by a stranger guessing other
users' passwords, and nobody can lock a user out from elsewhere. Password spraying from one
address is slowed to one attempt per ``SOFT_MAX_DELAY`` seconds per connection.
Credentials are never logged.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from leakguard import budget
from leakguard.relay.users import User, read_users, verify_hash

MAX_FAILURES = 8  # per (login, client address): then that pair is refused for a while
SOFT_AFTER = 4  # per login, from anywhere: failures beyond this slow every attempt down...
PEER_SOFT_AFTER = 10  # per client address, whatever the login: beyond this, slow down too
SOFT_MAX_DELAY = 8.0  # ...to at most this many seconds, but never lock the login out
LOCK_SECONDS = 300.0


class Authenticator(Protocol):
    async def authenticate(self, login: str, password: str) -> str | None:
        """The principal (normally the user's address) or None."""
        ...

    def senders_of(self, principal: str) -> tuple[str, ...]:
        """Extra sender addresses this principal may use (shared mailboxes)."""
        ...


class UsersFileAuthenticator:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._users: dict[str, User] = {}
        self._mtime: float | None = None

    def _load(self) -> dict[str, User]:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._users, self._mtime = {}, None
            return self._users
        if mtime != self._mtime:
            self._users, self._mtime = read_users(self.path), mtime
        return self._users

    async def authenticate(self, login: str, password: str) -> str | None:
        user = self._load().get(login)
        try:  # its own bounded pool (issue 12): past the budget, refused
            ok = await budget.run(budget.PASSWORD, verify_hash, user, password)
        except budget.BudgetExceeded:
            ok = False
        return user.name if ok and user is not None else None

    def senders_of(self, principal: str) -> tuple[str, ...]:
        u = self._load().get(principal)
        return u.senders if u is not None else ()


class UpstreamAuthenticator:
    """Pass-through: the credentials are good if the upstream smarthost accepts them."""

    def __init__(self, check: _LoginCheck, *, cache_seconds: float = 600.0) -> None:
        self._check = check
        self._cache_seconds = cache_seconds
        self._cache: dict[str, float] = {}  # sha256(login, password) -> expiry

    async def authenticate(self, login: str, password: str) -> str | None:
        key = hashlib.sha256(
            f"{login}\x00{password}".encode("utf-8", "surrogateescape")
        ).hexdigest()
        now = time.monotonic()
        if self._cache.get(key, 0.0) > now:
            return login
        if await self._check(login, password):
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[key] = now + self._cache_seconds
            return login
        return None

    def senders_of(self, principal: str) -> tuple[str, ...]:
        return ()


class _LoginCheck(Protocol):
    async def __call__(self, login: str, password: str) -> bool: ...


class Throttle:
    """Counts failures per key (login, client address); blocks after too many."""

    def __init__(
        self, max_failures: int = MAX_FAILURES, lock_seconds: float = LOCK_SECONDS
    ) -> None:
        self.max = max_failures
        self.lock = lock_seconds
        self._fails: dict[str, list[float]] = {}

    def count(self, key: str) -> int:
        """Failures recorded for ``key`` within the lock window."""
        now = time.monotonic()
        recent = [t for t in self._fails.get(key, []) if now - t < self.lock]
        if recent:
            self._fails[key] = recent
        else:
            self._fails.pop(key, None)
        return len(recent)

    def blocked(self, *keys: str, limit: int | None = None) -> bool:
        n = self.max if limit is None else limit
        return any(self.count(k) >= n for k in keys)

    def reserve(self, key: str, *, limit: int | None = None) -> bool:
        """Atomically check ``key`` and count one attempt for it (as a failure, until
        ``succeeded`` clears it). No await may separate the check from the count, so
        concurrent attempts cannot all pass a limit they are about to exceed."""
        n = self.max if limit is None else limit
        if self.count(key) >= n:
            return False
        self.failed(key)
        return True

    def delay(self, key: str, soft_after: int, unit: float, cap: float) -> float:
        """A growing wait for a key that keeps failing (never a lock)."""
        extra = self.count(key) - soft_after
        if extra < 0:
            return 0.0
        return min(cap, unit * 2.0 ** min(extra, 16))

    def failed(self, *keys: str) -> None:
        if len(self._fails) > 50000:
            self._fails.clear()
        now = time.monotonic()
        for k in keys:
            self._fails.setdefault(k, []).append(now)

    def succeeded(self, *keys: str) -> None:
        for k in keys:
            self._fails.pop(k, None)


def _matches(addr: str, pattern: str) -> bool:
    p = pattern.strip().lower()
    if p.startswith("*@"):
        return addr.rpartition("@")[2] == p[2:]
    return addr == p


def may_send_as(
    principal: str,
    address: str,
    *,
    allowed: Mapping[str, Iterable[str]] | None = None,
    extra: Iterable[str] = (),
) -> bool:
    """Whether the authenticated ``principal`` may use ``address`` as a sender.

    Their own address always; also addresses listed for them in the configuration
    (``auth.allowed_senders``) or in the users file (shared mailboxes; ``*@domain``).
    """
    addr = address.strip().lower()
    if not addr:
        return False
    if addr == principal.strip().lower():
        return True
    patterns = list(extra)
    if allowed:
        for who, pats in allowed.items():
            if who.strip().lower() == principal.strip().lower():
                patterns += list(pats)
    return any(_matches(addr, p) for p in patterns)
