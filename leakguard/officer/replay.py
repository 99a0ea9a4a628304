"""Replay: decide saved or retained mail again under a new policy (issue 9).

``run_replay`` takes ``ReplaySource``s (``replay_sources``), sends their items in chunks to
worker processes and hands each ``ItemResult`` to a callback as it comes back (the report,
``replay_report.Aggregator``, keeps counters and a bounded set of examples: memory stays
flat over 100,000 mails).

Each worker loads both policies once (the pool's initializer) and decides a mail with one
parse and one attachment extraction; the detectors run once when both policies share the
organisation (the usual case: only rules changed), twice otherwise; each policy's engine
then evaluates its own rules. An item with a recorded verdict (``ReplayItem.old``) is
decided by the new policy only. A mail that cannot be read, is not a mail, or whose
decision fails or passes its time budget is an ``ItemResult`` with ``error`` set: counted,
named, never the end of the run. A worker that dies is replaced and the mails it had queued are
tried again one by one (a mail that goes down with a worker twice counts as an error).

Attachments are read as the relay reads them (``leakguard.extract``, with its time and
memory budgets), through one extraction process per replay worker.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.util
import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from types import FrameType
from typing import Any

from leakguard.detectors.run import run_detectors
from leakguard.engine import with_default_envelope
from leakguard.extract import ExtractConfig, Extractor
from leakguard.masking import mask_identifiers
from leakguard.message.parse import parse_message
from leakguard.officer.replay_sources import Outcome, ReadError, ReplayItem, ReplaySource
from leakguard.organization import Context
from leakguard.policy.engine import evaluate
from leakguard.policy.loader import Policy, files_version, load_policy
from leakguard.types import Message, Verdict

UNKNOWN_DEPARTMENT = "(unknown)"
# Why a mail was not decided (``ItemResult.error``); the report says each in ja and en.
ERRORS = ("unreadable", "empty", "not_mail", "parse_failed", "timeout", "failed", "worker_died")
CHUNK = 32  # mails per task sent to a worker
IN_FLIGHT_PER_WORKER = 4  # chunks queued per worker: enough to keep it busy, memory flat
MAX_ATTEMPTS = 2  # a chunk whose worker died is tried again once
SUBJECT_CHARS = 80


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    """What a worker needs to decide mail: paths only (it loads the files itself)."""

    policy: str
    baseline: str | None  # None: only items with a recorded verdict can be compared
    org: str | None = None  # replaces the new policy's organisation
    baseline_org: str | None = None  # replaces the baseline's
    extract: dict[str, Any] = field(default_factory=dict)  # ExtractConfig fields
    timeout: float = 60.0  # seconds for one mail's decision (both policies)


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One replayed mail: the old and new outcome, or an error."""

    seq: int  # position in the run (stable order for examples and lists)
    ref: str
    sender: str = ""
    department: str = UNKNOWN_DEPARTMENT
    old: Outcome | None = None
    new: Outcome | None = None
    subject: str = ""  # masked, shortened; only for changed mails
    error: str = ""  # one of ERRORS ("" when decided)
    detail: str = ""  # what went wrong, from the system (an errno text, an exception name)

    @property
    def changed(self) -> bool:
        return self.old is not None and self.new is not None and self.old != self.new


# --------------------------------------------------------------------------- in the worker


class _Timeout(Exception):
    pass


@dataclass(slots=True)
class _Worker:
    new: Policy
    baseline: Policy | None
    same_org: bool
    extractor: Extractor
    timeout: float


_STATE: _Worker | None = None


def _org_key(policy: Policy, replaced: bool) -> str:
    """The organisation's identity: its inline model (unless ``--org`` replaced it) and the
    contents of its files (the organisation file, the directory); the detectors' facts
    depend on nothing else."""
    spec = policy.spec.organization
    inline = "" if replaced or isinstance(spec, str) else spec.model_dump_json()
    return f"{inline}|{files_version(policy.files[1:])}"


def load_worker(settings: ReplaySettings) -> _Worker:
    org = Path(settings.org) if settings.org else None
    new = load_policy(Path(settings.policy), org_path=org)
    base_org = Path(settings.baseline_org) if settings.baseline_org else None
    base = load_policy(Path(settings.baseline), org_path=base_org) if settings.baseline else None
    cfg = ExtractConfig.model_validate({**settings.extract, "workers": 1})
    return _Worker(
        new=new,
        baseline=base,
        same_org=base is not None
        and _org_key(base, base_org is not None) == _org_key(new, org is not None),
        extractor=Extractor(cfg),
        timeout=settings.timeout,
    )


