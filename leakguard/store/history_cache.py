"""An in-memory cache of ``SqlStore.sender_history`` (issue 11).

Reading a sender's history through SQLAlchemy's async layer costs about 1 ms of the event
loop's time per message, for rows that change only when that sender's mail is recorded.

- **Written through.** ``record_sent_many`` adds what it wrote to the entries of the
  senders it wrote, after its commit (``merge``); a read of a sender that was running while
  a write of that sender committed does not store its (possibly older) rows (each sender's
  last write generation is compared). In one process the cache is therefore never behind
  the table. (Dropping the entry instead made a busy sender with a long history read it
  again after every write: 20,000 rows, 10 ms, and a read that overlapped the next write
  was not kept, so every mail read it: issue 11, stop 18.)
- **Short TTL across processes.** Other processes or hosts sharing the store write without
  telling this one, so an entry is used for ``ttl`` seconds at most (and for the time of
  one read after that, while the read that refreshes it runs). The history only
  grows (nothing deletes from ``sent_history``), so a stale entry can only *lack*
  recipients written to in the last seconds elsewhere: ``first_time_external_recipients``
  may then count such a recipient as new (more protective, never a missed one), and a
  contact's name learnt in those seconds is not yet used for ``name_similar_recipients``
  (the same as the delivery's own batching of history writes, which already delays them
  by up to a second).
- **One read at a time.** Concurrent mails of a sender whose entry is missing share one
  read; when the entry is only older than ``ttl``, they get it while that read runs (20
  sessions of one sender with 20,000 recipients used to start 20 reads at once).
- **Bounded.** At most ``max_senders`` senders and ``max_rows`` cached recipients in all,
  least recently used dropped first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable

History = tuple[frozenset[str], dict[str, tuple[str, ...]]]

HISTORY_TTL_SECONDS = 5.0


class HistoryCache:
    def __init__(
        self,
        *,
        ttl: float = HISTORY_TTL_SECONDS,
        max_senders: int = 4096,
        max_rows: int = 400_000,
    ) -> None:
        self.ttl = ttl
        self.max_senders = max_senders
        self.max_rows = max_rows
        self._entries: OrderedDict[str, tuple[float, History]] = OrderedDict()
        self._rows = 0
        self.generation = 0  # bumped by every write
        # the generation of each sender's last write (bounded: when cleared, ``_floor``
        # refuses every read begun before the clearing)
        self._written: dict[str, int] = {}
        self._floor = 0
        self.hits = 0
        self.misses = 0

    def get(self, sender_key: str) -> History | None:
        hit = self._entries.get(sender_key)
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            self.misses += 1
            return None
        self._entries.move_to_end(sender_key)
        self.hits += 1
        return hit[1]

    def get_stale(self, sender_key: str) -> History | None:
        """The entry however old (``SqlStore.sender_history`` serves it while a fresh read
        runs: it lacks at most what other processes wrote since it was read)."""
        hit = self._entries.get(sender_key)
        return None if hit is None else hit[1]

    def put(self, sender_key: str, value: History, *, generation: int) -> None:
        """Remember a value read when the write generation was ``generation``."""
        if generation < self._written.get(sender_key, self._floor) or self.ttl <= 0:
            return  # a write of this sender committed meanwhile: the rows may be older
        self._drop(sender_key)
        size = len(value[0]) + 1
        if size > self.max_rows:
            return
        self._entries[sender_key] = (time.monotonic(), value)
        self._rows += size
        while len(self._entries) > self.max_senders or self._rows > self.max_rows:
            _old, (_, v) = self._entries.popitem(last=False)
            self._rows -= len(v[0]) + 1

    def _wrote(self, sender_key: str) -> None:
        if len(self._written) >= 4 * self.max_senders:
            self._written.clear()
            self._floor = self.generation
        self._written[sender_key] = self.generation

    def invalidate(self, sender_keys: Iterable[str]) -> None:
        self.generation += 1
        for key in sender_keys:
            self._wrote(key)
            self._drop(key)

    def merge(self, written: Iterable[tuple[str, str, str]]) -> None:
        """After a committed write of ``(sender, recipient, display name)`` rows: add them
        to the entries of those senders (the newest name first, as a read orders them);
        a sender not cached stays uncached. The entry keeps its age (``ttl`` still bounds
        how long another process's writes can be missing)."""
        self.generation += 1
        per_sender: dict[str, list[tuple[str, str]]] = {}
        for sender, rcpt, name in written:
            per_sender.setdefault(sender, []).append((rcpt, name))
        for sender, rows in per_sender.items():
            self._wrote(sender)
            hit = self._entries.get(sender)
            if hit is None:
                continue
            at, (recipients, names) = hit
            new = {r for r, _ in rows} - recipients
            if new:
                recipients = recipients | new
            named = [(r, n) for r, n in rows if n]
            if named:
                names = dict(names)  # copied: readers may hold the old one
                for r, n in named:
                    names[r] = (n, *(x for x in names.get(r, ()) if x != n))
            self._entries[sender] = (at, (recipients, names))
            self._rows += len(new)
        while self._rows > self.max_rows and self._entries:  # still bounded
            _old, (_, v) = self._entries.popitem(last=False)
            self._rows -= len(v[0]) + 1

    def _drop(self, sender_key: str) -> None:
        old = self._entries.pop(sender_key, None)
        if old is not None:
            self._rows -= len(old[1][0]) + 1

    def __len__(self) -> int:
        return len(self._entries)
