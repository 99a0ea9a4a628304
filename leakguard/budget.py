"""Separate, bounded worker pools with a wall-time budget for each step that reads mail
content (issue 12).

The decision has its own pool (``relay.actions``) and attachment extraction its own killable
processes (``extract.pool``). Every other step that touches hostile content used to share
asyncio's default thread pool, so one runaway step (an HTML bomb on the review page, a
3 MB folded header section in a Bcc rewrite) could take every thread and starve the rest.

Here each step kind has its own small pool. ``run`` waits at most the step's budget; when
the budget is exceeded, or the pool's backlog is full, it raises ``BudgetExceeded`` and the
caller fails closed (each call site says how: a plain-text view, a notice without summary,
a reply read as unclear, a refused release, a minimal DSN). A timed-out thread cannot be
stopped (Python threads cannot be interrupted): it keeps its pool's thread until it ends,
and still counts towards the pool's backlog, so a runaway can only use up its own pool.
Every exceeded budget is counted (``leakguard_step_budget_exceeded_total{step,reason}``)
and logged (``step_budget_exceeded``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

log = structlog.get_logger("leakguard.budget")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Budget:
    """``workers`` threads, ``seconds`` of wall time a call (queueing included), and at
    most ``backlog`` calls queued or running (a timed-out call still running counts)."""

    workers: int
    seconds: float
    backlog: int


# Step kinds (the metric's ``step`` label) and their budgets. Each is far above what a
# normal mail needs on a loaded 2-core machine (milliseconds; see docs/security.md for
# the measured maxima) and far below what a bomb used to take (minutes).
REVIEW_PAGE = "review_page"  # web: message_view of a held mail
SUMMARY = "summary"  # reading a held mail for its notice's summary (at hold time)
NOTICE = "notice"  # building notices and alert mails from stored, bounded data
REPLY = "reply"  # reading a reply command
BCC_REWRITE = "bcc_rewrite"  # recipients moved to Bcc: the relay's bcc action
BCC_RELEASE = "bcc_release"  # the same rewrite of a held mail released as Bcc
DSN = "dsn"  # a delivery status notification quoting the original's headers
PASSWORD = "password"  # noqa: S105 (a step name) argon2 checks: SMTP AUTH, admin login
REPORT = "report"  # incident record: Markdown / PDF, report mail reading

DEFAULT_BUDGETS: dict[str, Budget] = {
    REVIEW_PAGE: Budget(workers=2, seconds=10.0, backlog=16),  # processes (stepproc)
    SUMMARY: Budget(workers=2, seconds=10.0, backlog=32),
    NOTICE: Budget(workers=2, seconds=10.0, backlog=64),
    REPLY: Budget(workers=1, seconds=10.0, backlog=32),  # processes
    BCC_REWRITE: Budget(workers=2, seconds=15.0, backlog=32),
    BCC_RELEASE: Budget(workers=1, seconds=15.0, backlog=16),
    DSN: Budget(workers=1, seconds=10.0, backlog=64),  # processes
    PASSWORD: Budget(workers=2, seconds=5.0, backlog=64),
    REPORT: Budget(workers=1, seconds=60.0, backlog=8),  # processes
}


class BudgetExceeded(Exception):
    """A step ran past its budget (``reason`` "timeout") or its pool was full ("backlog");
    for the steps in worker processes (``stepproc``) also "memory", "crash" and "error"."""

    def __init__(self, step: str, reason: str, seconds: float) -> None:
        super().__init__(f"{step}: {reason} ({seconds:g} s budget)")
        self.step = step
        self.reason = reason
        self.seconds = seconds


class StepPool:
    """One step kind's threads, budget and backlog."""

    def __init__(self, name: str, budget: Budget) -> None:
        self.name = name
        self.budget = budget
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending = 0  # submitted and not finished (queued, running, or timed out)

    @property
    def pending(self) -> int:
        return self._pending

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=max(1, self.budget.workers),
                thread_name_prefix=f"leakguard-{self.name}",
            )
        return self._executor

    def _done(self, _fut: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in this pool, within the budget, or ``BudgetExceeded``.
        Exceptions of ``fn`` itself propagate unchanged."""
        with self._lock:
            if self._pending >= self.budget.backlog:
                full = True
            else:
                full = False
                self._pending += 1
        if full:
            exceeded(self.name, "backlog", self.budget.seconds)
            raise BudgetExceeded(self.name, "backlog", self.budget.seconds)
        try:
            cfut = self._pool().submit(fn, *args, **kwargs)
        except BaseException:
            with self._lock:
                self._pending -= 1
            raise
        # counted down when the call ends, also when it is cancelled before it started
        cfut.add_done_callback(self._done)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(cfut), self.budget.seconds)
        except TimeoutError:
            exceeded(self.name, "timeout", self.budget.seconds)
            raise BudgetExceeded(self.name, "timeout", self.budget.seconds) from None

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


_pools: dict[str, StepPool] = {}
_counter: Any = None  # a prometheus Counter with labels (step, reason), set by ``use_metrics``


def pool(step: str) -> StepPool:
    """The pool of ``step`` (one of the names above), created on first use."""
    p = _pools.get(step)
    if p is None:
        p = _pools[step] = StepPool(step, DEFAULT_BUDGETS[step])
    return p


async def run(step: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` in ``step``'s pool within its budget (see ``StepPool.run``)."""
    return await pool(step).run(fn, *args, **kwargs)


def configure(step: str, budget: Budget) -> None:
    """Replace ``step``'s budget (tests, and a future configuration section)."""
    from leakguard import stepproc

    old = _pools.pop(step, None)
    if old is not None:
        old.shutdown()
    stepproc.forget(step)
    DEFAULT_BUDGETS[step] = budget


def use_metrics(counter: Any) -> None:
    """Count exceeded budgets in ``counter`` (labels: step, reason)."""
    global _counter
    _counter = counter


def exceeded(step: str, reason: str, seconds: float, *, detail: str = "") -> None:
    """Count and log one exceeded budget (any thread)."""
    if _counter is not None:
        _counter.labels(step, reason).inc()
    log.warning(
        "step_budget_exceeded",
        step=step,
        reason=reason,
        budget_seconds=seconds,
        **({"detail": detail} if detail else {}),
    )


def shutdown() -> None:
    """Stop every pool (threads still running a timed-out call finish on their own) and
    the steps' worker processes (``stepproc``; blocking up to a second a busy worker)."""
    from leakguard import stepproc

    for p in list(_pools.values()):
        p.shutdown()
    _pools.clear()
    stepproc.shutdown()
