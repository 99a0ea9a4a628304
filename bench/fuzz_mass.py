"""Mass fuzz (issue 12 "Goal"): many deterministic, seeded mutations of seed mails through
the engine and every later step that reads mail content, in worker processes.

Seeds: ``examples/*.eml`` and the known bombs of the fuzz suite (``tests/fuzz/steps.py``);
with ``--corpora DIR`` also the mails under DIR (for evaluation only: those mails and any
case built from them are never committed; ``--save`` writes reproductions outside the
repository). Case ``i`` is a pure function of ``(--seed, i)`` and the seed list, so any
case can be replayed with ``--start i --count 1``.

Each case runs every step the hypothesis suite runs (``tests/fuzz/steps.py``: the
decision, the Bcc rewrite, the notice summary, the review page's view, reply reading, the
From check, the DSN), timed against the relay's budget for that step
(``leakguard.budget`` and ``decide_timeout``). For a step over its budget the relay's
fail-closed fallback is run on the same mail and timed too (it must be cheap). A case that
takes longer than ``--kill-after`` is killed with its worker (as the relay cannot kill a
thread, this is where a runaway would show) and the step it was in is recorded.

Each worker also measures, per step, the longest GIL hold (``GilWatch``: a thread ticking
every 2 ms records how long it waited for the GIL). In the relay every one of these steps
runs in a thread of the relay process, so that hold is how long the event loop (every SMTP
session, the web pages) would stall. A hold over 100 ms (``GIL_LIMIT``, issue 12's limit)
makes the case notable; the line its thread was on when the GIL came back is kept
(``gil_where``), and so are each step's CPU time (a step over budget on a loaded machine
may only have been starved) and its longest garbage collection. The workers settle their
heap as ``leakguard serve`` does (``runtime.settle_heap``), so the collector's pauses are
the relay's. The watch costs about 2 % (300 cases with and without, alternating).

Recorded: crashes (a worker died on its own), exceptions (by step), steps over budget and
whether they failed closed, killed cases, max / median / p99 time per step, GIL holds, the
load average. Output: a JSON summary (``--out``, rewritten as the run goes, so a run cut
short still reports what it did; it keeps every case's figures so that ``--merge`` can sum
chunks with exact percentiles), one JSON line per notable case (``--cases-out``), and a
table on stdout. ``bench/fuzz_chunks.sh`` runs the 100,000 cases in resumable chunks.

    nice -n 15 python bench/fuzz_mass.py --count 100000 --jobs 1 --out /tmp/fuzz.json
    python bench/fuzz_mass.py --merge /tmp/fuzz-out/chunk-*.json --out /tmp/merged.json
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))

from steps import FALLBACKS, KNOWN_BOMBS, STEPS, StepError, run_steps_timed  # noqa: E402

from leakguard import budget  # noqa: E402

DECIDE_TIMEOUT = 30.0  # RelaySettings.decide_timeout default (also the From check's pool)
STEP_BUDGET: dict[str, float] = {
    "decide": DECIDE_TIMEOUT,
    "bcc_rewrite": budget.DEFAULT_BUDGETS[budget.BCC_REWRITE].seconds,
    "summary": budget.DEFAULT_BUDGETS[budget.SUMMARY].seconds,
    "review_view": budget.DEFAULT_BUDGETS[budget.REVIEW_PAGE].seconds,
    "reply": budget.DEFAULT_BUDGETS[budget.REPLY].seconds,
    "author": DECIDE_TIMEOUT,
    "dsn": budget.DEFAULT_BUDGETS[budget.DSN].seconds,
}
FALLBACK_BUDGET = 1.0  # a fallback must be this quick on any mail, or it did not fail closed
FREE = "free"  # freeing the mail's objects after the last step (GIL figures only)
GIL_LIMIT = 0.1  # issue 12: no event-loop stall over 100 ms (GilWatch's CPU figure)

# --------------------------------------------------------------------------- seeds


def load_seeds(corpora: Path | None, max_corpus: int, max_bytes: int) -> list[tuple[str, bytes]]:
    seeds = [(p.name, p.read_bytes()) for p in sorted((ROOT / "examples").glob("*.eml"))]
    seeds += [(f"bomb:{k}", v) for k, v in sorted(KNOWN_BOMBS.items())]
    if corpora is not None:
        files = sorted(
            p for p in corpora.rglob("*") if p.is_file() and p.suffix.lower() in ("", ".eml")
        )
        # an even spread over every corpus, not the first ``max_corpus`` paths (which are
        # all from the first corpus in name order)
        step = max(1, len(files) // max(1, max_corpus))
        picked = 0
        for p in files[::step]:
            if picked >= max_corpus:
                break
            try:
                data = p.read_bytes()
            except OSError:
                continue
            if 0 < len(data) <= max_bytes and b":" in data[:200]:
                seeds.append((f"corpus:{p.relative_to(corpora)}", data))
                picked += 1
    return seeds


# --------------------------------------------------------------------------- mutations


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = raw.find(sep)
        if i >= 0:
            return raw[:i], sep, raw[i + len(sep) :]
    return raw, b"\r\n\r\n", b""


def _nl(raw: bytes) -> bytes:
    return b"\r\n" if b"\r\n" in raw[:4096] else b"\n"


def m_flip(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(r.randint(1, 20)):
        if b:
            b[r.randrange(len(b))] ^= r.randint(1, 255)
    return bytes(b)


def m_truncate(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    return raw[: r.randint(0, len(raw))]


def m_control(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(r.randint(1, 30)):
        b.insert(r.randint(0, len(b)), r.choice(b"\x00\x07\x0b\x0c\x1b\r\n\x7f\x85"))
    return bytes(b)


def m_line_ends(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    return raw.replace(b"\r\n", r.choice((b"\n", b"\r", b"\r\r\n", b"\n\r"))).replace(
        b"\n", b"\n" if r.random() < 0.5 else b"\r\n"
    )


def m_folded_bomb(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    head, sep, body = _split(raw)
    nl = _nl(raw)
    n = r.choice((10, 1000, 20_000, 60_000, 150_000))
    cc = b"Cc: a@b.example," + (nl + b"\tc@d.example,") * n + nl + b"\te@f.example"
    return head + nl + cc + sep + body


def m_many_fields(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    head, sep, body = _split(raw)
    nl = _nl(raw)
    n = r.choice((100, 5000, 30_000))
    return head + b"".join(nl + b"X-F%d: %d" % (i, i) for i in range(n)) + sep + body


def m_quote_bomb(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    head, sep, body = _split(raw)
    nl = _nl(raw)
    if r.random() < 0.5:
        n = r.randint(1, 8000)
        q = b"".join(
            b">" * (i % r.randint(1, 60)) + b" On Mon, X <x%d@y.example> wrote:" % i + nl
            for i in range(n)
        )
    else:
        q = b">" * r.randint(100, 8000) + b" deep" + nl
    return head + sep + body + nl + q


def m_html_bomb(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    head, sep, _body = _split(raw)
    nl = _nl(raw)
    n = r.randint(1, 200_000)
    kind = r.randrange(4)
    if kind == 0:
        html = b"<div>" * n + b"x" + b"</div>" * (n // 2)
    elif kind == 1:
        m = min(n, 5000)
        html = b"<blockquote>" * m + "送信".encode() + b"</blockquote>" * m
    elif kind == 2:
        html = b"<table>" + b"<tr><td>a@b.example</td></tr>" * min(n, 20000) + b"</table>"
    else:
        html = b"<p>" + b"<scr<script>ipt>x</p" * min(n, 10000)
    lines = [ln for ln in head.split(nl) if not ln.lower().startswith((b"content-", b"mime-"))]
    head = (
        nl.join(lines) + nl + b"MIME-Version: 1.0" + nl + b"Content-Type: text/html; charset=utf-8"
    )
    return head + sep + html


def m_base64(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    head, sep, body = _split(raw)
    nl = _nl(raw)
    enc = base64.encodebytes(body)
    if r.random() < 0.7:
        enc = enc[: max(1, len(enc) - r.randint(0, 9))] + r.choice(
            (b"!*\xff", b"=", b"===", b"\x00")
        )
    lines = [ln for ln in head.split(nl) if not ln.lower().startswith(b"content-transfer-encoding")]
    head = nl.join(lines) + nl + b"Content-Transfer-Encoding: base64"
    return head + sep + enc


def m_qp(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    head, sep, body = _split(raw)
    nl = _nl(raw)
    lines = [ln for ln in head.split(nl) if not ln.lower().startswith(b"content-transfer-encoding")]
    head = nl.join(lines) + nl + b"Content-Transfer-Encoding: quoted-printable"
    return head + sep + body + b"=" + nl + b"=ZZ=4=\xff" * r.randint(1, 1000)


def m_charset(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    new = r.choice((b"utf-7", b"x-unknown", b"iso-2022-jp", b"shift_jis", b"utf-16", b"cp932", b""))
    out = raw
    for old in (b"utf-8", b"UTF-8", b"iso-2022-jp", b"ISO-2022-JP", b"shift_jis", b"us-ascii"):
        out = out.replace(b"charset=" + old, b"charset=" + new).replace(
            b'charset="' + old + b'"', b'charset="' + new + b'"'
        )
    if out == raw:
        head, sep, body = _split(raw)
        out = head + _nl(raw) + b"Content-Type: text/plain; charset=" + new + sep + body
    return out


def m_utf7_text(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    head, sep, body = _split(raw)
    nl = _nl(raw)
    lines = [ln for ln in head.split(nl) if not ln.lower().startswith(b"content-")]
    head = (
        nl.join(lines)
        + nl
        + b"Content-Type: text/"
        + r.choice((b"html", b"plain"))
        + b"; charset=utf-7"
    )
    return head + sep + b"+2EE- +2D3cAA- +ZeVnLIqe- " + body[:2000]


def m_duplicate(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    if not raw:
        return raw
    a = r.randrange(len(raw))
    b = min(len(raw), a + r.randint(1, 4096))
    return raw[:b] + raw[a:b] * r.randint(1, 200) + raw[b:]


def m_deep_multipart(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    head, _sep, body = _split(raw)
    nl = _nl(raw)
    n = r.choice((2, 10, 50, 200))
    inner = b"Content-Type: text/plain" + nl + nl + body[:5000]
    for i in range(n):
        bnd = b"b%d" % i
        inner = (
            b'Content-Type: multipart/mixed; boundary="'
            + bnd
            + b'"'
            + nl
            + nl
            + b"--"
            + bnd
            + nl
            + inner
            + nl
            + (b"--" + bnd + b"--" + nl if r.random() < 0.7 else b"")
        )
    lines = [ln for ln in head.split(nl) if not ln.lower().startswith(b"content-")]
    return nl.join(lines) + nl + inner


def m_rfc2231(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    head, sep, body = _split(raw)
    nl = _nl(raw)
    params = b"".join(
        b"; name*%d*=utf-8''%%E6%%9B%%B8%%%02X" % (i * r.randint(1, 7), r.randint(0, 255))
        for i in range(r.randint(1, 300))
    )
    return head + nl + b"Content-Disposition: attachment" + params + sep + body


def m_encoded_words(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    head, sep, body = _split(raw)
    nl = _nl(raw)
    ew = r.choice(
        (
            b"=?UTF-8?B?5bGx55Sw?=",
            b"=?ISO-2022-JP?B?GyRCJDMkcxsoQg==?=",
            b"=?utf-7?Q?+2EE-?=",
            b"=?x?B?!!?=",
            b"=?UTF-8?Q?=FF=FE?=",
        )
    )
    n = r.randint(1, 3000)
    return (
        head
        + nl
        + b"Subject: "
        + (ew + b" ") * n
        + nl
        + b"From: "
        + ew
        + b" <a@b.example>"
        + sep
        + body
    )


def m_many_addresses(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    head, sep, body = _split(raw)
    nl = _nl(raw)
    n = r.randint(1, 3000)
    to = b", ".join(b"user%d@org%d.example" % (i, i % 97) for i in range(n))
    return head + nl + r.choice((b"To: ", b"Cc: ", b"Resent-To: ", b"Reply-To: ")) + to + sep + body


def m_splice(r: random.Random, raw: bytes, other: bytes) -> bytes:
    head, sep, _body = _split(raw)
    _h, _s, body2 = _split(other)
    return head + sep + body2


def m_attach_message(r: random.Random, raw: bytes, other: bytes) -> bytes:
    head, _sep, _body = _split(raw)
    nl = _nl(raw)
    inner = other
    for _ in range(r.choice((1, 3, 30))):
        inner = (
            b'Content-Type: multipart/mixed; boundary="z"'
            + nl
            + nl
            + b"--z"
            + nl
            + b"Content-Type: message/rfc822"
            + nl
            + nl
            + inner
            + nl
            + b"--z--"
            + nl
        )
    lines = [ln for ln in head.split(nl) if not ln.lower().startswith(b"content-")]
    return nl.join(lines) + nl + inner


def m_bare_cr_headers(r: random.Random, raw: bytes, _o: bytes) -> bytes:
    head, sep, body = _split(raw)
    evil = r.choice(
        (
            b"X-A: a\rFrom: <other@city.example.lg.jp>",
            b"Resent-From: other@city.example.lg.jp",
            b"From: kazuya.sato\xef\xbc\xa0city.example.lg.jp <x@y.example>",
            b"From:\x00 <a@b.example>",
        )
    )
    return evil + _nl(raw) + head + sep + body


MUTATIONS = (
    m_flip, m_truncate, m_control, m_line_ends, m_folded_bomb, m_many_fields, m_quote_bomb,
    m_html_bomb, m_base64, m_qp, m_charset, m_utf7_text, m_duplicate, m_deep_multipart,
    m_rfc2231, m_encoded_words, m_many_addresses, m_splice, m_attach_message, m_bare_cr_headers,
)  # fmt: skip
MAX_CASE_BYTES = 12 * 1024 * 1024


def make_case(seed: int, i: int, seeds: list[tuple[str, bytes]]) -> tuple[str, list[str], bytes]:
    """Case ``i``: (seed mail name, mutation names, bytes); a pure function of its inputs."""
    r = random.Random(seed * 1_000_003 + i)
    name, raw = seeds[r.randrange(len(seeds))]
    names: list[str] = []
    for _ in range(r.choice((1, 1, 2, 2, 3))):
        m = r.choice(MUTATIONS)
        other = seeds[r.randrange(len(seeds))][1]
        raw = m(r, raw, other)[:MAX_CASE_BYTES]
        names.append(m.__name__[2:])
    return name, names, raw


# --------------------------------------------------------------------------- GIL watch


class GilWatch:
    """The longest GIL hold while a step runs, as the relay's event loop would feel it.

    In the relay, the decision, the From check and every budget-pool step run in threads
    of the relay process; while one of them holds the GIL, the event loop (every SMTP
    session, the web pages) waits. Pure Python hands the GIL over every switch interval
    (5 ms); one C-level pass (a regular expression, ``bytes.find`` over megabytes, a large
    ``join``) does not. This thread sleeps ``interval`` seconds in a loop while a step runs,
    and for each tick measures its oversleep: how long it waited for the GIL after its sleep
    ended. Two figures per step:

    * ``wall``: the largest oversleep, in wall time. On a loaded machine with a niced
      process it includes the time the OS ran other processes instead.
    * ``cpu``: the same tick's oversleep capped at the CPU time this process used in that
      tick (``min(oversleep, cpu)``), so a tick spent descheduled does not count: the hold
      an unloaded machine would see. This is the figure the 100 ms limit is checked on.

    ``start`` and ``stop`` wait for the thread, so a hold right at the start of a step is
    seen and the last tick is counted in the step it belongs to.

    ``where``: for the longest hold over ``WHERE_OVER`` seconds, the watched thread's
    innermost frames when this thread got the GIL back, i.e. the line whose C call held it
    (the GIL is handed over at the next bytecode boundary after the call returns).
    """

    WHERE_OVER = 0.05

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self._on = threading.Event()
        self._started = threading.Event()
        self._stopped = threading.Event()
        self.wall = 0.0
        self.cpu = 0.0
        self.where: list[str] = []
        self._watched = threading.get_ident()
        threading.Thread(target=self._run, name="gil-watch", daemon=True).start()

    def _run(self) -> None:
        clock = time.perf_counter
        cpu_clock = time.process_time
        while True:
            self._on.wait()
            wall = cpu = 0.0
            where: list[str] = []
            last, last_cpu = clock(), cpu_clock()
            self._started.set()
            while self._on.is_set():
                time.sleep(self.interval)
                now, now_cpu = clock(), cpu_clock()
                over = now - last - self.interval
                if over > wall:
                    wall = over
                held = min(over, now_cpu - last_cpu)
                if held > cpu:
                    cpu = held
                    if held > self.WHERE_OVER:
                        where = self._where()
                last, last_cpu = now, now_cpu
            self.wall, self.cpu, self.where = wall, cpu, where
            self._stopped.set()

    def _where(self) -> list[str]:
        frame = sys._current_frames().get(self._watched)
        out: list[str] = []
        while frame is not None and len(out) < 4:
            code = frame.f_code
            name = code.co_filename.rsplit("/site-packages/", 1)[-1].rsplit("/leakguard/", 1)[-1]
            out.append(f"{name}:{frame.f_lineno} {code.co_name}")
            frame = frame.f_back
        return out

    def start(self) -> None:
        self._watched = threading.get_ident()
        self._started.clear()
        self._stopped.clear()
        self._on.set()
        self._started.wait()

    def stop(self) -> tuple[float, float]:
        """(wall, cpu) seconds of the longest hold since ``start``."""
        self._on.clear()
        self._stopped.wait()
        return self.wall, self.cpu


# --------------------------------------------------------------------------- worker


class GcWatch:
    """The longest garbage collection (seconds, generation) since the last ``take``: a
    collection holds the GIL too, so a long one shows as a GIL hold wherever it started."""

    def __init__(self) -> None:
        self._t0 = 0.0
        self.longest = (0.0, -1)
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            took = time.perf_counter() - self._t0
            if took > self.longest[0]:
                self.longest = (took, info["generation"])

    def take(self) -> tuple[float, int]:
        out, self.longest = self.longest, (0.0, -1)
        return out


class StepWatch:
    """One case: which step runs (``current``, for a kill), each step's CPU time (to tell
    a slow step from a starved one on a loaded machine), GIL hold and longest collection."""

    GC_OVER = 0.01  # collections this long are recorded

    def __init__(self, watch: GilWatch | None, gcw: GcWatch | None, current: Any) -> None:
        self.watch = watch
        self.gcw = gcw
        self.current = current
        self.running: str | None = None
        self.cpu0 = 0.0
        self.cpu: dict[str, float] = {}
        self.gil: dict[str, list[float]] = {}
        self.where: dict[str, list[str]] = {}  # steps with a hold over GilWatch.WHERE_OVER
        self.gc: dict[str, list[float]] = {}  # steps with a collection over GC_OVER

    def end(self) -> None:
        if self.running is None:
            return
        self.cpu[self.running] = round(time.thread_time() - self.cpu0, 6)
        if self.gcw is not None:
            took, gen = self.gcw.take()
            if took > self.GC_OVER:
                self.gc[self.running] = [round(took, 4), gen]
        if self.watch is not None:
            self.gil[self.running] = [round(x, 6) for x in self.watch.stop()]
            if self.watch.where:
                self.where[self.running] = self.watch.where
        self.running = None

    def on_step(self, step: str) -> None:
        # "": the steps are done, the mail's objects are being freed (a long hold there is
        # the relay's too, in whichever thread drops the last reference): its own "free"
        self.current.value = STEPS.index(step) if step else -1
        self.end()  # the previous step's (outside its timing)
        step = step or FREE
        self.running = step
        if self.gcw is not None:
            self.gcw.take()
        if self.watch is not None:
            self.watch.start()
        self.cpu0 = time.thread_time()


def worker(
    conn: Connection, seed: int, seeds: list[tuple[str, bytes]], current: Any, gil_interval: float
) -> None:
    from steps import engine

    from leakguard.runtime import settle_heap

    engine()  # load the policy once, before the first case is timed
    # as ``leakguard serve`` does once its engine is built: freeze what start-up built and
    # collect generation 0 less often. Without it, a full collection over the engine's
    # objects (60-100 ms) is the longest GIL hold of most slow cases, a stall the relay
    # does not have.
    settle_heap()
    watch = GilWatch(gil_interval) if gil_interval > 0 else None
    gcw = GcWatch() if gil_interval > 0 else None
    while True:
        try:
            i = conn.recv()
        except EOFError:
            return
        if i is None:
            return
        name, muts, raw = make_case(seed, i, seeds)
        out: dict[str, Any] = {"i": i, "seed": name, "mutations": muts, "size": len(raw)}
        # per step: [wall, cpu] seconds of its longest GIL hold (GilWatch)
        steps = StepWatch(watch, gcw, current)
        try:
            times = run_steps_timed(raw, steps.on_step)
            out["times"] = times
        except StepError as exc:
            out["error"] = {"step": exc.step, "exception": str(exc)[:500],
                            "traceback": traceback.format_exc()[-2000:]}  # fmt: skip
        except BaseException as exc:  # a harness bug: report it, never hide it
            out["error"] = {"step": "?", "exception": repr(exc)[:500]}
        finally:
            steps.end()
        out["cpu"] = steps.cpu
        if steps.gc:
            out["gc"] = steps.gc
        if i % 1000 == 0:  # does the worker's heap grow (caches)? a collection walks it
            out["heap_objects"] = len(gc.get_objects())
        if watch is not None:
            out["gil"] = steps.gil
            if steps.where:
                out["gil_where"] = steps.where
            held = [s for s, (_w, c) in steps.gil.items() if c > GIL_LIMIT]
            if held:
                out["gil_over"] = held
        over = [s for s, t in out.get("times", {}).items() if t > STEP_BUDGET[s]]
        if over:
            out["over"] = over
            closed: dict[str, Any] = {}
            for s in over:
                fb = FALLBACKS.get(s)
                if fb is None:
                    # the decision answers 451 at decide_timeout; the Bcc rewrite refuses
                    # (550 on the relay, the hold stays on release): no content is read
                    closed[s] = {"how": "refused", "seconds": 0.0, "ok": True}
                    continue
                t0 = time.perf_counter()
                try:
                    fb(raw)
                    took = time.perf_counter() - t0
                    closed[s] = {"how": "fallback", "seconds": took, "ok": took <= FALLBACK_BUDGET}
                except Exception as exc:
                    closed[s] = {"how": "fallback", "ok": False, "exception": repr(exc)[:300]}
            out["failed_closed"] = closed
        current.value = -1
        conn.send(out)


class Worker:
    def __init__(
        self, ctx: Any, seed: int, seeds: list[tuple[str, bytes]], gil_interval: float
    ) -> None:
        self.current = ctx.Value("i", -1, lock=False)
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=worker, args=(child, seed, seeds, self.current, gil_interval), daemon=True
        )
        self.proc.start()
        child.close()
        self.case: int | None = None
        self.started = 0.0

    def send(self, i: int) -> None:
        self.case, self.started = i, time.monotonic()
        self.conn.send(i)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()


# --------------------------------------------------------------------------- parent


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


class Tally:
    def __init__(self) -> None:
        self.done = 0
        self.times: dict[str, list[float]] = {s: [] for s in STEPS}
        # per step, each case's longest GIL hold (GilWatch): CPU figure and wall figure
        self.gil_cpu: dict[str, list[float]] = {s: [] for s in STEPS}
        self.gil_wall: dict[str, list[float]] = {s: [] for s in STEPS}
        self.gil_over: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.over: dict[str, int] = {}
        self.over_not_closed: dict[str, int] = {}
        self.fallback_max: dict[str, float] = {}
        self.killed: dict[str, int] = {}
        self.crashed = 0
        # per step, the slowest cases: [seconds, case, seed mail, mutations], slowest first
        self.slowest: dict[str, list[list[Any]]] = {s: [] for s in STEPS}
        # per step, the longest GIL holds (CPU figure), same form
        self.slowest_gil: dict[str, list[list[Any]]] = {s: [] for s in STEPS}
        self.loadavg: list[float] = []  # 1-minute load average, sampled while running
        self.cpu_max: dict[str, float] = {}  # per step, the most CPU time one case took
        self.heap: list[list[int]] = []  # [case, objects the worker's collector tracks]
        self.free_max = 0.0  # longest GIL hold freeing a mail's objects (CPU figure)
        self.chunks: list[dict[str, Any]] = []  # with --merge: the chunks merged

    @staticmethod
    def _top(top: list[list[Any]], row: list[Any], keep: int = 5) -> None:
        if len(top) < keep or row[0] > top[-1][0]:
            top.append(row)
            top.sort(key=lambda x: -x[0])
            del top[keep:]

    def add(self, out: dict[str, Any]) -> bool:
        self.done += 1
        notable = False
        for s, t in out.get("times", {}).items():
            self.times[s].append(t)
            self._top(
                self.slowest[s], [round(t, 3), out["i"], out.get("seed"), out.get("mutations")]
            )
        for s, c in out.get("cpu", {}).items():
            if s == FREE:
                continue
            self.cpu_max[s] = max(self.cpu_max.get(s, 0.0), c)
        if "heap_objects" in out:
            self.heap.append([out["i"], out["heap_objects"]])
        for s, (wall, cpu) in out.get("gil", {}).items():
            if s not in self.gil_wall:  # FREE
                self.free_max = max(self.free_max, cpu)
                continue
            self.gil_wall[s].append(wall)
            self.gil_cpu[s].append(cpu)
            row = [round(cpu, 3), out["i"], out.get("seed"), out.get("mutations")]
            self._top(self.slowest_gil[s], row)
        for s in out.get("gil_over", []):
            self.gil_over[s] = self.gil_over.get(s, 0) + 1
            notable = True
        if "error" in out:
            st = out["error"]["step"]
            self.errors[st] = self.errors.get(st, 0) + 1
            notable = True
        for s in out.get("over", []):
            self.over[s] = self.over.get(s, 0) + 1
            fc = out["failed_closed"][s]
            if not fc.get("ok"):
                self.over_not_closed[s] = self.over_not_closed.get(s, 0) + 1
            self.fallback_max[s] = max(self.fallback_max.get(s, 0.0), fc.get("seconds", 0.0))
            notable = True
        if out.get("killed"):
            self.killed[out["killed"]] = self.killed.get(out["killed"], 0) + 1
            notable = True
        if out.get("crashed"):
            self.crashed += 1
            notable = True
        return notable

    def merge(self, chunk: dict[str, Any]) -> None:
        """Add one chunk's ``--out`` summary (it must carry its samples)."""
        if "samples" not in chunk:
            raise ValueError("a chunk summary without samples (written before --merge existed)")
        self.done += chunk["cases"]
        self.crashed += chunk["crashes"]
        for mine, theirs in (
            (self.errors, chunk["exceptions"]),
            (self.killed, chunk["killed"]),
            (self.over, chunk["over_budget"]),
            (self.over_not_closed, chunk["over_budget_not_failed_closed"]),
            (self.gil_over, chunk.get("gil_over_limit", {})),
        ):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        for k, v in chunk["fallback_max_seconds"].items():
            self.fallback_max[k] = max(self.fallback_max.get(k, 0.0), v)
        sm = chunk["samples"]
        for s in STEPS:
            self.times[s] += sm["times"].get(s, [])
            self.gil_cpu[s] += sm.get("gil_cpu", {}).get(s, [])
            self.gil_wall[s] += sm.get("gil_wall", {}).get(s, [])
            for row in chunk["slowest"].get(s, []):
                self._top(self.slowest[s], row)
            for row in chunk.get("slowest_gil", {}).get(s, []):
                self._top(self.slowest_gil[s], row)
        self.loadavg += chunk.get("loadavg", {}).get("samples", [])
        for k, v in chunk.get("cpu_max_seconds", {}).items():
            self.cpu_max[k] = max(self.cpu_max.get(k, 0.0), v)
        self.heap += chunk.get("heap_objects", [])
        self.free_max = max(self.free_max, chunk.get("gil_free_max_seconds", 0.0))
        self.chunks.append(
            {
                k: chunk.get(k)
                for k in ("start", "requested", "cases", "elapsed_seconds", "started_at", "code")
            }
        )

    def summary(self, args: argparse.Namespace, elapsed: float, seeds: int) -> dict[str, Any]:
        def ms(xs: list[float]) -> dict[str, Any]:
            return {
                "median_ms": round(_pct(xs, 0.5) * 1000, 2),
                "p99_ms": round(_pct(xs, 0.99) * 1000, 1),
                "max_s": round(max(xs), 3) if xs else 0.0,
            }

        la = self.loadavg
        return {
            "cases": self.done,
            "requested": args.count,
            "start": args.start,
            "seed": args.seed,
            "jobs": args.jobs,
            "seed_mails": seeds,
            "corpora": bool(args.corpora),
            "code": args.code,
            "started_at": args.started_at,
            "elapsed_seconds": round(elapsed, 1),
            "loadavg": {
                "min": min(la, default=0.0),
                "mean": round(statistics.fmean(la), 2) if la else 0.0,
                "max": max(la, default=0.0),
                "samples": la,
            },
            "crashes": self.crashed,
            "exceptions": dict(self.errors),
            "killed_after_seconds": args.kill_after,
            "killed": dict(self.killed),
            "over_budget": dict(self.over),
            "over_budget_not_failed_closed": dict(self.over_not_closed),
            "fallback_max_seconds": {k: round(v, 4) for k, v in self.fallback_max.items()},
            "cpu_max_seconds": {k: round(v, 3) for k, v in self.cpu_max.items()},
            "heap_objects": sorted(self.heap),
            "budgets": STEP_BUDGET,
            "gil_interval": args.gil_interval,
            "gil_limit_seconds": GIL_LIMIT,
            "gil_over_limit": dict(self.gil_over),
            "gil_free_max_seconds": round(self.free_max, 3),
            "steps": {
                s: {
                    "n": len(xs),
                    **ms(xs),
                    "gil_cpu": ms(self.gil_cpu[s]),
                    "gil_wall": ms(self.gil_wall[s]),
                }
                for s, xs in self.times.items()
            },
            "slowest": self.slowest,
            "slowest_gil": self.slowest_gil,
            **({"chunks": self.chunks} if self.chunks else {}),
            # every case's figures, so chunks can be merged (--merge) with exact percentiles
            "samples": {
                "times": {s: [round(x, 6) for x in xs] for s, xs in self.times.items()},
                "gil_cpu": self.gil_cpu,
                "gil_wall": self.gil_wall,
            },
        }


