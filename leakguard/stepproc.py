"""Killable worker processes for the content steps off the per-mail path (issue 12).

The steps that read raw hostile mail and are not on the hot per-mail path run here, not in
threads: the review page's view of a held mail (``review_page``), reading a reply command
(``reply``), reading a report mail and rendering an incident record (``report``), the Bcc
rewrite of a release as Bcc (``bcc_release``) and building a DSN (``dsn``). A thread past
its budget runs on (Python threads cannot be interrupted) and a C-level pass in it (a
regular expression) holds the GIL and stalls the event loop; a process is killed.

Each step kind has its own ``WorkerPool`` (``leakguard.procpool``) of forks of
``multiprocessing``'s fork server, which preloads the step modules (a replacement starts in
milliseconds). A worker limits its own address space (``RLIMIT_AS``, ``steps.memory_mb``).
A call sends the raw mail and plain parameters (JSON); the answer is JSON and byte frames,
read with a size limit and the call's deadline and validated field by field into the
caller's types: never a pickle. The budget is wall time from the call (queueing
included): a worker that has not answered by then is killed with SIGKILL and replaced.
``BudgetExceeded`` is raised with ``reason``:

- ``timeout``: past the wall-time budget (the worker was killed), or no worker came free;
- ``backlog``: the step already has ``backlog`` calls queued or running;
- ``memory``: the worker ran out of its address space (``MemoryError``);
- ``crash``: the worker died (segfault, ``os._exit``, the OOM killer) or answered nonsense;
- ``error``: the step raised an exception in the worker.

Each call site already fails closed on ``BudgetExceeded`` (a plain-text review view, a reply
read as unclear, a refused release as Bcc, a minimal DSN, an error page). Every exceeded
budget is counted and logged by ``budget`` (``step_budget_exceeded``).

Pools are created lazily, in the process that uses them: after ``os.fork`` (``serve
--workers N``) a child forgets its parent's pools and fork server and starts its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NoReturn

from leakguard import budget
from leakguard.budget import BudgetExceeded
from leakguard.procpool import (
    Worker,
    WorkerPool,
    forget_forkserver_after_fork,
    forkserver_worker,
    recv_frame,
    send_frame,
    start_forkserver,
)

if TYPE_CHECKING:
    from leakguard.delivery.transport import Reply
    from leakguard.holds.commands import Reading
    from leakguard.officer.record import Document
    from leakguard.officer.report_mail import ReportReading
    from leakguard.types import Message
    from leakguard.web.render import MessageView

STEPS = (budget.REVIEW_PAGE, budget.REPLY, budget.REPORT, budget.BCC_RELEASE, budget.DSN)

# imported once in the fork server, so that a worker starts (and is replaced) in milliseconds
PRELOAD = (
    "leakguard.stepproc",
    "leakguard.web.render",
    "leakguard.holds.commands",
    "leakguard.officer.report_mail",
    "leakguard.officer.record",
    "leakguard.message.rewrite",
    "leakguard.delivery.dsn",
    "reportlab.platypus",
)

# Address-space limit of each step's workers (``steps.memory_mb`` in the service config).
# Above what the largest mail the relay accepts needs (the review page parses up to 30 MB,
# a release as Bcc rewrites the whole mail), far below what a bomb takes.
DEFAULT_MEMORY_MB: dict[str, int] = {
    budget.REVIEW_PAGE: 1024,
    budget.REPLY: 512,
    budget.REPORT: 1024,
    budget.BCC_RELEASE: 1024,
    budget.DSN: 512,
}

MAX_JSON = 32 * 1024 * 1024  # one answer's JSON
MAX_FRAMES = 2

# Test hooks (``params["test_hook"]``), honoured only by workers of pools configured with
# ``test_hooks=True`` (tests), never by the service.
HOOK_HANG = "hang"  # sleeps forever
HOOK_BUSY = "busy"  # one regular expression holding the GIL for minutes
HOOK_MEMORY = "memory"  # allocates until MemoryError
HOOK_CRASH = "crash"  # os._exit(3)


class StepProcPool:
    """One step kind's worker processes, budget and backlog."""

    def __init__(
        self, name: str, limits: budget.Budget, memory_mb: int, *, test_hooks: bool = False
    ) -> None:
        self.name = name
        self.budget = limits
        self.memory_bytes = memory_mb * 1024 * 1024
        self.test_hooks = test_hooks
        self.workers = WorkerPool(limits.workers, self._new_worker, start=False)
        # one relay thread per call in flight waits on its worker's socket (never past the
        # call's deadline), so the event loop never waits
        self._threads = ThreadPoolExecutor(
            max_workers=max(1, limits.backlog), thread_name_prefix=f"leakguard-{name}"
        )
        self._lock = threading.Lock()
        self._pending = 0
        self.hook = ""  # a test hook sent with every call (tests only)

    def _new_worker(self) -> Worker:
        args = (self.name, self.memory_bytes, self.test_hooks)
        return forkserver_worker(_serve, args, PRELOAD)

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def replaced(self) -> int:
        return self.workers.replaced

    def start(self) -> None:
        """Start the fork server and this step's workers (blocking: off the event loop)."""
        self.workers.start()

    def _done(self, _fut: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    async def call(
        self,
        job: str,
        raw: bytes | memoryview,
        params: Mapping[str, Any],
        *,
        max_bytes: int = 16 * 1024 * 1024,
    ) -> tuple[dict[str, Any], list[bytes]]:
        """Run ``job`` on ``raw`` in a worker within the budget: the answer's JSON object
        and its byte frames (each at most ``max_bytes``), or ``BudgetExceeded``."""
        with self._lock:
            full = self._pending >= self.budget.backlog
            if not full:
                self._pending += 1
        if full:
            budget.exceeded(self.name, "backlog", self.budget.seconds)
            raise BudgetExceeded(self.name, "backlog", self.budget.seconds)
        if self.hook:
            params = {**params, "test_hook": self.hook}
        try:
            cfut = self._threads.submit(self._call, job, raw, params, max_bytes)
        except BaseException:
            with self._lock:
                self._pending -= 1
            raise
        cfut.add_done_callback(self._done)
        return await asyncio.wrap_future(cfut)

    def _call(
        self,
        job: str,
        raw: bytes | memoryview,
        params: Mapping[str, Any],
        max_bytes: int,
    ) -> tuple[dict[str, Any], list[bytes]]:
        # the first call of a step starts its workers (the fork server once, about a
        # second; then milliseconds a worker): not counted against the call's budget
        self.workers.start()
        deadline = time.monotonic() + self.budget.seconds
        w = self.workers.acquire(deadline)
        if w is None:
            self._fail("timeout", "no worker free within the budget")
        failure = ""
        try:
            send_frame(w.conn, json.dumps({"job": job, "params": params}).encode(), deadline)
            send_frame(w.conn, raw, deadline)
            if not w.conn.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError
            doc = json.loads(recv_frame(w.conn, MAX_JSON, deadline))
            if not isinstance(doc, dict):
                raise ValueError("not an object")
            failure = str(doc.get("failure") or "")[:200]
            n = 0 if failure else doc.get("frames", 0)
            if not isinstance(n, int) or not 0 <= n <= MAX_FRAMES:
                raise ValueError("bad frame count")
            frames = [recv_frame(w.conn, max_bytes, deadline) for _ in range(n)]
        except TimeoutError:
            self.workers.retire(w)
            self._fail("timeout", f"worker {w.pid} killed")
        except (EOFError, OSError):
            code = w.exitcode(0.5)
            self.workers.retire(w)
            self._fail("crash", f"worker {w.pid} died (exit {code})")
        except ValueError as exc:  # not our protocol: never trusted again
            self.workers.retire(w)
            self._fail("crash", f"worker {w.pid} answered nonsense: {exc}"[:200])
        except BaseException:
            self.workers.retire(w)
            raise
        if failure == "memory":
            self.workers.retire(w)  # its heap is spent: a fresh one for the next call
            self._fail("memory", "over the worker's memory limit")
        self.workers.release(w)
        if failure:  # the step raised in the worker (which is fine for the next call)
            self._fail("error", failure)
        return doc, frames

    def _fail(self, reason: str, detail: str) -> NoReturn:
        budget.exceeded(self.name, reason, self.budget.seconds, detail=detail)
        raise BudgetExceeded(self.name, reason, self.budget.seconds)

    def close(self) -> None:
        self.workers.close()
        self._threads.shutdown(wait=False, cancel_futures=True)


# --------------------------------------------------------------------------- registry

_pools: dict[str, StepProcPool] = {}
_registry_lock = threading.Lock()
_memory_mb: dict[str, int] = dict(DEFAULT_MEMORY_MB)
_test_hooks = False


def configure(memory_mb: Mapping[str, int] | None = None, *, test_hooks: bool = False) -> None:
    """Set the steps' memory limits (MiB) and test hooks; pools made before are closed."""
    global _test_hooks
    shutdown()
    _memory_mb.clear()
    _memory_mb.update(DEFAULT_MEMORY_MB)
    _memory_mb.update(memory_mb or {})
    _test_hooks = test_hooks


def pool(step: str) -> StepProcPool:
    """The process pool of ``step`` (one of ``STEPS``), created on first use."""
    with _registry_lock:
        p = _pools.get(step)
        if p is None:
            p = _pools[step] = StepProcPool(
                step, budget.DEFAULT_BUDGETS[step], _memory_mb[step], test_hooks=_test_hooks
            )
        return p


def forget(step: str) -> None:
    with _registry_lock:
        p = _pools.pop(step, None)
    if p is not None:
        p.close()


def start(steps: Sequence[str] = STEPS) -> None:
    """Start the fork server and the workers of ``steps`` (blocking: call off the loop)."""
    start_forkserver(PRELOAD)
    for step in steps:
        pool(step).start()


def shutdown() -> None:
    """Stop every step's workers (idle ones exit, busy ones are killed)."""
    with _registry_lock:
        pools = list(_pools.values())
        _pools.clear()
    for p in pools:
        p.close()


def _after_fork_in_child() -> None:
    # ``serve --workers N``: the parent's pools and fork server are not this process's
    _pools.clear()
    forget_forkserver_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


# --------------------------------------------------------------------------- validation


def _str(value: object, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise BudgetExceeded("answer", "crash", 0)
    return value


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise BudgetExceeded("answer", "crash", 0)
    return value


def _list(value: object, limit: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise BudgetExceeded("answer", "crash", 0)
    return value


def _checked(step: str, build: Any, *args: Any) -> Any:
    """``build(*args)``; an answer of the wrong shape counts as a crash of the step."""
    try:
        return build(*args)
    except (BudgetExceeded, KeyError, TypeError, ValueError, IndexError):
        seconds = budget.DEFAULT_BUDGETS[step].seconds
        budget.exceeded(step, "crash", seconds, detail="answer of the wrong shape")
        raise BudgetExceeded(step, "crash", seconds) from None


# --------------------------------------------------------------------------- the steps
#
# Relay side: plain parameters in, the caller's own types out. The worker side of each job
# is in ``_JOBS`` below.


async def review_page(raw: bytes) -> MessageView:
    """``web.render.message_view`` of a held mail, in a worker."""
    from leakguard.web.render import MAX_PARSE, MAX_TEXT, MessageView

    doc, _ = await pool(budget.REVIEW_PAGE).call("review_page", memoryview(raw)[:MAX_PARSE], {})

    def build(doc: dict[str, Any]) -> MessageView:
        return MessageView(
            text=_str(doc["text"], MAX_TEXT + 1000),
            html=_str(doc["html"], 8 * MAX_TEXT * 5),
            headers=tuple(
                (_str(k, 100), _str(v, 10_000))
                for k, v in (_list(pair, 2) for pair in _list(doc["headers"], 100))
            ),
            truncated=_bool(doc["truncated"]),
            incomplete=_bool(doc["incomplete"]),
        )

    return _checked(budget.REVIEW_PAGE, build, doc)  # type: ignore[no-any-return]


# the header fields a reply's handling reads (automatic mail, the token in To:)
REPLY_HEADERS = ("auto-submitted", "precedence", "x-autoreply", "x-autorespond", "to")


async def reply(raw: bytes) -> tuple[Reading, Message]:
    """``holds.commands.read_reply``, in a worker: the reading, and the reply as a
    ``Message`` holding only the header fields its handling reads."""
    from leakguard.holds.commands import (
        MAX_NOTE,
        MAX_REPLY_BYTES,
        Decision,
        Reading,
        Report,
        Unclear,
    )
    from leakguard.holds.notice import NOTICE_HEADER
    from leakguard.message.parse import parse_message

    doc, _ = await pool(budget.REPLY).call(
        "reply", memoryview(raw)[:MAX_REPLY_BYTES], {"headers": [*REPLY_HEADERS, NOTICE_HEADER]}
    )

    def build(doc: dict[str, Any]) -> tuple[Reading, Message]:
        decision = doc["decision"]
        report = doc["report"]
        reading = Reading(
            Decision(_str(decision, 20)) if decision is not None else None,
            Unclear(_str(doc["unclear"], 40)),
            line=_str(doc["line"], 400),
            report=Report(_str(report, 20)) if report is not None else None,
            note=_str(doc["note"], MAX_NOTE + 100),
        )
        headers = tuple(
            (_str(k, 100), _str(v, 100_000))
            for k, v in (_list(pair, 2) for pair in _list(doc["headers"], 200))
        )
        return reading, dataclasses.replace(parse_message(b""), headers=headers)

    return _checked(budget.REPLY, build, doc)  # type: ignore[no-any-return]


async def report_mail(raw: bytes) -> ReportReading:
    """``officer.report_mail.read_report``, in a worker."""
    from leakguard.officer.report_mail import MAX_IDS, MAX_TEXT, ReportReading

    doc, _ = await pool(budget.REPORT).call("report_mail", raw, {})

    def build(doc: dict[str, Any]) -> ReportReading:
        return ReportReading(
            automatic=_bool(doc["automatic"]),
            message_ids=tuple(_str(m, 310) for m in _list(doc["message_ids"], MAX_IDS)),
            subjects=tuple(_str(s, MAX_TEXT) for s in _list(doc["subjects"], 5)),
            note=_str(doc["note"], MAX_TEXT),
        )

    return _checked(budget.REPORT, build, doc)  # type: ignore[no-any-return]


async def bcc_release(raw: bytes, internal_domains: Sequence[str]) -> bytes:
    """``message.rewrite.bcc_rewrite`` of a held mail for a release as Bcc, in a worker;
    internal recipients are those of ``internal_domains`` (``Organization`` patterns)."""
    _doc, frames = await pool(budget.BCC_RELEASE).call(
        "bcc_release",
        raw,
        {"internal_domains": list(internal_domains)},
        max_bytes=2 * len(raw) + (1 << 20),
    )
    return _checked(budget.BCC_RELEASE, lambda: frames[0])  # type: ignore[no-any-return]


async def dsn(
    *, original: bytes, sender: str, failed: Mapping[str, Reply], reporting_host: str
) -> bytes:
    """``delivery.dsn.build_dsn`` (which quotes the original's headers), in a worker."""
    params = {
        "sender": sender,
        "failed": [[r, rep.code, rep.text] for r, rep in failed.items()],
        "reporting_host": reporting_host,
    }
    _doc, frames = await pool(budget.DSN).call("dsn", original, params)
    return _checked(budget.DSN, lambda: frames[0])  # type: ignore[no-any-return]


async def report_markdown(document: Document) -> str:
    """``officer.record.to_markdown``, in a worker."""
    doc, _ = await pool(budget.REPORT).call("report_md", b"", {"doc": _document(document)})
    return _checked(budget.REPORT, _str, doc.get("markdown"), MAX_JSON)  # type: ignore[no-any-return]


async def report_pdf(document: Document) -> bytes:
    """``officer.record.to_pdf``, in a worker."""
    _doc, frames = await pool(budget.REPORT).call(
        "report_pdf", b"", {"doc": _document(document)}, max_bytes=64 * 1024 * 1024
    )
    return _checked(budget.REPORT, lambda: frames[0])  # type: ignore[no-any-return]


def _document(doc: Document) -> dict[str, Any]:
    return {
        "title": doc.title,
        "footer": doc.footer,
        "sections": [
            {
                "key": s.key,
                "title": s.title,
                "fields": [list(f) for f in s.fields],
                "items": list(s.items),
                "table": [list(row) for row in s.table],
            }
            for s in doc.sections
        ],
    }


# --------------------------------------------------------------------------- worker side


def _job_review_page(raw: bytes, _params: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    from leakguard.web.render import message_view

    v = message_view(raw)
    doc = {
        "text": v.text,
        "html": v.html,
        "headers": [list(h) for h in v.headers],
        "truncated": v.truncated,
        "incomplete": v.incomplete,
    }
    return doc, []


def _job_reply(raw: bytes, params: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    from leakguard.holds.commands import read_reply

    reading, msg = read_reply(raw)
    wanted = {str(h).lower() for h in params.get("headers", [])}
    doc = {
        "decision": str(reading.decision) if reading.decision is not None else None,
        "unclear": str(reading.unclear),
        "line": reading.line,
        "report": str(reading.report) if reading.report is not None else None,
        "note": reading.note,
        "headers": [[k, v[:100_000]] for k, v in msg.headers if k.lower() in wanted][:200],
    }
    return doc, []


def _job_report_mail(raw: bytes, _params: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    from leakguard.officer.report_mail import read_report

    r = read_report(raw)
    doc = {
        "automatic": r.automatic,
        "message_ids": list(r.message_ids),
        "subjects": list(r.subjects),
        "note": r.note,
    }
    return doc, []


def _job_bcc_release(raw: bytes, params: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    from leakguard.message.rewrite import bcc_rewrite
    from leakguard.organization import Organization

    org = Organization(internal_domains=[str(d) for d in params["internal_domains"]])
    return {}, [bcc_rewrite(raw, org.is_internal)]


def _job_dsn(raw: bytes, params: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    from leakguard.delivery.dsn import build_dsn
    from leakguard.delivery.transport import Reply

    failed = {str(r): Reply(int(code), str(text)) for r, code, text in params["failed"]}
    out = build_dsn(
        original=raw,
        sender=str(params["sender"]),
        failed=failed,
        reporting_host=str(params["reporting_host"]),
    )
    return {}, [out]


def _from_document(d: dict[str, Any]) -> Document:
    from leakguard.officer.record import Document, Section

    return Document(
        title=d["title"],
        footer=d["footer"],
        sections=tuple(
            Section(
                key=s["key"],
                title=s["title"],
                fields=tuple((a, b) for a, b in s["fields"]),
                items=tuple(s["items"]),
                table=tuple(tuple(row) for row in s["table"]),
            )
            for s in d["sections"]
        ),
    )


def _job_report_md(_raw: bytes, params: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    from leakguard.officer.record import to_markdown

    return {"markdown": to_markdown(_from_document(params["doc"]))}, []


def _job_report_pdf(_raw: bytes, params: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    from leakguard.officer.record import to_pdf

    return {}, [to_pdf(_from_document(params["doc"]))]


_JOBS = {
    "review_page": _job_review_page,
    "reply": _job_reply,
    "report_mail": _job_report_mail,
    "bcc_release": _job_bcc_release,
    "dsn": _job_dsn,
    "report_md": _job_report_md,
    "report_pdf": _job_report_pdf,
}


def _test_hook(hook: object) -> None:
    import re

    if hook == HOOK_HANG:
        while True:
            time.sleep(1)
    elif hook == HOOK_BUSY:
        # catastrophic backtracking: one C-level call that never lets go of the GIL
        re.match(r"(?:a+)+b", "a" * 40)
    elif hook == HOOK_MEMORY:
        hog = [bytes(64 * 1024 * 1024) for _ in range(10_000)]  # calloc: no page touched
        del hog
    elif hook == HOOK_CRASH:
        os._exit(3)


def _serve(sock: Any, step: str, memory_bytes: int, test_hooks: bool) -> None:
    """A step worker's main loop (in a fork of the fork server): one job at a time."""
    import contextlib
    import multiprocessing.connection
    import signal
    import warnings

    from leakguard.procpool import set_memory_limit

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the relay's
    warnings.simplefilter("ignore")  # library warnings about broken mail are expected here
    conn = multiprocessing.connection.Connection(sock.detach())
    set_memory_limit(memory_bytes)
    del step  # the pool's name, for ps and debuggers
    while True:
        try:
            head = json.loads(conn.recv_bytes())
            raw = conn.recv_bytes()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        try:
            if test_hooks:
                _test_hook(head["params"].get("test_hook"))
            doc, frames = _JOBS[head["job"]](raw, head["params"])
            del raw
            doc["frames"] = len(frames)
            # ASCII JSON: a lone surrogate (broken base64) travels as an escape
            data = json.dumps(doc).encode()
        except MemoryError:
            data, frames = b'{"failure": "memory"}', []
        except Exception as exc:  # never leave the relay waiting for an answer
            data = json.dumps({"failure": type(exc).__name__}).encode()
            frames = []
        with contextlib.suppress(OSError):
            conn.send_bytes(data)
            for f in frames:
                conn.send_bytes(f)
