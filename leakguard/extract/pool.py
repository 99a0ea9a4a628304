"""A small pool of extraction worker processes that can be killed and replaced.

``concurrent.futures.ProcessPoolExecutor`` cannot stop a task that hangs (a parser in an
endless loop inside C code) and breaks the whole pool when a worker dies. This pool keeps
one pipe per worker, hands a worker one attachment at a time, and waits on the pipe with
the time left in the message's budget. A worker that does not answer in time is killed
(SIGKILL) and replaced; one that dies (segfault, ``os._exit``, the kernel's OOM killer)
is replaced too. Either way the attachment, and those of the mail not yet read, are
reported as uninspected: the mail is decided, never lost, and the relay never goes down.

Each worker limits its own address space (``RLIMIT_AS``), so a decompression bomb or a
parser's runaway allocation ends in ``MemoryError`` (reported as uninspected) or in the
worker's death, never in the relay's. Workers are started with the ``forkserver`` method
(``spawn`` where there is none): they share nothing with the relay's memory, and the
extraction modules are imported once in the fork server, so a replacement starts in
milliseconds.

Bytes go to the worker still transfer-encoded (base64 is 4/3 of the binary, but the relay
then never holds a decoded copy): the caller passes a ``memoryview`` of the raw mail, which
``Connection.send_bytes`` writes without copying.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing.connection
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from leakguard.extract.formats import Limits, Output
from leakguard.types import AttachmentContent, TextSection

# Content types that make a worker misbehave on purpose; honoured only by pools created
# with ``test_hooks=True`` (tests and the fuzz benchmark), never by the service.
TEST_CRASH = "application/x-leakguard-test-crash"
TEST_HANG = "application/x-leakguard-test-hang"
TEST_MEMORY = "application/x-leakguard-test-memory"


@dataclass(frozen=True, slots=True)
class Job:
    """One attachment to read: its encoded body and how to decode it."""

    name: str
    content_type: str
    transfer_encoding: str
    charset: str
    body: bytes | memoryview


@dataclass(frozen=True, slots=True)
class Failure:
    """What stopped a job: over the budget, the worker crashed, no worker was free."""

    detail: str


# --------------------------------------------------------------------------- protocol
#
# Results come back as JSON plus raw byte frames, never as pickles: a worker that a hostile
# file took over must not be able to run code in the relay by what it answers, and every
# frame is read with a size limit.


def encode_result(conn: multiprocessing.connection.Connection, result: Output | Failure) -> None:
    """Send ``result`` (worker side)."""
    if isinstance(result, Failure):
        conn.send_bytes(json.dumps({"failure": result.detail}).encode())
        return
    doc = {
        "contents": [
            {
                "name": c.name,
                "kind": c.kind,
                "status": c.status,
                "detail": c.detail,
                "sections": [[sec.location, sec.text] for sec in c.sections],
            }
            for c in result.contents
        ],
        "messages": [name for name, _ in result.messages],
        "attendees": [list(a) for a in result.attendees],
        "uids": result.uids,
    }
    conn.send_bytes(json.dumps(doc, ensure_ascii=False).encode("utf-8"))
    for _name, raw in result.messages:
        conn.send_bytes(raw)


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def decode_result(conn: multiprocessing.connection.Connection, limits: Limits) -> Output | Failure:
    """Read one result (relay side), within size limits; ValueError when malformed."""
    max_json = 4 * 4 * limits.max_chars + (1 << 20)  # UTF-8 text of every section, and more
    doc = json.loads(conn.recv_bytes(max_json))
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    if "failure" in doc:
        return Failure(_str(doc["failure"])[:300])
    out = Output()
    for c in doc.get("contents", []):
        sections = tuple(TextSection(_str(loc), _str(text)) for loc, text in c["sections"])
        out.contents.append(
            AttachmentContent(
                _str(c["name"]), _str(c["kind"]), _str(c["status"]), sections, _str(c["detail"])
            )
        )
    for name in doc.get("messages", []):
        out.messages.append((_str(name), conn.recv_bytes(limits.max_uncompressed)))
    for addr, display in doc.get("attendees", []):
        out.attendees.append((_str(addr), _str(display)))
    out.uids.extend(_str(u)[:300] for u in doc.get("uids", [])[:50])
    return out


class _Worker:
    """One worker: ``python -m leakguard.extract.worker`` on one end of a socket pair.

    A fresh interpreter rather than ``multiprocessing.Process``: it shares nothing with the
    relay (no inherited locks, sockets or memory), and never re-imports the caller's
    ``__main__`` as the spawn and forkserver methods do.
    """

    def __init__(self, limits: Limits, memory_bytes: int, test_hooks: bool) -> None:
        parent, child = socket.socketpair()
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "leakguard.extract.worker", str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C is the parent's business
                close_fds=True,
            )
        finally:
            child.close()
        self.conn = multiprocessing.connection.Connection(parent.detach())
        # settings first: the worker reads them before its first job
        self.conn.send((limits, memory_bytes, test_hooks))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exitcode(self, wait: float) -> int | None:
        try:
            return self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(2)
        with contextlib.suppress(Exception):
            self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()  # the worker's recv() ends with EOFError and it exits
        if self.exitcode(1) is None:
            self.kill()


class ExtractPool:
    """Worker processes reading attachments under a per-message wall-time budget."""

    def __init__(
        self,
        workers: int = 2,
        *,
        limits: Limits | None = None,
        memory_bytes: int = 1024 * 1024 * 1024,
        test_hooks: bool = False,
    ) -> None:
        self.size = max(1, workers)
        self.limits = limits or Limits()
        self.memory_bytes = memory_bytes
        self.test_hooks = test_hooks
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.replaced = 0  # workers killed or found dead and replaced (for tests and metrics)
        for _ in range(self.size):
            self._spawn()

    def _spawn(self) -> None:
        w = _Worker(self.limits, self.memory_bytes, self.test_hooks)
        with self._lock:
            if self._closed:
                w.stop()
                return
            self._all.add(w)
        self._idle.put(w)

    def _retire(self, w: _Worker) -> None:
        w.kill()
        with self._lock:
            self._all.discard(w)
            closed = self._closed
            self.replaced += 1
        if not closed:
            self._spawn()

    def run(self, jobs: Sequence[Job], timeout: float) -> list[Output | Failure]:
        """Read ``jobs`` one after another on one worker within ``timeout`` seconds in all.

        Returns one result per job, in order: the worker's ``Output``, or a ``Failure``
        saying why the job was not read. Never raises because of what is in the jobs.
        """
        deadline = time.monotonic() + timeout
        results: list[Output | Failure] = []
        if self._closed:
            return [Failure("extraction is shut down")] * len(jobs)
        try:
            w = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return [Failure("no extraction worker free within the time budget")] * len(jobs)
        try:
            for job in jobs:
                left = deadline - time.monotonic()
                if left <= 0:
                    results.append(Failure("over the time budget"))
                    continue
                if w.proc.poll() is not None:  # died while idle (e.g. the OOM killer)
                    self._retire(w)
                    w = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
                result = self._one(w, job, left)
                results.append(result)
                if isinstance(result, Failure) and result.detail.startswith("worker "):
                    self._retire(w)
                    try:
                        w = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        rest = len(jobs) - len(results)
                        results += [Failure("over the time budget")] * rest
                        return results
        except BaseException:
            self._retire(w)  # a half-finished exchange: this worker's pipe is out of step
            raise
        self._idle.put(w)
        return results

    def _one(self, w: _Worker, job: Job, left: float) -> Output | Failure:
        try:
            w.conn.send((job.name, job.content_type, job.transfer_encoding, job.charset))
            w.conn.send_bytes(job.body)
            if not w.conn.poll(left):
                return Failure(f"worker killed: over the time budget ({left:.1f}s left)")
            return decode_result(w.conn, self.limits)
        except (EOFError, OSError):
            code = w.exitcode(0.5)
            return Failure(f"worker died (exit {code}) while reading it")
        except ValueError as exc:  # not our protocol: the worker is not to be trusted again
            return Failure(f"worker answered nonsense: {exc}"[:200])

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for w in workers:
            w.stop()

    def pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._all]
