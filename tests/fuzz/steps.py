"""The content steps a hostile mail goes through, as plain functions (issue 12).

Shared by the hypothesis suite (``tests/fuzz/test_fuzz_steps.py``) and the mass run
(``bench/fuzz_mass.py``, which puts this directory on ``sys.path``). Each step is what the
relay runs off the event loop for that mail; ``FALLBACKS`` is what the relay does instead
when the step runs past its budget (``leakguard.budget``), so a run can check that every
step over budget also fails closed quickly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from leakguard.delivery.dsn import build_dsn
from leakguard.delivery.transport import Reply
from leakguard.engine import Engine
from leakguard.holds.codec import envelope_summary, summarize
from leakguard.holds.commands import read_reply
from leakguard.message.rewrite import bcc_rewrite
from leakguard.policy.loader import default_policy_path
from leakguard.relay.actions import Relay, Transaction
from leakguard.web.render import fallback_view, message_view

SENDER = "yamada@city.example.lg.jp"
RCPTS = ["info@company01.example", "yamada@city.example.lg.jp"]
FAILED = {"info@company01.example": Reply(550, "5.1.1 no such user")}

_ENGINE: Engine | None = None


def engine() -> Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Engine.from_files(default_policy_path())
    return _ENGINE


def author_check(raw: bytes) -> str | None:
    relay = SimpleNamespace(
        may_send_as=lambda user, addr: addr.lower() == user.lower(),
        language_of=lambda _who: "ja",
    )
    tx = Transaction(
        raw=raw,
        mail_from=SENDER,
        rcpts=tuple(RCPTS),
        auth_user=SENDER,
        authenticated=True,
        smtputf8=False,
        eightbit=True,
        peer="127.0.0.1",
        listener="fuzz",
    )
    return Relay.check_author(relay, tx)  # type: ignore[arg-type]


def _review_view(raw: bytes) -> Any:
    view = message_view(raw)
    # what the page renders must be encodable (lone surrogates, utf-7, NUL)
    for text in (view.text, view.html, *(v for _k, v in view.headers)):
        text.encode("utf-8")
    return view


def _dsn(raw: bytes, *, with_original: bool = True) -> bytes:
    return build_dsn(
        original=raw,
        sender=SENDER,
        failed=FAILED,
        reporting_host="relay.test",
        with_original=with_original,
    )


class StepError(Exception):
    """A step raised: ``step`` names it; the cause is chained."""

    def __init__(self, step: str, exc: BaseException) -> None:
        super().__init__(f"{step}: {exc!r}"[:500])
        self.step = step


# (name, function of (raw, state)); ``state`` carries the decision to the summary step
STEPS: tuple[str, ...] = (
    "decide",
    "bcc_rewrite",
    "summary",
    "review_view",
    "reply",
    "author",
    "dsn",
)


def _step_fn(name: str, raw: bytes, state: dict[str, Any]) -> Callable[[], Any]:
    eng = engine()
    org = eng.policy.organization
    if name == "decide":
        return lambda: eng.decide(raw, envelope_from=SENDER, rcpts=RCPTS)
    if name == "bcc_rewrite":
        return lambda: bcc_rewrite(raw, org.is_internal)
    if name == "summary":
        return lambda: summarize(state["decide"].message, RCPTS, org)
    if name == "review_view":
        return lambda: _review_view(raw)
    if name == "reply":
        return lambda: read_reply(raw)
    if name == "author":
        return lambda: author_check(raw)
    if name == "dsn":
        return lambda: _dsn(raw)
    raise KeyError(name)


# What the relay does instead when a step is past its budget (``None``: the step is not
# run in a budget pool: the decision has ``decide_timeout`` and answers 451; the Bcc
# rewrite refuses (550 on the relay, the hold stays on release), the From check runs in the
# decision's pool before it). Each fallback must be cheap on any input.
FALLBACKS: dict[str, Callable[[bytes], Any] | None] = {
    "decide": None,
    "bcc_rewrite": None,
    "summary": lambda raw: envelope_summary(RCPTS, engine().policy.organization),
    "review_view": fallback_view,
    "reply": lambda raw: None,  # read as Unclear.BUDGET: the person is asked back
    "author": None,
    "dsn": lambda raw: _dsn(raw, with_original=False),
}


def run_steps_timed(raw: bytes, on_step: Callable[[str], None] | None = None) -> dict[str, float]:
    """Every content step on one mail, in the relay's order: seconds per step. Raises
    ``StepError`` naming the step that raised. ``on_step(name)`` is called before each, and
    ``on_step("")`` after the last (the mail's objects are freed when this returns)."""
    times: dict[str, float] = {}
    state: dict[str, Any] = {}
    for name in STEPS:
        if on_step is not None:
            on_step(name)
        fn = _step_fn(name, raw, state)
        t0 = time.perf_counter()
        try:
            state[name] = fn()
        except Exception as exc:
            raise StepError(name, exc) from exc
        times[name] = time.perf_counter() - t0
    if on_step is not None:
        on_step("")  # the steps are done; what follows is freeing the mail's objects
    return times


def run_steps(raw: bytes, budget: float) -> list[tuple[str, float]]:
    """Every content step on one mail; returns the steps over ``budget`` seconds."""
    return [(k, v) for k, v in run_steps_timed(raw).items() if v > budget]


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
    # found by bench/fuzz_mass.py: unclosed <script> made the flat HTML rendering quadratic
    "html-10k-unclosed-script": _HEAD
    + b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>"
    + b"<scr<script>ipt>x</p" * 10_000,
    "html-300k-bare-lt": _HEAD + b"Content-Type: text/html\r\n\r\n" + b"<" * 300_000,
    "html-utf7": _HEAD
    + b"Content-Type: text/html; charset=utf-7\r\n\r\n<p>+2EE- hello +ZeVnLIqe-</p>",
    "surrogates-from-broken-base64": _HEAD
    + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + b"7aCA7aCA\r\n",
}
