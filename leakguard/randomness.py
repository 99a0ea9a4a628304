"""Random bytes for identifiers and hold tokens, without a system call each.

``secrets.token_bytes`` is ``os.urandom``: a ``getrandom`` call that lets go of the GIL. On
the event loop (a decision id for every mail; a hold id and two notice tokens for every
hold) letting go of the GIL is the expensive part, not the call: a busy decision or notice
thread takes it, and the loop, which every SMTP session waits on, waits up to the switch
interval (1 ms) to have it back. Hashing a few kilobytes with ``hashlib`` does the same
(``sha256_small`` below).

So bytes from the kernel's generator are read 4 KiB at a time and handed out in order,
each byte once. They are as unpredictable as ``os.urandom``'s (they are ``os.urandom``'s).
A forked worker drops what its parent had read before the fork (``register_at_fork``):
two processes never hand out the same bytes. A lock makes it safe from any thread.
"""

from __future__ import annotations

import hashlib
import os
import threading

_CHUNK = 4096
# hashlib lets go of the GIL for inputs of 2,048 bytes and more (HASHLIB_GIL_MINSIZE)
_GIL_KEPT = 2047


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buf = b""
        self._pos = 0

    def take(self, n: int) -> bytes:
        if n > _CHUNK // 4:
            return os.urandom(n)
        with self._lock:
            if self._pos + n > len(self._buf):
                self._buf = os.urandom(_CHUNK)
                self._pos = 0
            out = self._buf[self._pos : self._pos + n]
            self._pos += n
            return out

    def forget(self) -> None:
        """After a fork, in the child: the parent's bytes are the parent's. A new lock too
        (the parent's may have been held by another of its threads at the fork)."""
        self._lock = threading.Lock()
        self._buf = b""
        self._pos = 0


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.forget)


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the kernel's random generator (as ``secrets.token_bytes``)."""
    return _pool.take(n)


def sha256_small(data: bytes) -> str:
    """SHA-256 (hex) of a few kilobytes, computed without letting go of the GIL (see the
    module docstring): for the event loop. Big inputs belong in a worker thread."""
    h = hashlib.sha256()
    view = memoryview(data)
    for i in range(0, len(view), _GIL_KEPT):
        h.update(view[i : i + _GIL_KEPT])
    return h.hexdigest()
