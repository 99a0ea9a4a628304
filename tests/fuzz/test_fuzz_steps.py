"""Mutated hostile mail through the engine and every later step that reads mail content
(issue 12): no exception, and every step within its budget.

Bounded for CI (fixed seed, ``LEAKGUARD_FUZZ_EXAMPLES`` cases, default 120); ``make fuzz``
runs many more. Steps: the decision (parse, extract, detect, decide), the Bcc rewrite, the
notice summary, the review page's message view, reply-command reading, the From check and
DSN building.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from strategies import hostile_mails

from leakguard.delivery.dsn import build_dsn
from leakguard.delivery.transport import Reply
from leakguard.engine import Engine
from leakguard.holds.codec import summarize
from leakguard.holds.commands import read_reply
from leakguard.message.rewrite import bcc_rewrite
from leakguard.policy.loader import default_policy_path
from leakguard.relay.actions import Relay, Transaction
from leakguard.web.render import message_view

EXAMPLES = int(os.environ.get("LEAKGUARD_FUZZ_EXAMPLES", "120"))
# Per step, wall time on a loaded 2-core machine (other jobs running: a few seconds happen).
# The relay runs each of these steps off the event loop; this bound catches super-linear
# behaviour (tens of seconds to minutes on a bomb), not a busy machine.
BUDGET = float(os.environ.get("LEAKGUARD_FUZZ_BUDGET", "10.0"))
RCPTS = ["info@company01.example", "yamada@city.example.lg.jp"]

_ENGINE: Engine | None = None


def engine() -> Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Engine.from_files(default_policy_path())
    return _ENGINE


def _timed(name: str, fn: Callable[[], Any], slow: list[tuple[str, float]]) -> Any:
    t0 = time.perf_counter()
    out = fn()
    took = time.perf_counter() - t0
    if took > BUDGET:
        slow.append((name, took))
    return out


def _author_check(raw: bytes) -> str | None:
    relay = SimpleNamespace(
        may_send_as=lambda user, addr: addr.lower() == user.lower(),
        language_of=lambda _who: "ja",
    )
    tx = Transaction(
        raw=raw,
        mail_from="yamada@city.example.lg.jp",
        rcpts=tuple(RCPTS),
        auth_user="yamada@city.example.lg.jp",
        authenticated=True,
        smtputf8=False,
        eightbit=True,
        peer="127.0.0.1",
        listener="fuzz",
    )
    return Relay.check_author(relay, tx)  # type: ignore[arg-type]


def run_steps(raw: bytes) -> list[tuple[str, float]]:
    """Every content step on one mail; returns the steps over budget. Raises on a crash."""
    slow: list[tuple[str, float]] = []
    eng = engine()
    org = eng.policy.organization
    decision = _timed(
        "decide",
        lambda: eng.decide(raw, envelope_from="yamada@city.example.lg.jp", rcpts=RCPTS),
        slow,
    )
    _timed("bcc_rewrite", lambda: bcc_rewrite(raw, org.is_internal), slow)
    _timed("summary", lambda: summarize(decision.message, RCPTS, org), slow)
    view = _timed("review_view", lambda: message_view(raw), slow)
    # what the page renders must be encodable (lone surrogates, utf-7, NUL)
    for text in (view.text, view.html, *(v for _k, v in view.headers)):
        text.encode("utf-8")
    _timed("reply", lambda: read_reply(raw), slow)
    _timed("author", lambda: _author_check(raw), slow)
    _timed(
        "dsn",
        lambda: build_dsn(
            original=raw,
            sender="yamada@city.example.lg.jp",
            failed={"info@company01.example": Reply(550, "5.1.1 no such user")},
            reporting_host="relay.test",
        ),
        slow,
    )
    return slow


@pytest.mark.slow
@pytest.mark.timeout(max(120, EXAMPLES))  # about a second a case on a busy machine
@seed(20261129)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(hostile_mails())
def test_hostile_mail_through_every_step(raw: bytes) -> None:
    try:
        slow = run_steps(raw)
    except BaseException:
        _save(raw)
        raise
    if slow:
        _save(raw)
    assert not slow, f"over budget: {slow}"


def _save(raw: bytes) -> None:
    """With LEAKGUARD_FUZZ_SAVE=DIR, keep every failing mail there to reproduce it."""
    where = os.environ.get("LEAKGUARD_FUZZ_SAVE")
    if where:
        import hashlib

        Path(where).mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(raw).hexdigest()[:16] + ".eml"
        (Path(where) / name).write_bytes(raw)


def test_corpus_examples_through_every_step() -> None:
    """The shipped examples as a smoke test of the harness itself (every step must run)."""
    examples = sorted(Path(__file__).resolve().parents[2].joinpath("examples").glob("*.eml"))
    assert examples
    for path in examples:
        assert not run_steps(path.read_bytes()), path.name


_HEAD = b"From: a@city.example.lg.jp\r\nTo: x@company01.example\r\nSubject: s\r\n"
KNOWN_BOMBS = {
    # the attacks of issue 12's measured run, one of each class
    "folded-250k-header-lines": (
        b"From: a@city.example.lg.jp\r\nTo: x@company01.example,\r\n"
        + b"\ty@company02.example,\r\n" * 250_000
        + b"\tz@c.example\r\nSubject: s\r\n\r\nhi\r\n"
    ),
    "8000-quote-levels": _HEAD
    + b"\r\n"
    + b"".join(b">" * i + b" On Mon, X <x%d@y.example> wrote:\r\n" % i for i in range(8000)),
    "2mb-quote-bomb": _HEAD
    + b"\r\n"
    + b"> On Mon, X <x@y.example> wrote:\r\n> From: a@b.example\r\n" * 30_000,
    "html-200k-nested": _HEAD + b"Content-Type: text/html\r\n\r\n" + b"<div>" * 200_000 + b"x",
    "html-utf7": _HEAD
    + b"Content-Type: text/html; charset=utf-7\r\n\r\n<p>+2EE- hello +ZeVnLIqe-</p>",
    "surrogates-from-broken-base64": _HEAD
    + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + b"7aCA7aCA\r\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(KNOWN_BOMBS))
def test_known_bombs_stay_within_budget(name: str) -> None:
    slow = run_steps(KNOWN_BOMBS[name])
    assert not slow, f"{name}: over budget: {slow}"
