"""Killable worker processes, shared by attachment extraction and the content steps.

``concurrent.futures.ProcessPoolExecutor`` cannot stop a task that hangs (a loop inside C
code) and breaks the whole pool when a worker dies. A ``WorkerPool`` here keeps one socket
per worker and hands a worker one job at a time; the caller waits on the socket with the
time left in its budget. A worker that does not answer in time is killed (SIGKILL) and
replaced; one that dies (segfault, ``os._exit``, the kernel's OOM killer) is replaced too.
The caller then fails closed: the relay never goes down with a worker.

Two ways to start a worker: a fresh interpreter (``python -m MODULE FD``, what extraction
uses) or a child of ``multiprocessing``'s fork server with the step modules preloaded
(``forkserver_worker``, what the content steps of ``leakguard.stepproc`` use: a replacement
starts in milliseconds). Either way the worker shares no memory with the relay.

Answers come back as JSON and raw byte frames, never as pickles, each read with a size
limit and a deadline: a worker that hostile content took over cannot run code in the relay
by what it answers, nor hold a relay thread or its memory.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import queue
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

# --------------------------------------------------------------------------- frames


def _recv_exact(conn: multiprocessing.connection.Connection, n: int, deadline: float) -> bytes:
    """``n`` bytes from the pipe, never waiting past ``deadline`` (TimeoutError then)."""
    fd = conn.fileno()
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0 or not conn.poll(left):
            raise TimeoutError("the worker did not finish its answer in time")
        chunk = os.read(fd, min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def send_frame(
    conn: multiprocessing.connection.Connection, data: bytes | memoryview, deadline: float
) -> None:
    """``conn.send_bytes(data)`` that gives up (TimeoutError) at ``deadline``: a worker that
    stops reading its pipe cannot hold a relay thread either."""
    view = memoryview(data).cast("B")
    n = len(view)
    header = struct.pack("!i", n) if n <= 0x7FFFFFFF else struct.pack("!iQ", -1, n)
    fd = conn.fileno()
    waiter = select.poll()  # not select.select: a busy relay has descriptors past 1024
    waiter.register(fd, select.POLLOUT)
    os.set_blocking(fd, False)
    try:
        for part in (memoryview(header), view):
            sent = 0
            while sent < len(part):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the worker did not read its job in time")
                try:
                    sent += os.write(fd, part[sent : sent + (1 << 20)])
                except BlockingIOError:
                    waiter.poll(max(1, int(min(left, 1.0) * 1000)))
    finally:
        os.set_blocking(fd, True)


def recv_frame(
    conn: multiprocessing.connection.Connection, max_bytes: int, deadline: float
) -> bytes:
    """One ``multiprocessing.connection`` frame (``send_bytes`` framing: a big-endian 4-byte
    length, -1 then an 8-byte length for large ones), read within ``deadline`` and refused
    (ValueError) over ``max_bytes``: a worker that announces a frame and stalls, or sends a
    huge one, cannot hold a relay thread or its memory."""
    (size,) = struct.unpack("!i", _recv_exact(conn, 4, deadline))
    if size == -1:
        (size,) = struct.unpack("!Q", _recv_exact(conn, 8, deadline))
    if size < 0 or size > max_bytes:
        raise ValueError(f"frame of {size} bytes, over the limit of {max_bytes}")
    return _recv_exact(conn, size, deadline)


def set_memory_limit(memory_bytes: int) -> None:
    """Limit this (worker) process's address space: a runaway allocation then ends in
    ``MemoryError`` or the worker's death, never in the relay's."""
    import resource

    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


# --------------------------------------------------------------------------- workers


class _Process(Protocol):
    @property
    def pid(self) -> int | None: ...

    def kill(self) -> None: ...


class Worker:
    """One worker process and the relay's end of its socket."""

    def __init__(
        self,
        proc: _Process,
        conn: multiprocessing.connection.Connection,
        wait: Callable[[float], int | None],
    ) -> None:
        self.proc = proc
        self.conn = conn
        self._wait = wait

    @property
    def pid(self) -> int:
        return self.proc.pid or 0

    def exitcode(self, wait: float) -> int | None:
        """The exit code, waiting at most ``wait`` seconds; None while it runs."""
        return self._wait(wait)

    def alive(self) -> bool:
        return self.exitcode(0) is None

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.exitcode(2)
        with contextlib.suppress(Exception):
            self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()  # the worker's recv() ends with EOFError and it exits
        if self.exitcode(1) is None:
            self.kill()


