"""A small pool of extraction worker processes that can be killed and replaced.

Built on ``leakguard.procpool`` (shared with the content steps of ``leakguard.stepproc``):
``concurrent.futures.ProcessPoolExecutor`` cannot stop a task that hangs (a parser in an
endless loop inside C code) and breaks the whole pool when a worker dies. This pool keeps
one pipe per worker, hands a worker one attachment at a time, and waits on the pipe with
the time left in the message's budget. A worker that does not answer in time is killed
(SIGKILL) and replaced; one that dies (segfault, ``os._exit``, the kernel's OOM killer)
is replaced too. Either way the attachment, and those of the mail not yet read, are
reported as uninspected: the mail is decided, never lost, and the relay never goes down.

Each worker limits its own address space (``RLIMIT_AS``), so a decompression bomb or a
parser's runaway allocation ends in ``MemoryError`` (reported as uninspected) or in the
worker's death, never in the relay's. Each worker is a fresh interpreter
(``python -m leakguard.extract.worker FD``): it shares nothing with the relay's memory.

Bytes go to the worker still transfer-encoded (base64 is 4/3 of the binary, but the relay
then never holds a decoded copy): the caller passes a ``memoryview`` of the raw mail, which
``Connection.send_bytes`` writes without copying.
"""

from __future__ import annotations

import json
import multiprocessing.connection
import time
from collections.abc import Sequence
from dataclasses import dataclass

from leakguard.extract.formats import Limits, Output
from leakguard.procpool import (
    Worker,
    WorkerPool,
    interpreter_worker,
    recv_frame,
    send_frame,
)
from leakguard.types import AttachmentContent, TextSection

# Content types that make a worker misbehave on purpose; honoured only by pools created
# with ``test_hooks=True`` (tests and the fuzz benchmark), never by the service.
TEST_CRASH = "application/x-leakguard-test-crash"
TEST_HANG = "application/x-leakguard-test-hang"
TEST_MEMORY = "application/x-leakguard-test-memory"

# Mail found in all the attachments of one mail that the relay parses (per attachment, the
# worker keeps to ``Limits.max_messages`` / ``max_message_bytes``); past these the further
# attachments' results count as uninspected.
MAIL_MAX_MESSAGES = 40
MAIL_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


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


def decode_result(
    conn: multiprocessing.connection.Connection,
    limits: Limits,
    deadline: float | None = None,
) -> Output | Failure:
    """Read one result (relay side), within size limits and ``deadline`` (monotonic time;
    TimeoutError past it); ValueError when malformed or over a limit."""
    if deadline is None:
        deadline = time.monotonic() + 3600.0
    max_json = 4 * 4 * limits.max_chars + (1 << 20)  # UTF-8 text of every section, and more
    doc = json.loads(recv_frame(conn, max_json, deadline))
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
    names = doc.get("messages", [])
    if not isinstance(names, list) or len(names) > limits.max_messages:
        raise ValueError(f"more than {limits.max_messages} messages")
    left = limits.max_message_bytes
    for name in names:
        raw = recv_frame(conn, left, deadline)
        left -= len(raw)
        out.messages.append((_str(name), raw))
    for addr, display in doc.get("attendees", []):
        out.attendees.append((_str(addr), _str(display)))
    out.uids.extend(_str(u)[:300] for u in doc.get("uids", [])[:50])
    return out


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
        self.limits = limits or Limits()
        self.memory_bytes = memory_bytes
        self.test_hooks = test_hooks
        settings = (self.limits, memory_bytes, test_hooks)
        self._pool = WorkerPool(
            workers, lambda: interpreter_worker("leakguard.extract.worker", settings)
        )
        self.size = self._pool.size

    @property
    def replaced(self) -> int:
        """Workers killed or found dead and replaced (for tests and metrics)."""
        return self._pool.replaced

    def run(self, jobs: Sequence[Job], timeout: float) -> list[Output | Failure]:
        """Read ``jobs`` one after another on one worker within ``timeout`` seconds in all.

        Returns one result per job, in order: the worker's ``Output``, or a ``Failure``
        saying why the job was not read. Never raises because of what is in the jobs.
        """
        deadline = time.monotonic() + timeout
        results: list[Output | Failure] = []
        if self._pool.closed:
            return [Failure("extraction is shut down")] * len(jobs)
        w = self._pool.acquire(deadline)
        if w is None:
            return [Failure("no extraction worker free within the time budget")] * len(jobs)
        n_messages = 0
        message_bytes = 0
        try:
            for job in jobs:
                left = deadline - time.monotonic()
                if left <= 0:
                    results.append(Failure("over the time budget"))
                    continue
                result = self._one(w, job, left)
                if isinstance(result, Output) and result.messages:
                    n_messages += len(result.messages)
                    message_bytes += sum(len(raw) for _name, raw in result.messages)
                    if n_messages > MAIL_MAX_MESSAGES or message_bytes > MAIL_MAX_MESSAGE_BYTES:
                        result = Failure("more mail inside the attachments than the limit")
                results.append(result)
                if isinstance(result, Failure) and result.detail.startswith("worker "):
                    self._pool.retire(w)
                    nxt = self._pool.acquire(deadline)
                    if nxt is None:
                        rest = len(jobs) - len(results)
                        results += [Failure("over the time budget")] * rest
                        return results
                    w = nxt
        except BaseException:
            self._pool.retire(w)  # a half-finished exchange: this worker's pipe is out of step
            raise
        self._pool.release(w)
        return results

    def _one(self, w: Worker, job: Job, left: float) -> Output | Failure:
        deadline = time.monotonic() + left
        try:
            w.conn.send((job.name, job.content_type, job.transfer_encoding, job.charset))
            send_frame(w.conn, job.body, deadline)
            if not w.conn.poll(max(0.0, deadline - time.monotonic())):
                return Failure(f"worker killed: over the time budget ({left:.1f}s left)")
            return decode_result(w.conn, self.limits, deadline)
        except TimeoutError:  # an answer begun and not finished: the worker is replaced
            return Failure(f"worker killed: answer not finished within the budget ({left:.1f}s)")
        except (EOFError, OSError):
            code = w.exitcode(0.5)
            return Failure(f"worker died (exit {code}) while reading it")
        except ValueError as exc:  # not our protocol: the worker is not to be trusted again
            return Failure(f"worker answered nonsense: {exc}"[:200])

    def close(self) -> None:
        self._pool.close()

    def pids(self) -> list[int]:
        return self._pool.pids()