def table(summary: dict[str, Any]) -> str:
    la = summary["loadavg"]
    lines = [
        f"cases {summary['cases']} of {summary['requested']} in {summary['elapsed_seconds']} s "
        f"(jobs {summary['jobs']}, seed {summary['seed']}, {summary['seed_mails']} seed mails, "
        f"load {la['min']}-{la['max']} mean {la['mean']})",
        f"crashes {summary['crashes']}  exceptions {sum(summary['exceptions'].values())} "
        f"{summary['exceptions'] or ''}  killed {summary['killed'] or 0}",
        "",
        f"{'step':<12} {'budget s':>8} {'median ms':>10} {'p99 ms':>9} {'max s':>8} "
        f"{'over':>5} {'not closed':>10} {'GIL max s':>9} {'(wall)':>7} {'>100ms':>6}",
    ]
    for s, st in summary["steps"].items():
        lines.append(
            f"{s:<12} {summary['budgets'][s]:>8g} {st['median_ms']:>10} {st['p99_ms']:>9} "
            f"{st['max_s']:>8} {summary['over_budget'].get(s, 0):>5} "
            f"{summary['over_budget_not_failed_closed'].get(s, 0):>10} "
            f"{st['gil_cpu']['max_s']:>9} {st['gil_wall']['max_s']:>7} "
            f"{summary['gil_over_limit'].get(s, 0):>6}"
        )
    return "\n".join(lines)


