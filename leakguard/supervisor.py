"""``leakguard serve --workers N``: one parent, N worker processes on the same ports.

The parent (this module) is a pre-fork supervisor:

1. It loads the configuration and the policy and builds the engine once (its organisation
   indexes are built by the warm-up), prepares what every worker would otherwise race to
   create (the data directory, the store's schema, the web secret and retention key, the
   metrics directory), binds every listening socket (each SMTP listener and the web), calls
   ``gc.freeze()`` and forks. The workers share the engine's memory copy-on-write.
2. Each worker runs the ordinary ``Service`` on the inherited sockets; the kernel hands each
   new connection to one of the workers waiting in ``accept``.
3. The parent runs no event loop, no thread and holds no database connection, so it can
   fork again at any time: a worker that dies is started again (backoff 1 s doubling to
   30 s, back to 1 s after a minute of life). SIGTERM/SIGINT: every worker stops
   gracefully, then the parent exits. SIGHUP: the parent loads the new policy itself first;
   if it is invalid nobody is signalled (every worker keeps the running policy, and their
   ``/healthz`` says "degraded" because the files differ from the policy in force); if it is
   valid every worker is sent SIGHUP and reloads.
4. systemd: the parent sends READY=1 when every worker is serving, and watchdog pings only
   while every worker's event loop has checked in recently (each worker writes a heartbeat
   to a pipe from its loop).

Worker 0 alone runs the once-per-service jobs (hold timers, journal pruning, the hourly
audit report); see docs/design-notes.md ("Several worker processes").
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import select
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leakguard import sdnotify
from leakguard.config import ServiceConfig, split_host_port

METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
HEALTHY_AFTER = 60.0  # a worker that ran this long restarts with the first backoff again
STOP_GRACE = 45.0  # SIGTERM to SIGKILL for workers that do not finish (systemd waits 60 s)
HEARTBEAT = 1.0  # seconds between a worker's heartbeats

_READY = b"R"
_BEAT = b"H"


def metrics_dir(config: ServiceConfig) -> Path:
    """Where workers keep their metric values (prometheus_client multiprocess mode)."""
    return config.data_path / "metrics"


def use_metrics_dir(config: ServiceConfig) -> Path:
    """Point prometheus_client at a fresh, private directory. Must run before anything
    imports prometheus_client (it picks its value store at import time)."""
    path = metrics_dir(config)
    os.environ[METRICS_ENV] = str(path)
    return path


def bind_socket(address: str) -> socket.socket:
    """A listening TCP socket for ``HOST:PORT`` (first address the resolver gives)."""
    host, port = split_host_port(address)
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _canon, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host in ("", "::"):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_all(config: ServiceConfig) -> dict[str, socket.socket]:
    """Every listening socket of the service, named as ``Service`` names them."""
    socks: dict[str, socket.socket] = {}
    try:
        for i, lc in enumerate(config.listeners):
            socks[f"{lc.kind}-{i}"] = bind_socket(lc.listen)
        socks["web"] = bind_socket(config.web.listen)
    except BaseException:
        for s in socks.values():
            s.close()
        raise
    return socks


@dataclass
class _Worker:
    index: int
    pid: int = 0
    pipe: int = -1  # read end of the worker's status pipe
    started: float = 0.0
    ready: bool = False
    last_beat: float = 0.0
    backoff: float = BACKOFF_FIRST
    restart_at: float | None = None
    restarts: int = 0


@dataclass
class Supervisor:
    config: ServiceConfig
    policy_path: Path
    org_path: Path | None
    engine: Any
    workers: int
    log: Any
    # run in the worker after fork: builds and runs the Service (tests may replace it)
    child_main: Callable[[Supervisor, int, int], int] | None = None
    sockets: dict[str, socket.socket] = field(default_factory=dict)
    sent_filter: Any = None  # made by prepare(), shared by the workers (anonymous mapping)
    load_board: Any = None  # made by prepare(): open connections per worker (relay/balance.py)

    def __post_init__(self) -> None:
        self._workers = [_Worker(i) for i in range(self.workers)]
        self._signals: list[int] = []
        self._wake_r = -1
        self._wake_w = -1
        self._stopping = False
        self._stop_deadline = 0.0
        self._announced = False
        self._failed_start = False
        self._watchdog = sdnotify.watchdog_interval()
        self._last_ping = 0.0

    # ------------------------------------------------------------------ preparing

    def prepare(self) -> None:
        """Everything that must exist once, before any worker starts."""
        from leakguard.service import (
            DataDirError,
            data_dir_problem,
            private_dir,
            private_sqlite_files,
            retention_key,
            web_secret,
        )

        cfg = self.config
        bad = data_dir_problem(cfg.data_path)
        if bad is not None:
            raise DataDirError(bad[0] + "\n" + bad[1])
        private_dir(cfg.data_path, self.log)
        mdir = metrics_dir(cfg)
        shutil.rmtree(mdir, ignore_errors=True)  # values of an earlier run are not ours
        mdir.mkdir(mode=0o700)
        web_secret(cfg)  # the workers would race to create them
        if cfg.retention.mode == "encrypted":
            retention_key(cfg)
        asyncio.run(self._prepare_store())  # schema created or upgraded once, not N times
        private_sqlite_files(cfg.store_url())
        _join_threads()  # fork with no thread but this one
        if cfg.store_url().startswith("sqlite"):
            # every relay sharing this store is a sibling: their shared memory of mail sent
            # on spares most journal lookups (relay/sent_filter.py)
            from leakguard.relay.actions import RelaySettings
            from leakguard.relay.sent_filter import SentFilter

            window = RelaySettings().retry_window
            self.sent_filter = SentFilter(window, cfg.data_path / "sent-filter.lock")
        self.sockets = bind_all(cfg)
        from leakguard.relay.balance import LoadBoard

        # each worker accepts only while no live sibling has fewer open connections
        self.load_board = LoadBoard(self.workers)

    async def _prepare_store(self) -> None:
        from leakguard.store import open_store

        store = await open_store(self.config.store_url())
        try:
            # Each worker puts back its own claims (``<node>:w<i>``) when it starts; what a
            # single-process run of this node left (claimed as ``<node>``) is put back here,
            # before any worker runs. Other nodes' and other workers' claims wait for the
            # lease (``delivery.stale_claim_after``): they may be in flight.
            n = await store.recover_deliveries(worker=self.config.node_identity())
            if n:
                self.log.info("queue_recovered", own=n, lease_expired=0, deliveries=n)
        finally:
            await store.close()

    # ------------------------------------------------------------------ running

    def run(self) -> int:
        """Fork the workers and supervise them until SIGTERM/SIGINT. Returns the exit code."""
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        old_wakeup = signal.set_wakeup_fd(self._wake_w)
        handlers = {}
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            handlers[sig] = signal.signal(sig, self._on_signal)
        gc.collect()
        gc.freeze()  # what the workers inherit stays shared: the collector will not touch it
        self.log.info("supervisor_started", workers=self.workers, listeners=sorted(self.sockets))
        try:
            for w in self._workers:
                self._spawn(w)
            return self._loop()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, h in handlers.items():
                signal.signal(sig, h)
            for s in self.sockets.values():
                s.close()
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._clean_metrics()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signals.append(signum)

    def _spawn(self, w: _Worker) -> None:
        r, wr = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.close(r)
                code = self._in_child(w.index, wr)
            except BaseException as exc:  # a worker never returns into the parent's code
                with contextlib.suppress(Exception):
                    print(f"worker {w.index}: {exc!r}", file=sys.stderr)
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        os.close(wr)
        os.set_blocking(r, False)
        w.pid, w.pipe, w.ready = pid, r, False
        w.started = w.last_beat = time.monotonic()
        w.restart_at = None
        self.log.info("worker_started", worker=w.index, pid=pid, restarts=w.restarts)

    def _in_child(self, index: int, pipe: int) -> int:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        for fd in (self._wake_r, self._wake_w, *(x.pipe for x in self._workers)):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        for var in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            os.environ.pop(var, None)  # the parent speaks to systemd, not the workers
        os.set_blocking(pipe, False)
        if self.child_main is not None:
            return self.child_main(self, index, pipe)
        return run_worker(self, index, pipe)

    def _loop(self) -> int:
        while True:
            self._handle_signals()
            self._reap()
            if self._failed_start:
                self._stop_all()
            if self._stopping:
                if not any(w.pid for w in self._workers):
                    self.log.info("supervisor_stopped")
                    return 1 if self._failed_start else 0
                if time.monotonic() > self._stop_deadline:
                    for w in self._workers:
                        if w.pid:
                            self.log.warning("worker_killed", worker=w.index, pid=w.pid)
                            with contextlib.suppress(ProcessLookupError):
                                os.kill(w.pid, signal.SIGKILL)
                    self._stop_deadline = time.monotonic() + 5
            else:
                now = time.monotonic()
                for w in self._workers:
                    if not w.pid and w.restart_at is not None and now >= w.restart_at:
                        w.restarts += 1
                        self._spawn(w)
            self._read_pipes(0.5)
            self._tell_systemd()

    def _read_pipes(self, timeout: float) -> None:
        fds = [w.pipe for w in self._workers if w.pipe >= 0] + [self._wake_r]
        try:
            readable, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            return
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError, OSError):
                os.read(self._wake_r, 512)
        now = time.monotonic()
        for w in self._workers:
            if w.pipe < 0 or w.pipe not in readable:
                continue
            try:
                data = os.read(w.pipe, 512)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:  # the worker closed it (exited): waitpid tells how
                os.close(w.pipe)
                w.pipe = -1
                continue
            w.last_beat = now
            if _READY in data and not w.ready:
                w.ready = True
                self.log.info("worker_ready", worker=w.index, pid=w.pid)

    def _tell_systemd(self) -> None:
        live = [w for w in self._workers if w.pid]
        all_ready = len(live) == self.workers and all(w.ready for w in live)
        if all_ready and not self._announced and not self._stopping:
            self._announced = True
            ports = sorted(s.getsockname()[1] for s in self.sockets.values())
            pids = [w.pid for w in live]
            self.log.info("workers_ready", workers=self.workers, pids=pids)
            sdnotify.notify(
                f"READY=1\nSTATUS=serving: {self.workers} workers, ports {ports}"
                f"\nMAINPID={os.getpid()}"
            )
        if self._watchdog is None or self._stopping or not self._announced:
            return
        now = time.monotonic()
        fresh = all(now - w.last_beat < max(3 * HEARTBEAT, self._watchdog) for w in live)
        if fresh and now - self._last_ping >= self._watchdog:
            self._last_ping = now
            sdnotify.notify("WATCHDOG=1")

    def _handle_signals(self) -> None:
        while self._signals:
            sig = self._signals.pop(0)
            if sig in (signal.SIGTERM, signal.SIGINT):
                if not self._stopping:
                    self.log.info("supervisor_stopping", signal=signal.Signals(sig).name)
                    self._stop_all()
            elif sig == signal.SIGHUP and not self._stopping:
                self.reload()

    def _stop_all(self) -> None:
        if not self._stopping:
            self._stopping = True
            self._stop_deadline = time.monotonic() + STOP_GRACE
            sdnotify.notify("STOPPING=1")
            for s in self.sockets.values():  # no new connection waits in our backlog
                s.close()
        for w in self._workers:
            w.restart_at = None
            if w.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signal.SIGTERM)

    def reload(self) -> bool:
        """SIGHUP: validate the new policy here; signal every worker only when it loads."""
        try:
            self.engine.reload()
        except Exception as exc:
            self.log.error(
                "supervisor_reload_failed",
                error=str(exc)[:2000],
                msg="no worker was signalled: every worker keeps the running policy",
            )
            return False
        gc.freeze()  # workers started later inherit the new policy, shared as well
        pids = [w.pid for w in self._workers if w.pid]
        self.log.info("supervisor_reloaded", policy=str(self.policy_path), pids=pids)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)
        return True

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            w = next((x for x in self._workers if x.pid == pid), None)
            self._mark_dead(pid)
            if w is None:
                continue  # not a worker (e.g. an extraction process reparented to us)
            if self.load_board is not None:
                self.load_board.mark_dead(w.index)  # its siblings stop leaving it connections
            code = os.waitstatus_to_exitcode(status)
            w.pid = 0
            w.ready = False
            if w.pipe >= 0:
                with contextlib.suppress(OSError):
                    os.close(w.pipe)
                w.pipe = -1
            if self._stopping:
                self.log.info("worker_stopped", worker=w.index, pid=pid, exit_code=code)
                continue
            if not self._announced:
                # a worker that cannot start (port, store, TLS files): stop, as one process would
                self.log.error("worker_start_failed", worker=w.index, pid=pid, exit_code=code)
                self._failed_start = True
                continue
            lived = time.monotonic() - w.started
            if lived >= HEALTHY_AFTER:
                w.backoff = BACKOFF_FIRST
            w.restart_at = time.monotonic() + w.backoff
            self.log.warning(
                "worker_exited",
                worker=w.index,
                pid=pid,
                exit_code=code,
                restart_in=w.backoff,
            )
            w.backoff = min(BACKOFF_MAX, w.backoff * 2)

    def _mark_dead(self, pid: int) -> None:
        path = os.environ.get(METRICS_ENV)
        if not path:
            return
        from prometheus_client import multiprocess

        with contextlib.suppress(Exception):
            multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]

    def _clean_metrics(self) -> None:
        path = os.environ.get(METRICS_ENV)
        if path and Path(path) == metrics_dir(self.config):
            shutil.rmtree(path, ignore_errors=True)


def _join_threads(timeout: float = 5.0) -> None:
    """Wait for helper threads that are ending (the store driver's, the default executor's)."""
    for t in threading.enumerate():
        if t is not threading.current_thread() and t.is_alive():
            t.join(timeout)


def run_worker(sup: Supervisor, index: int, pipe: int) -> int:
    """A worker: the ordinary Service on the parent's sockets, reporting to ``pipe``."""
    import structlog

    from leakguard.logging import get_logger
    from leakguard.service import Service

    structlog.contextvars.bind_contextvars(worker=index, pid=os.getpid())
    service = Service(
        config=sup.config,
        policy_path=sup.policy_path,
        org_path=sup.org_path,
        engine=sup.engine,
        log=get_logger("leakguard"),
        worker_index=index,
        workers=sup.workers,
        listen_sockets=sup.sockets,
        sent_filter=sup.sent_filter,
        load_board=sup.load_board,
    )

    def tell(what: bytes) -> None:
        try:
            os.write(pipe, what)
        except BlockingIOError:
            pass  # the parent is behind: a missed heartbeat is harmless
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    beats: list[asyncio.Task[None]] = []

    async def heartbeat() -> None:
        while True:
            tell(_BEAT)
            await asyncio.sleep(HEARTBEAT)

    def ready(_svc: Service) -> None:
        tell(_READY)
        beats.append(asyncio.get_running_loop().create_task(heartbeat(), name="heartbeat"))

    from leakguard.runtime import run as run_loop

    run_loop(service.run(ready=ready), sup.config.event_loop)
    return 0
