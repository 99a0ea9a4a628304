"""The writer lock that the processes sharing an SQLite file take around each write
transaction (``store/writer_lock.py``): exclusive across processes, handed over within a
millisecond or two of its release, bounded, and never shared with a forked child through
an inherited descriptor."""

from __future__ import annotations

import os
import time
from pathlib import Path

from leakguard.store.writer_lock import WriterLock


def _hold_in_child(lock: WriterLock, seconds: float) -> tuple[int, int]:
    """Fork a child that takes the lock, says so on a pipe, holds it ``seconds`` and
    exits. Returns (pid, read end)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            assert lock.acquire()
            os.write(w, b"1")
            time.sleep(seconds)
            lock.release()
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"1"
    return pid, r


def test_a_second_process_waits_and_gets_the_lock_soon_after_its_release(
    tmp_path: Path,
) -> None:
    lock = WriterLock(tmp_path / "db-writer.lock")
    pid, r = _hold_in_child(lock, 0.3)
    try:
        t0 = time.monotonic()
        assert lock.acquire()
        waited = time.monotonic() - t0
        released_at = 0.3
        assert waited >= released_at - 0.1  # it did wait for the child
        assert waited < released_at + 0.25  # and took it soon after (no 100 ms naps)
        assert lock.waits == 1
        lock.release()
    finally:
        os.waitpid(pid, 0)
        os.close(r)
        lock.close()


def test_a_holder_that_never_lets_go_is_given_up_on_after_the_timeout(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "db-writer.lock", timeout=0.2)
    pid, r = _hold_in_child(lock, 2.0)
    try:
        t0 = time.monotonic()
        assert not lock.acquire()  # SQLite's own lock and busy timeout decide from here
        assert 0.2 <= time.monotonic() - t0 < 1.5
        with lock.held():  # the context manager goes on without it, releases nothing
            pass
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(r)
    assert lock.acquire()  # the kernel freed the dead holder's lock
    lock.release()
    lock.close()


def test_a_forked_child_does_not_share_its_parents_lock(tmp_path: Path) -> None:
    """An inherited descriptor is the same open file: flock would let the child in while
    the parent holds the lock. The child opens the file again and is kept out."""
    lock = WriterLock(tmp_path / "db-writer.lock", timeout=0.2)
    assert lock.acquire()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        got = lock.acquire()
        os.write(w, b"1" if got else b"0")
        os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 1) == b"0"
    finally:
        os.waitpid(pid, 0)
        os.close(r)
        lock.release()
        lock.close()


def test_a_lock_file_that_cannot_be_opened_leaves_it_to_sqlite(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "missing-dir" / "db-writer.lock")
    assert not lock.acquire()
    with lock.held():
        pass
    lock.release()  # nothing held: harmless
    lock.close()
