"""Which mail any worker process sent on recently: a filter in memory shared by the workers.

``serve --workers N`` with SQLite: a client's retry of a mail already sent on may reach a
sibling worker, whose own memory never saw it. The decision journal knows (the relay asks
it, ``Relay._sent_before``), but asking costs about a millisecond of the event loop for
every mail, retry or not. This filter answers first, in microseconds: "no worker sent this
on within the retry window" (then the journal is not asked) or "maybe" (then it is).

A Bloom filter with one byte per position (a byte store is atomic, so two workers setting
positions side by side never undo each other) in an anonymous shared mapping that the
parent makes before forking. Three generations of ``window`` seconds each: keys go into the
current one, lookups read the current and the previous one, so a key is found for at least
``window`` seconds. A generation is cleared when it is reused, under a file lock (``flock``:
released by the kernel if the holder dies). Whenever a generation is not what it should be
(the lock was not had in time), the answer is "maybe": the filter can make the relay ask
the journal more often, never less.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
import time
from collections.abc import Sequence
from pathlib import Path

_GENS = 3
_HASHES = 3
# int64s: the generation each slot holds (-1: none yet), then the last generation in which
# an add failed (its lookups all say "maybe")
_UNSURE = 8 * _GENS
_HEADER = _UNSURE + 8


class SentFilter:
    def __init__(self, window: float, lock_path: Path, slots: int = 1 << 20) -> None:
        if slots & (slots - 1):
            raise ValueError("slots must be a power of two")
        self.window = max(1.0, float(window))
        self.slots = slots
        self.lock_path = lock_path
        self._mask = slots - 1
        self._map = mmap.mmap(-1, _HEADER + _GENS * slots)  # MAP_SHARED: survives fork
        for g in range(_GENS):
            struct.pack_into("<q", self._map, 8 * g, -1)
        struct.pack_into("<q", self._map, _UNSURE, -1)
        self._lock_fd = -1
        self._lock_pid = 0

    # ------------------------------------------------------------------ public

    def add(self, key: Sequence[str]) -> None:
        gen = self._gen()
        if not self._ready(gen):
            struct.pack_into("<q", self._map, _UNSURE, gen)  # lookups now say "maybe"
            return
        base = _HEADER + (gen % _GENS) * self.slots
        m = self._map
        for pos in self._positions(key):
            m[base + pos] = 1

    def maybe(self, key: Sequence[str]) -> bool:
        """False only when no worker added ``key`` within the last ``window`` seconds."""
        gen = self._gen()
        if int(struct.unpack_from("<q", self._map, _UNSURE)[0]) >= gen - 1:
            return True  # an add of this window failed: cannot rule anything out
        positions = self._positions(key)
        m = self._map
        for g in (gen, gen - 1):
            stamp = self._stamp(g % _GENS)
            if stamp < g:
                continue  # the slot holds an older generation: nothing was added in g
            if stamp > g:
                return True  # the clock went back: cannot rule it out
            base = _HEADER + (g % _GENS) * self.slots
            if all(m[base + p] for p in positions):
                return True
        return False

    # ------------------------------------------------------------------ private

    def _gen(self) -> int:
        return int(time.time() // self.window)

    def _stamp(self, slot: int) -> int:
        return int(struct.unpack_from("<q", self._map, 8 * slot)[0])

    def _positions(self, key: Sequence[str]) -> list[int]:
        h = hashlib.blake2b("\0".join(key).encode("utf-8", "surrogatepass"), digest_size=16)
        words = struct.unpack("<4I", h.digest())
        return [w & self._mask for w in words[:_HASHES]]

    def _ready(self, gen: int) -> bool:
        """Make sure the slot of ``gen`` holds ``gen`` (cleared first when it is reused)."""
        slot = gen % _GENS
        if self._stamp(slot) == gen:
            return True
        fd = self._lock()
        if fd < 0:
            return False
        try:
            if not _flock(fd, timeout=0.2):
                return False
            try:
                stamp = self._stamp(slot)
                if stamp == gen:
                    return True
                if stamp > gen:
                    return False  # the clock went back: leave it, answer "maybe"
                base = _HEADER + slot * self.slots
                self._map[base : base + self.slots] = bytes(self.slots)
                struct.pack_into("<q", self._map, 8 * slot, gen)
                return True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            return False

    def _lock(self) -> int:
        # one open file per process: flock excludes open files, and one opened before the
        # fork would be shared by every worker
        if self._lock_pid != os.getpid():
            with contextlib.suppress(OSError):
                self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                self._lock_pid = os.getpid()
        return self._lock_fd if self._lock_pid == os.getpid() else -1


def _flock(fd: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= end:
                return False
            time.sleep(0.001)