def interpreter_worker(module: str, settings: object) -> Worker:
    """``python -m MODULE FD``: a fresh interpreter on one end of a socket pair, sent
    ``settings`` (pickled by the relay, read by the worker) before its first job.

    It shares nothing with the relay (no inherited locks, sockets or memory), and never
    re-imports the caller's ``__main__`` as the spawn and forkserver methods do.
    """
    parent, child = socket.socketpair()
    try:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", module, str(child.fileno())],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C is the parent's business
            close_fds=True,
        )
    finally:
        child.close()
    conn = multiprocessing.connection.Connection(parent.detach())
    conn.send(settings)

    def wait(seconds: float) -> int | None:
        try:
            return proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return None

    return Worker(proc, conn, wait)


_preload_lock = threading.Lock()


def forkserver_worker(
    target: Callable[..., None], args: tuple[Any, ...], preload: Sequence[str]
) -> Worker:
    """A child of ``multiprocessing``'s fork server running ``target(sock, *args)``.

    The fork server (one per relay process, started on first use) imports ``preload``
    once; each worker is a fork of it, so a replacement starts in milliseconds and the
    preloaded modules' memory is shared copy-on-write. Blocks while the fork server starts
    (about a second, once): call it off the event loop.
    """
    ctx = start_forkserver(preload)
    parent, child = socket.socketpair()
    try:
        proc = ctx.Process(target=target, args=(child, *args), daemon=True, name="leakguard-step")
        proc.start()
    finally:
        child.close()
    conn = multiprocessing.connection.Connection(parent.detach())

    def wait(seconds: float) -> int | None:
        proc.join(seconds)
        return proc.exitcode

    return Worker(proc, conn, wait)


def start_forkserver(preload: Sequence[str]) -> multiprocessing.context.ForkServerContext:
    """Start this process's fork server with ``preload`` imported (if not running yet).

    ``__main__`` is preloaded too, so that it is imported once in the fork server, not in
    every worker; a program that uses these workers must guard its main code with
    ``if __name__ == "__main__":``, as ``multiprocessing`` requires.
    """
    ctx = multiprocessing.get_context("forkserver")
    with _preload_lock:
        from multiprocessing import forkserver

        if getattr(forkserver._forkserver, "_forkserver_pid", None) is None:
            ctx.set_forkserver_preload(["__main__", *preload])
        forkserver.ensure_running()
    return ctx


def forget_forkserver_after_fork() -> None:
    """In a child of ``os.fork`` (``serve --workers N``): forget a fork server the parent
    started, so that this process starts its own and never shares the parent's workers."""
    with contextlib.suppress(Exception):
        from multiprocessing import forkserver

        fs = forkserver._forkserver
        alive = getattr(fs, "_forkserver_alive_fd", None)
        if alive is not None:
            with contextlib.suppress(OSError):
                os.close(alive)
        vars(fs).update(_forkserver_address=None, _forkserver_alive_fd=None, _forkserver_pid=None)


class WorkerPool:
    """Idle workers to take one at a time; dead and killed ones are replaced."""

    def __init__(self, size: int, factory: Callable[[], Worker], *, start: bool = True) -> None:
        self.size = max(1, size)
        self._factory = factory
        self._idle: queue.Queue[Worker] = queue.Queue()
        self._all: set[Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._started = False
        self.replaced = 0  # workers killed or found dead and replaced (for tests and metrics)
        if start:
            self.start()

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self) -> None:
        """Start the workers (once; blocking: call off the event loop)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        for _ in range(self.size):
            self._spawn()

    def _spawn(self) -> None:
        w = self._factory()
        with self._lock:
            if self._closed:
                w.stop()
                return
            self._all.add(w)
        self._idle.put(w)

    def acquire(self, deadline: float) -> Worker | None:
        """An idle, live worker, waiting until ``deadline`` at most; None if none came."""
        self.start()
        while True:
            try:
                w = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if w.proc.pid and w.alive():
                return w
            self.retire(w)  # died while idle (e.g. the OOM killer)

    def release(self, w: Worker) -> None:
        self._idle.put(w)

    def retire(self, w: Worker) -> None:
        """Kill ``w`` (its pipe may be out of step, or it ran over) and start another."""
        w.kill()
        with self._lock:
            self._all.discard(w)
            closed = self._closed
            self.replaced += 1
        if not closed:
            self._spawn()

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
