"""An in-memory cache of ``SqlStore.sender_history`` (issue 11).

Reading a sender's history through SQLAlchemy's async layer costs about 1 ms of the event
loop's time per message, for rows that change only when that sender's mail is recorded.

- **Invalidated on write.** ``record_sent_many`` drops the entries of the senders it wrote,
  after its commit; a read that was running while a write committed does not store its
  (possibly older) rows (a write generation is compared). In one process the cache is
  therefore never behind the table.
- **Short TTL across processes.** Other processes or hosts sharing the store write without
  telling this one, so an entry is used for ``ttl`` seconds at most. The history only
  grows (nothing deletes from ``sent_history``), so a stale entry can only *lack*
  recipients written to in the last seconds elsewhere: ``first_time_external_recipients``
  may then count such a recipient as new (more protective, never a missed one), and a
  contact's name learnt in those seconds is not yet used for ``name_similar_recipients``
  (the same as the delivery's own batching of history writes, which already delays them
  by up to a second).
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

    def put(self, sender_key: str, value: History, *, generation: int) -> None:
        """Remember a value read when the write generation was ``generation``."""
        if generation != self.generation or self.ttl <= 0:
            return  # a write committed meanwhile: the rows read may be older than it
        self._drop(sender_key)
        size = len(value[0]) + 1
        if size > self.max_rows:
            return
        self._entries[sender_key] = (time.monotonic(), value)
        self._rows += size
        while len(self._entries) > self.max_senders or self._rows > self.max_rows:
            _old, (_, v) = self._entries.popitem(last=False)
            self._rows -= len(v[0]) + 1

    def invalidate(self, sender_keys: Iterable[str]) -> None:
        self.generation += 1
        for key in sender_keys:
            self._drop(key)

    def _drop(self, sender_key: str) -> None:
        old = self._entries.pop(sender_key, None)
        if old is not None:
            self._rows -= len(old[1][0]) + 1

    def __len__(self) -> int:
        return len(self._entries)
