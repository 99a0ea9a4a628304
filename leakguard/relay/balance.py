"""Connections shared out evenly among the worker processes (issue 11, "Both cores in use").

``serve --workers N`` forks N workers that all accept on the one listening socket the parent
bound. Every waiting worker is woken for a new connection, and the event loop of whichever
runs first accepts *every* connection waiting in the queue, not one (libuv's and asyncio's
accept loops both drain it). Connections that arrive together, which is how a front MTA or
an in-house system opens its pool of long-lived connections, so land on one worker: 19 of
20 on one process was measured, and that process then did all the work on one core, with a
p99 latency of 103 ms against 15 ms when the same 20 connections were split 11 and 9.

So each worker accepts itself, from ``BalancedServer`` below, and looks first at the
``LoadBoard``: one integer per worker in an anonymous shared mapping the parent made before
forking, the worker's open connections (accepted and not yet closed). A worker that has more
of them than the least loaded live sibling steps aside for ``DEFER_SECONDS``: it stops
watching the socket so that the sibling, woken for the same connection, takes it; if the
sibling has not taken it by then (it is busy, or stuck), this worker accepts it after all,
so no connection waits longer than that for a busy sibling. A worker accepts one connection
per turn while it is the busier one, and at most ``ACCEPT_BATCH`` otherwise.

The board needs no lock: each worker writes only its own slot (an aligned eight-byte store,
which no reader sees half-written), and a stale reading of a sibling's count only makes one
connection go to the slightly busier worker. The parent marks a dead worker's slot ``DEAD``
(its siblings then do not wait for it), and a worker writes its count when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import mmap
import socket
import struct
from collections.abc import Callable
from typing import Any

DEAD = -1
# How long a busier worker leaves a new connection to a less loaded sibling. The sibling's
# event loop may first have to win its own GIL back from a decision (1 ms switch interval).
DEFER_SECONDS = 0.003
ACCEPT_BATCH = 16  # connections accepted in one turn by a worker that is not the busier one
# Past the process's open-file limit (EMFILE) the listening socket stays readable: stop
# watching it for a while instead of spinning (asyncio does the same, for one second).
ACCEPT_RETRY_SECONDS = 1.0
_SLOT = struct.Struct("<q")


class LoadBoard:
    """Open connections per worker, shared by the worker processes (made before fork)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self._map = mmap.mmap(-1, _SLOT.size * workers)  # MAP_SHARED: survives fork
        for i in range(workers):
            self.set(i, DEAD)

    def set(self, index: int, connections: int) -> None:
        _SLOT.pack_into(self._map, _SLOT.size * index, connections)

    def get(self, index: int) -> int:
        return int(_SLOT.unpack_from(self._map, _SLOT.size * index)[0])

    def mark_dead(self, index: int) -> None:
        self.set(index, DEAD)

    def least_of_others(self, index: int) -> int | None:
        """The fewest open connections of a live worker other than ``index`` (None: none)."""
        least: int | None = None
        for i in range(self.workers):
            if i == index:
                continue
            n = self.get(i)
            if n != DEAD and (least is None or n < least):
                least = n
        return least


class WorkerLoad:
    """This worker's open connections, as its siblings see them on the board: connections
    being set up (``pending``: accepted, TLS handshake not finished) and open ones
    (``active``, counted by the listeners)."""

    def __init__(self, board: LoadBoard, index: int) -> None:
        self.board = board
        self.index = index
        self.pending = 0
        self.active = 0
        self.publish()

    def publish(self) -> None:
        self.board.set(self.index, self.pending + self.active)

    def opened(self) -> None:
        self.active += 1
        self.publish()

    def closed(self) -> None:
        self.active -= 1
        self.publish()

    def busier_than_siblings(self) -> bool:
        least = self.board.least_of_others(self.index)
        return least is not None and self.pending + self.active > least


class BalancedServer:
    """An accept loop on an inherited listening socket that leaves new connections to a
    less loaded sibling worker (module docstring). Offers what the service uses of
    ``asyncio.Server``: ``sockets``, ``close``, ``wait_closed``, ``is_serving``."""

    def __init__(
        self,
        sock: socket.socket,
        factory: Callable[[], asyncio.Protocol],
        load: WorkerLoad,
        *,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        log: Any = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._fd = sock.fileno()
        self._factory = factory
        self._load = load
        self._tls: dict[str, Any] = (
            {"ssl": ssl, "ssl_handshake_timeout": ssl_handshake_timeout} if ssl else {}
        )
        self._log = log
        self._watching = False
        self._serving = False
        self._timer: asyncio.TimerHandle | None = None
        self._setups: set[asyncio.Task[None]] = set()
        self.deferred = 0  # connections left to a sibling first (tests, diagnostics)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._sock,) if self._serving else ()

    def is_serving(self) -> bool:
        return self._serving

    def start(self) -> None:
        self._sock.setblocking(False)
        self._serving = True
        self._watch()

    def close(self) -> None:
        """Stop accepting (the socket is the parent's: it stays open for the siblings)."""
        self._serving = False
        self._unwatch()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def wait_closed(self) -> None:
        if self._setups:
            await asyncio.wait(list(self._setups))

    # ------------------------------------------------------------------ accepting

    def _watch(self) -> None:
        if not self._watching and self._serving:
            self._loop.add_reader(self._fd, self._ready)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._loop.remove_reader(self._fd)
            self._watching = False

    def _pause(self, seconds: float, then: Callable[[], None]) -> None:
        self._unwatch()
        self._timer = self._loop.call_later(seconds, then)

    def _ready(self) -> None:
        if self._load.busier_than_siblings():
            self.deferred += 1
            self._pause(DEFER_SECONDS, self._after_deferral)
            return
        self._accept(ACCEPT_BATCH)

    def _after_deferral(self) -> None:
        """The sibling had its chance: whatever still waits is accepted here."""
        self._timer = None
        if not self._serving:
            return
        self._watch()
        self._accept(1, force=True)

    def _resume(self) -> None:
        self._timer = None
        self._watch()

    def _accept(self, batch: int, force: bool = False) -> None:
        load = self._load
        for n in range(batch):
            if n and load.busier_than_siblings():
                return  # the next one is the sibling's, unless it leaves it (next turn)
            try:
                conn, _addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.ECONNRESET):
                    continue  # the client gave up while queued
                if self._log is not None:
                    self._log.error("accept_failed", error=repr(exc)[:200])
                self._pause(ACCEPT_RETRY_SECONDS, self._resume)  # EMFILE, ENFILE, ENOBUFS
                return
            conn.setblocking(False)
            load.pending += 1
            load.publish()
            task = self._loop.create_task(self._set_up(conn))
            self._setups.add(task)
            task.add_done_callback(self._setups.discard)
            if force:
                return

    async def _set_up(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn, **self._tls)
        except Exception as exc:  # a TLS handshake that failed or timed out, a reset
            with contextlib.suppress(OSError):
                conn.close()
            if self._log is not None:
                self._log.debug("connection_setup_failed", error=repr(exc)[:200])
        finally:
            self._load.pending -= 1
            self._load.publish()