def init_worker(settings: ReplaySettings) -> None:
    """Pool initializer: load both policies once; stop the extraction process at exit."""
    global _STATE
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _STATE = load_worker(settings)
    multiprocessing.util.Finalize(None, _STATE.extractor.close, exitpriority=10)


_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
_RETURN_PATH = re.compile(rb"^Return-Path:[ \t]*<([^<>\s]*)>", re.IGNORECASE | re.MULTILINE)
_HEAD_LIMIT = 64 * 1024


def return_path(raw: bytes) -> str | None:
    """The Return-Path address of the header block (None when absent or ``<>``)."""
    head = raw[:_HEAD_LIMIT]
    end = re.search(rb"\r?\n\r?\n", head)
    if end is not None:
        head = head[: end.start()]
    m = _RETURN_PATH.search(head)
    if m is None or not m.group(1):
        return None
    return m.group(1).decode("ascii", "replace")


def _outcome(v: Verdict) -> Outcome:
    return Outcome(
        v.action.value,
        tuple(sorted(v.rule_ids)),
        tuple(sorted(r.rule_id for r in v.audit_rules)),
    )


def _verdict(policy: Policy, msg: Message, ctx: Context, detected: Any = None) -> Verdict:
    facts, findings = detected if detected is not None else run_detectors(msg, ctx)
    return evaluate(policy, msg, ctx, facts, findings)


def decide_item(w: _Worker, seq: int, item: ReplayItem) -> ItemResult:
    """Both outcomes of one mail (never raises: failures are ``error``)."""
    try:
        raw = item.locator.read()
    except ReadError as exc:
        return ItemResult(seq, item.ref, error="unreadable", detail=str(exc))
    except Exception as exc:
        return ItemResult(seq, item.ref, error="unreadable", detail=type(exc).__name__)
    if not raw.strip():
        return ItemResult(seq, item.ref, error="empty")
    if not _HEADER_LINE.match(raw.lstrip(b"\r\n")):
        return ItemResult(seq, item.ref, error="not_mail")
    try:
        with _budget(w.timeout):
            return _decide(w, seq, item, raw)
    except _Timeout:
        return ItemResult(seq, item.ref, error="timeout", detail=f"{w.timeout:g} s")
    except Exception as exc:
        return ItemResult(seq, item.ref, error="failed", detail=type(exc).__name__)


def _decide(w: _Worker, seq: int, item: ReplayItem, raw: bytes) -> ItemResult:
    sender = item.sender if item.sender is not None else return_path(raw)
    msg = parse_message(raw, envelope_from=sender, envelope_rcpts=item.rcpts)
    broken = next((d for d in msg.defects if d.startswith("internal-error")), None)
    if broken is not None:
        return ItemResult(seq, item.ref, error="parse_failed", detail=broken[:120])
    if msg.attachments:
        msg = w.extractor.read(msg)
    msg = with_default_envelope(msg)
    new_ctx = Context(org=w.new.organization)
    detected = run_detectors(msg, new_ctx)
    new = _outcome(_verdict(w.new, msg, new_ctx, detected))
    old = item.old
    if old is None and w.baseline is not None:
        base_ctx = Context(org=w.baseline.organization)
        old = _outcome(_verdict(w.baseline, msg, base_ctx, detected if w.same_org else None))
    who = msg.sender
    addr = who.key if who is not None else ""
    person = w.new.organization.person(addr) if addr else None
    dept = person.department if person is not None and person.department else None
    changed = old is not None and old != new
    return ItemResult(
        seq,
        item.ref,
        sender=addr,
        department=dept or UNKNOWN_DEPARTMENT,
        old=old,
        new=new,
        subject=masked_subject(msg.subject) if changed else "",
    )


def masked_subject(subject: str) -> str:
    """A subject fit to show: identifiers masked, one line, shortened."""
    one = " ".join(subject.split())
    if len(one) > SUBJECT_CHARS:
        one = one[: SUBJECT_CHARS - 1] + "…"
    return mask_identifiers(one)