def merge(files: list[Path], out: Path | None) -> int:
    """Sum chunk summaries (``--out`` files of runs with ``--start``/``--count``) into one."""
    tally = Tally()
    chunks = sorted((json.loads(f.read_text()) for f in files), key=lambda c: c["start"])
    for c in chunks:
        tally.merge(c)
    first = chunks[0]
    ns = argparse.Namespace(
        count=sum(c["requested"] for c in chunks),
        start=first["start"],
        seed=first["seed"],
        jobs=first["jobs"],
        corpora=first["corpora"],
        kill_after=first["killed_after_seconds"],
        gil_interval=first.get("gil_interval", 0.0),
        code=sorted({c.get("code") or "?" for c in chunks}),
        started_at=first.get("started_at"),
    )
    summary = tally.summary(ns, sum(c["elapsed_seconds"] for c in chunks), first["seed_mails"])
    problems = []
    end = first["start"]
    for c in chunks:
        if c["start"] != end:
            problems.append(f"gap or overlap: a chunk starts at {c['start']}, expected {end}")
        if c["cases"] != c["requested"]:
            problems.append(f"chunk {c['start']}: {c['cases']} of {c['requested']} cases")
        if c["seed"] != first["seed"] or c["seed_mails"] != first["seed_mails"]:
            problems.append(f"chunk {c['start']}: another seed or seed list")
        end = c["start"] + c["requested"]
    summary["problems"] = problems
    if out is not None:
        out.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    print(table(summary))
    for p in problems:
        print("!", p)
    return _exit_code(summary)


