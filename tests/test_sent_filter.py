"""The filter sibling workers share for mail sent on recently (relay/sent_filter.py)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from leakguard.relay import sent_filter as sf
from leakguard.relay.sent_filter import SentFilter

KEY = ("a" * 64, "alice@city.example.lg.jp", "bob@partner.example")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(sf.time, "time", c)
    return c


def test_added_keys_are_maybe_and_others_are_not(tmp_path: Path, clock: Clock) -> None:
    f = SentFilter(600, tmp_path / "lock", slots=1 << 16)
    assert not f.maybe(KEY)
    f.add(KEY)
    assert f.maybe(KEY)
    others = [(f"{i:064x}", "alice@city.example.lg.jp", "bob@partner.example") for i in range(500)]
    assert sum(f.maybe(k) for k in others) <= 1  # false positives are rare


def test_a_key_lives_one_window_at_least_then_goes(tmp_path: Path, clock: Clock) -> None:
    f = SentFilter(600, tmp_path / "lock", slots=1 << 16)
    clock.now = 600 * 2000 + 599.9  # the very end of a generation
    f.add(KEY)
    clock.now += 600.0  # a whole window later: still known
    assert f.maybe(KEY)
    clock.now += 0.2  # beyond: forgotten (the journal's window is the same)
    assert not f.maybe(KEY)
    clock.now += 600 * 5  # slots are reused and cleared
    f.add(("b" * 64, "x@example", "y@example"))
    assert not f.maybe(KEY)


def test_workers_see_each_others_keys_across_fork(tmp_path: Path) -> None:
    f = SentFilter(600, tmp_path / "lock", slots=1 << 16)  # made before the fork
    pid = os.fork()
    if pid == 0:  # a worker
        code = 1
        try:
            f.add(KEY)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert f.maybe(KEY)  # the sibling's add is visible here


def test_when_a_generation_cannot_be_cleared_everything_is_maybe(
    tmp_path: Path, clock: Clock
) -> None:
    lock = tmp_path / "lock"
    f = SentFilter(600, lock, slots=1 << 16)
    held = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)  # another worker, stuck holding it
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        f.add(KEY)  # cannot prepare the generation: not added...
        assert f.maybe(("c" * 64, "x@example", "y@example"))  # ...so nothing is ruled out
    finally:
        os.close(held)
    clock.now += 600 * 3  # two windows later the failure no longer matters
    f.add(KEY)
    assert not f.maybe(("c" * 64, "x@example", "y@example"))