@contextlib.contextmanager
def _budget(seconds: float) -> Iterator[None]:
    """Raise ``_Timeout`` in this (main) thread after ``seconds``; elsewhere no budget."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise _Timeout

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def decide_chunk(chunk: list[tuple[int, ReplayItem]]) -> list[ItemResult]:
    """Worker task: decide a chunk of items."""
    assert _STATE is not None, "init_worker was not called"
    return [decide_item(_STATE, seq, item) for seq, item in chunk]


# --------------------------------------------------------------------------- in the parent


def numbered(sources: Iterable[ReplaySource]) -> Iterator[tuple[int, ReplayItem]]:
    seq = 0
    for source in sources:
        for item in source.items():
            yield seq, item
            seq += 1


def _chunks(
    items: Iterator[tuple[int, ReplayItem]], size: int
) -> Iterator[list[tuple[int, ReplayItem]]]:
    while chunk := list(islice(items, size)):
        yield chunk


OnResult = Callable[[ItemResult], None]


def run_replay(
    sources: Iterable[ReplaySource],
    settings: ReplaySettings,
    on_result: OnResult,
    *,
    jobs: int = 1,
    chunk: int = CHUNK,
) -> None:
    """Decide every item of ``sources``; ``on_result`` gets each result (in the parent,
    in completion order). ``jobs`` 1 decides in this process."""
    chunks = _chunks(numbered(sources), chunk)
    if jobs <= 1:
        worker = load_worker(settings)
        try:
            for c in chunks:
                for seq, item in c:
                    on_result(decide_item(worker, seq, item))
        finally:
            worker.extractor.close()
        return
    _run_pool(chunks, settings, on_result, jobs)


def _new_pool(settings: ReplaySettings, jobs: int) -> ProcessPoolExecutor:
    ctx = multiprocessing.get_context("forkserver")
    # the fork server imports the replay once; each worker forks from it ready to load policies
    ctx.set_forkserver_preload(["leakguard.officer.replay"])
    return ProcessPoolExecutor(
        max_workers=jobs, mp_context=ctx, initializer=init_worker, initargs=(settings,)
    )


class WorkersFailing(Exception):
    """The worker processes die before deciding anything (they cannot load the policies,
    or the machine kills them): the run stops instead of failing every mail."""

    def __init__(self, breaks: int) -> None:
        self.breaks = breaks
        super().__init__(f"worker processes died {breaks} times in a row")


MAX_BREAKS_IN_A_ROW = 5

_Chunk = list[tuple[int, ReplayItem]]


def _run_pool(
    chunks: Iterator[_Chunk],
    settings: ReplaySettings,
    on_result: OnResult,
    jobs: int,
) -> None:
    pool = _new_pool(settings, jobs)
    pending: dict[Future[list[ItemResult]], tuple[_Chunk, int]] = {}
    retry: list[tuple[_Chunk, int]] = []
    exhausted = False
    breaks = 0  # pool breaks since the last result that came back

    def deliver(fut: Future[list[ItemResult]], c: _Chunk, attempt: int) -> bool:
        """Hand on a finished chunk's results; False when the pool broke under it."""
        nonlocal breaks
        try:
            results = fut.result()
        except BrokenProcessPool:
            _retry_or_fail(c, attempt, retry, on_result)
            return False
        except Exception as exc:  # a result that did not come back: its mails fail
            for seq, item in c:
                on_result(ItemResult(seq, item.ref, error="failed", detail=type(exc).__name__))
            return True
        breaks = 0
        for r in results:
            on_result(r)
        return True

    try:
        while True:
            broken = False
            # after a break the suspects go one at a time: only the culprit dies again
            limit = 1 if retry else jobs * IN_FLIGHT_PER_WORKER
            while len(pending) < limit and (retry or not exhausted) and not broken:
                if retry:
                    c, attempt = retry.pop(0)
                else:
                    nxt = next(chunks, None)
                    if nxt is None:
                        exhausted = True
                        continue
                    c, attempt = nxt, 1
                try:
                    pending[pool.submit(decide_chunk, c)] = (c, attempt)
                except BrokenProcessPool:
                    retry.insert(0, (c, attempt))
                    broken = True
            if not pending and not broken:
                break
            if pending and not broken:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    c, attempt = pending.pop(fut)
                    broken = not deliver(fut, c, attempt) or broken
            if broken:
                # every chunk still queued went down with the pool (or finished just before)
                for fut, (c, attempt) in list(pending.items()):
                    wait([fut])
                    deliver(fut, c, attempt)
                pending.clear()
                breaks += 1
                if breaks > MAX_BREAKS_IN_A_ROW:
                    raise WorkersFailing(breaks)
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _new_pool(settings, jobs)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _retry_or_fail(
    c: _Chunk,
    attempt: int,
    retry: list[tuple[_Chunk, int]],
    on_result: OnResult,
) -> None:
    if len(c) > 1:  # which mail killed the worker is not known: try each one alone
        retry.extend(([one], attempt) for one in c)
        return
    if attempt < MAX_ATTEMPTS:
        retry.append((c, attempt + 1))
        return
    for seq, item in c:
        on_result(ItemResult(seq, item.ref, error="worker_died"))