def _exit_code(summary: dict[str, Any]) -> int:
    bad = (
        summary["crashes"]
        + sum(summary["exceptions"].values())
        + sum(summary["over_budget_not_failed_closed"].values())
        + sum(summary["killed"].values())
        + sum(summary["gil_over_limit"].values())
    )
    return 1 if bad else 0


def _code_version() -> str:
    """The commit this run's code is from (a snapshot made by the chunk driver says so in
    ``CODE_VERSION``), so a merged table can say which chunks ran before which fix."""
    f = ROOT / "CODE_VERSION"
    if f.is_file():
        return f.read_text().strip()
    try:
        import subprocess

        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--nice", type=int, default=15, help="niceness of the workers")
    ap.add_argument(
        "--budget-scale",
        type=float,
        default=1.0,
        help="multiply every step budget (a tiny value checks the fail-closed fallbacks)",
    )
    ap.add_argument("--kill-after", type=float, default=120.0, help="seconds a case may take")
    ap.add_argument("--time-limit", type=float, default=0.0, help="stop sending cases after")
    ap.add_argument("--corpora", type=Path, default=None)
    ap.add_argument("--max-corpus", type=int, default=3000)
    ap.add_argument(
        "--gil-interval",
        type=float,
        default=0.002,
        help="GIL watch tick in seconds (0: no GIL watch)",
    )
    ap.add_argument("--out", type=Path, default=None, help="JSON summary")
    ap.add_argument("--cases-out", type=Path, default=None, help="JSON lines, notable cases")
    ap.add_argument("--save", type=Path, default=None, help="keep notable mails here")
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        metavar="FILE",
        help="sum these chunk summaries (--out files) into one table (and --out); run nothing",
    )
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    args.code = _code_version()
    args.started_at = round(time.time())

    seeds = load_seeds(args.corpora, args.max_corpus, 2 * 1024 * 1024)
    for k in STEP_BUDGET:  # before the workers fork: they read it
        STEP_BUDGET[k] *= args.budget_scale
    ctx = mp.get_context("fork")
    os.nice(max(0, args.nice - os.nice(0)))
    workers = [Worker(ctx, args.seed, seeds, args.gil_interval) for _ in range(max(1, args.jobs))]
    tally = Tally()
    todo = iter(range(args.start, args.start + args.count))
    t0 = time.monotonic()
    last_write = 0.0
    last_load = -1e9
    cases_f = args.cases_out.open("a", encoding="utf-8") if args.cases_out else None

    def note(out: dict[str, Any]) -> None:
        if tally.add(out):
            if cases_f is not None:
                cases_f.write(json.dumps(out, ensure_ascii=False) + "\n")
                cases_f.flush()
            if args.save is not None:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / f"case-{out['i']}.eml").write_bytes(
                    make_case(args.seed, out["i"], seeds)[2]
                )

    def feed(w: Worker) -> bool:
        if args.time_limit and time.monotonic() - t0 > args.time_limit:
            return False
        i = next(todo, None)
        if i is None:
            return False
        w.send(i)
        return True

    active = [w for w in workers if feed(w)]
    for w in workers:
        if w not in active:
            w.conn.send(None)
    while active:
        ready = wait([w.conn for w in active], timeout=1.0)
        now = time.monotonic()
        if now - last_load >= 30:
            last_load = now
            tally.loadavg.append(os.getloadavg()[0])
        for w in list(active):
            if w.conn in ready:
                try:
                    out = w.conn.recv()
                except (EOFError, OSError):
                    step = STEPS[w.current.value] if w.current.value >= 0 else "?"
                    note({"i": w.case, "crashed": True, "step": step, "exitcode": w.proc.exitcode})
                    w.kill()
                    active.remove(w)
                    nw = Worker(ctx, args.seed, seeds, args.gil_interval)
                    if feed(nw):
                        active.append(nw)
                    else:
                        nw.conn.send(None)
                    continue
                note(out)
                if not feed(w):
                    w.conn.send(None)
                    active.remove(w)
            elif now - w.started > args.kill_after:
                step = STEPS[w.current.value] if w.current.value >= 0 else "?"
                note({"i": w.case, "killed": step})
                w.kill()
                active.remove(w)
                nw = Worker(ctx, args.seed, seeds, args.gil_interval)
                if feed(nw):
                    active.append(nw)
                else:
                    nw.conn.send(None)
        if args.out and (now - last_write > 30 or not active):
            last_write = now
            summary = tally.summary(args, now - t0, len(seeds))
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
            tmp.replace(args.out)
    summary = tally.summary(args, time.monotonic() - t0, len(seeds))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    print(table(summary))
    return _exit_code(summary)


if __name__ == "__main__":
    sys.exit(main())
