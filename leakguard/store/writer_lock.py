"""One writer at a time across the processes sharing an SQLite file, handed over at once.

SQLite lets one connection write at a time. A second process's writer that finds the file
locked sleeps in SQLite's busy handler (1, 2, 5, 10, 15, 20, 25 ... 100 ms, however soon
the lock is free) and tries again. ``serve --workers 2`` under held mail had both store
threads writing all the time: 129 such sleeps in 8 s in one worker, and the second worker
added nothing to the held rate (116 holds/s, as one worker). Each process's store thread
now takes this lock, an ``flock`` on a file beside the database, around its write
transaction: the next writer waits at most ``_POLL_MAX`` after the lock is freed, and
SQLite's own lock is then always free.

The wait is a short poll (``LOCK_NB``) and not a blocking ``flock``, so that it can give
up: after ``timeout`` (the store's SQLite timeout) the transaction goes ahead without it,
and SQLite's busy handler decides as before (a writer holding the lock that long is stuck;
the kernel frees the lock of a process that died). A forked process opens the file again:
an inherited descriptor would share the parent's lock instead of excluding it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

_POLL_FIRST = 0.00005
_POLL_MAX = 0.001


class WriterLock:
    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout
        self._fd = -1
        self._pid = 0
        self.waits = 0  # acquisitions that found the lock held (tests, diagnostics)

    def _file(self) -> int:
        pid = os.getpid()
        if self._fd < 0 or self._pid != pid:
            # not closing the parent's descriptor in a forked child: it is the parent's
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = pid
        return self._fd

    def acquire(self) -> bool:
        """Wait for the lock (True), or give up after ``timeout`` (False)."""
        try:
            fd = self._file()
        except OSError:  # not ours to open (another user's CLI): SQLite's lock alone
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            self.waits += 1
        deadline = time.monotonic() + self.timeout
        pause = _POLL_FIRST
        while True:
            time.sleep(pause)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
            pause = min(_POLL_MAX, pause * 2)

    def release(self) -> None:
        if self._fd >= 0 and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        got = self.acquire()
        try:
            yield
        finally:
            if got:
                self.release()

    def close(self) -> None:
        if self._fd >= 0 and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = -1
