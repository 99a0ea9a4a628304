"""``SqlStore``: the ``Store`` protocol over SQLAlchemy Core (async).

SQLite (aiosqlite, WAL, ``synchronous=FULL``) is the embedded default; PostgreSQL
(asyncpg) runs the same code when several relays share holds. The busiest transactions are
written as synchronous bodies (``_run_tx``/``_run_read``): on SQLite they run in the
store's own thread on ``sqlite3``, one hand-off per transaction; on PostgreSQL through
``run_sync``. Every public method runs in
one transaction and has committed when it returns, so an acknowledged message survives a
crash (DESIGN §4).

Concurrency: SQLite serialises writers; to avoid ``database is locked`` upgrades inside
one process every write transaction takes an in-process lock first. Delivery claims are a
compare-and-set (``UPDATE ... WHERE state='queued'``) so two workers — in one process or on
two nodes sharing PostgreSQL — never claim the same delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from leakguard.holds.model import (
    DeliveryRecord,
    DeliveryState,
    HoldRecord,
    HoldState,
    TokenRecord,
    Transition,
    Via,
)
from leakguard.randomness import sha256_small
from leakguard.store import migrate
from leakguard.store import schema as t
from leakguard.store.blobs import BLOB_STREAM_MIN, insert_streaming_blob
from leakguard.store.history_cache import History, HistoryCache
from leakguard.store.journal import Journal
from leakguard.store.threads import MAX_GROUPS, MAX_LOOKUP_IDS, ThreadEntry, bounded, message_id_key
from leakguard.store.writer_lock import WriterLock

T = TypeVar("T")

# Bounds on what one history lookup returns (hostile senders could write to millions).
_HISTORY_LIMIT = 20000
_NAME_LIMIT = 200


def _now() -> datetime:
    return datetime.now(UTC)


def sha256_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def retry_key(sha256: str, mail_from: str, rcpts: Sequence[str]) -> str:
    """One key for "the same bytes, sender and recipients" (retry recognition): the lookup
    reads the one matching hold, however often a sender repeats the same bytes to others."""
    envelope = "\0".join([sha256, mail_from, *sorted(r.lower() for r in rcpts)])
    return hashlib.sha256(envelope.encode("utf-8", "surrogateescape")).hexdigest()


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def _normalize_url(url: str) -> str:
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


class SqlStore:
    """Durable state for holds, tokens, the delivery queue and sender history."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock() if self._sqlite else None
        # SQLite in a file: the busiest transactions (holds, tokens, the delivery queue) run
        # as plain synchronous code in the store's own thread (``_run_tx``)
        self._sync_engine: sa.Engine | None = None
        self._sync_thread: ThreadPoolExecutor | None = None
        self._sync_pid = 0
        # the store thread's one connection, kept open (``_sync_connection``)
        self._sync_conn: sa.Connection | None = None
        # the writer lock the processes sharing an SQLite file take around each write
        # transaction (store/writer_lock.py); None elsewhere
        self._writer: WriterLock | None = None
        # write transactions waiting for the next group commit (``_group_write``)
        self._group: list[tuple[Callable[[sa.Connection], Any], asyncio.Future[Any]]] = []
        self._grouping = False
        self._group_tasks: set[asyncio.Task[None]] = set()
        # called (without arguments) after a delivery was queued and committed: the
        # delivery worker uses it to send notices and released mail at once
        self.on_enqueue: list[Callable[[], None]] = []
        # the officer's records: decision journal, retained mail, incidents (issue 9)
        self.journal = Journal(self)
        # sender_history in memory: written through, short TTL across processes
        self.history_cache = HistoryCache()
        self._history_reads: dict[str, asyncio.Future[Any]] = {}  # one read per sender

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(cls, url: str, *, create: bool = True, pool_size: int = 5) -> SqlStore:
        """Open the store at an SQLAlchemy URL, creating or upgrading its schema.

        ``sqlite:///path`` and ``postgresql://...`` are accepted as well as the explicit
        async driver forms. With ``create=False`` the schema is neither created nor
        upgraded: a store that is not at this release's revision is refused.
        """
        url = _normalize_url(url)
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            path = url.split(":///", 1)[1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_size"] = pool_size
            kwargs["pool_pre_ping"] = True
        engine = create_async_engine(url, **kwargs)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if store._sqlite and ":memory:" not in url and url.split(":///", 1)[1]:
            sync = sa.create_engine(
                url.replace("sqlite+aiosqlite:", "sqlite+pysqlite:", 1),
                connect_args={"timeout": 30, "check_same_thread": False},
            )
            event.listen(sync, "connect", _sqlite_pragmas)
            store._sync_engine = sync
            db = url.split(":///", 1)[1].split("?", 1)[0]
            store._writer = WriterLock(Path(db + "-writer.lock"))
        try:
            if create:
                await store.upgrade_schema()
            else:
                async with store._read() as conn:
                    await migrate.check_current(conn)
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def upgrade_schema(self) -> migrate.UpgradeResult:
        """Create the schema, or upgrade this store in place to this release's (Alembic).

        Raises ``StoreVersionError`` (a ``ValueError``) for a store written by a newer
        release or a database that is not a leakguard store.
        """
        if self.dialect != "sqlite":
            async with self._tx() as conn:
                return await migrate.upgrade(conn)
        # SQLite: a migration that rebuilds a table others refer to (0007: ``messages``)
        # needs foreign keys off, which SQLite allows only outside a transaction. Every
        # reference is checked before the commit; enforcement is back on afterwards.
        async with self._engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await conn.commit()
            try:
                async with conn.begin():
                    result = await migrate.upgrade(conn)
                    broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                    if broken:
                        raise migrate.StoreVersionError(
                            migrate.msg(
                                f"更新で参照が {len(broken)} 件壊れるため、何も変更しません"
                                f"(最初: {tuple(broken[0])!r})。",
                                f"the upgrade would leave {len(broken)} broken references "
                                f"(first: {tuple(broken[0])!r}); nothing was changed",
                            )
                        )
            finally:
                await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                await conn.commit()
        return result

    async def close(self) -> None:
        if self._sync_engine is not None:
            if self._sync_thread is not None and self._sync_pid == os.getpid():
                await asyncio.get_running_loop().run_in_executor(
                    self._sync_thread, self._close_sync_connection
                )
                await asyncio.get_running_loop().run_in_executor(
                    self._sync_thread, self._sync_engine.dispose
                )
                self._sync_thread.shutdown()
            else:
                self._sync_conn = None  # a forked child's copy of the parent's
                self._sync_engine.dispose(close=False)
            self._sync_thread = None
        if self._writer is not None:
            self._writer.close()
        await self._engine.dispose()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction, committed on exit. Shielded callers get all-or-nothing."""
        if self._write_lock is not None:
            async with self._write_lock:
                writer = self._writer
                got = writer is not None and await asyncio.to_thread(writer.acquire)
                try:
                    async with self._engine.begin() as conn:
                        yield conn
                finally:
                    if got and writer is not None:
                        writer.release()
        else:
            async with self._engine.begin() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn:
            yield conn

    def _sync_connection(self, sync: sa.Engine) -> sa.Connection:
        """The store thread's connection (called in that thread only). One connection,
        kept open: a pool checkout, its reset (a rollback) and the return cost a fifth of
        the store thread's CPU under held mail, more than most transactions' statements.
        A connection SQLAlchemy invalidated (a disconnect) is replaced."""
        conn = self._sync_conn
        if conn is None or conn.closed or conn.invalidated:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            conn = self._sync_conn = sync.connect()
        elif conn.in_transaction():  # left over by an interrupted body: start clean
            conn.rollback()
        return conn

    def _close_sync_connection(self) -> None:
        conn, self._sync_conn = self._sync_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _thread(self) -> ThreadPoolExecutor:
        """The store's own thread (one per process: a forked worker starts its own and
        leaves the parent's connections alone)."""
        pid = os.getpid()
        if self._sync_thread is None or self._sync_pid != pid:
            if self._sync_pid and self._sync_pid != pid and self._sync_engine is not None:
                self._sync_conn = None  # the parent's: left alone, like its pool
                self._sync_engine.dispose(close=False)
                self._group, self._grouping = [], False  # the parent's writes, not ours
            self._sync_thread = ThreadPoolExecutor(1, thread_name_prefix="leakguard-store")
            self._sync_pid = pid
        return self._sync_thread

    async def _run_tx(self, body: Callable[[sa.Connection], T]) -> T:
        """``body`` as one write transaction, committed when this returns.

        On SQLite (a file) the whole transaction is one hand-off to the store's thread,
        where it runs as plain synchronous SQLAlchemy on ``sqlite3``: the async driver made
        one thread hand-off, one greenlet switch and one loop wake-up per statement, about
        half the CPU of a hold's or a notice's bookkeeping (docs/design-notes.md, "The
        store's own thread"). The in-process write lock is taken as for ``_tx``. Elsewhere
        (PostgreSQL) ``body`` runs through the async driver (``run_sync``)."""
        return await self._run(body, write=True)

    async def _run_read(self, body: Callable[[sa.Connection], T]) -> T:
        """``body`` as one read, in the store's thread on SQLite (see ``_run_tx``)."""
        return await self._run(body, write=False)

    async def _run(self, body: Callable[[sa.Connection], T], *, write: bool) -> T:
        sync = self._sync_engine
        if sync is None:
            async with self._engine.begin() if write else self._engine.connect() as conn:
                return await conn.run_sync(body)

        loop = asyncio.get_running_loop()
        if write:
            return await self._group_write(body)

        def run() -> T:
            conn = self._sync_connection(sync)
            try:
                return body(conn)
            except Exception:
                self._close_sync_connection()
                raise
            finally:
                if not conn.closed:
                    conn.rollback()  # a read's snapshot ends with it

        return await loop.run_in_executor(self._thread(), run)

    async def _group_write(self, body: Callable[[sa.Connection], T]) -> T:
        """Group commit (SQLite): the write transactions that arrive while one runs are
        run together, in arrival order, as one transaction with one commit (at most
        ``_GROUP_MAX``). Each caller's answer still comes only after the commit that
        holds its writes. If any body raises, the group is rolled back and every body is
        run again alone, so a failure touches only its own caller. Under a burst of
        holds the store thread was the bottleneck: one begin, commit, fsync, hand-off
        and loop wake per transaction, five and more a hold."""
        self._thread()  # in a forked worker: first forget the parent's group
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._group.append((body, fut))
        if not self._grouping:
            self._grouping = True
            task = asyncio.ensure_future(self._drain_group())
            self._group_tasks.add(task)
            task.add_done_callback(self._group_tasks.discard)
        return cast(T, await fut)

    async def _drain_group(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._write_lock is not None
        try:
            while self._group:
                batch = self._group[:_GROUP_MAX]
                del self._group[:_GROUP_MAX]
                try:
                    async with self._write_lock:
                        results = await loop.run_in_executor(
                            self._thread(), self._run_group, [b for b, _ in batch]
                        )
                except BaseException as exc:  # the thread is gone (shutdown): tell everyone
                    if isinstance(exc, asyncio.CancelledError):
                        for _, fut in (*batch, *self._group):
                            if not fut.done():
                                fut.cancel()
                        self._group.clear()
                        raise
                    results = [(False, exc)] * len(batch)
                for (_, fut), (ok, value) in zip(batch, results, strict=True):
                    if fut.done():
                        continue
                    if ok:
                        fut.set_result(value)
                    else:
                        fut.set_exception(value)
        finally:
            self._grouping = False

    def _run_group(self, bodies: list[Callable[[sa.Connection], Any]]) -> list[tuple[bool, Any]]:
        """In the store's thread: ``bodies`` in one transaction, or each alone if one fails."""
        assert self._sync_engine is not None
        if len(bodies) > 1:
            conn = self._sync_connection(self._sync_engine)
            try:
                with self._writer_held(), conn.begin():
                    return [(True, body(conn)) for body in bodies]
            except Exception:
                # a new connection: after a failure (a full disk: SQLite may roll back by
                # itself) nothing of the group's may linger for the next read to see
                self._close_sync_connection()
        out: list[tuple[bool, Any]] = []
        for body in bodies:
            conn = self._sync_connection(self._sync_engine)
            try:
                with self._writer_held(), conn.begin():
                    value = body(conn)
            except Exception as exc:  # the body's or the commit's (a full disk)
                out.append((False, exc))
                self._close_sync_connection()
                continue
            out.append((True, value))  # committed: only now
        return out

    def _writer_held(self) -> contextlib.AbstractContextManager[None]:
        return self._writer.held() if self._writer is not None else contextlib.nullcontext()

    # ------------------------------------------------------------------ messages

    @staticmethod
    async def _digest(raw: bytes) -> str:
        # hashing tens of megabytes would hold the event loop: a worker thread does it; a
        # notice or a held mail of a few KB is hashed keeping the GIL (randomness.py)
        if len(raw) < _HASH_SMALL:
            return sha256_small(raw)
        return sha256_hex(raw) if len(raw) < 1 << 20 else await asyncio.to_thread(sha256_hex, raw)

    @staticmethod
    def _put_message(conn: sa.Connection, raw: bytes, digest: str) -> str:
        """Store ``raw`` (whose SHA-256 is ``digest``) unless it is there; returns digest."""
        if len(raw) < BLOB_STREAM_MIN:
            # small (notices, most mail): one insert that keeps the row already there (the
            # same bytes) instead of a look first; resending a few KB costs less than a query
            conn.execute(
                _INSERT_NEW_MESSAGE[conn.dialect.name],
                {"sha256": digest, "size": len(raw), "created_at": _now(), "raw": raw},
            )
            return digest
        exists = conn.execute(_MESSAGE_EXISTS, {"b_sha256": digest}).first()
        if exists is None:
            # another process (a sibling worker, another relay) may store the same bytes
            # between that look and this insert: the row is the same, so theirs will do
            insert = _INSERT_NEW_MESSAGE[conn.dialect.name].values(
                sha256=digest, size=len(raw), created_at=_now()
            )
            insert_streaming_blob(conn, insert, t.messages, "raw", raw)  # no 25 MB copies
        return digest

    async def put_message(self, raw: bytes) -> str:
        digest = await self._digest(raw)
        return await self._run_tx(lambda conn: self._put_message(conn, raw, digest))

    async def get_message(self, sha256: str) -> bytes:
        async with self._read() as conn:
            row = (
                await conn.execute(sa.select(t.messages.c.raw).where(t.messages.c.sha256 == sha256))
            ).first()
        if row is None:
            raise KeyError(sha256)
        return bytes(row[0])

    # ------------------------------------------------------------------ holds

    async def create_hold(self, hold: HoldRecord, raw: bytes) -> HoldRecord:
        digest = await self._digest(raw)
        if hold.message_sha256 and hold.message_sha256 != digest:
            raise ValueError("hold.message_sha256 does not match the message bytes")

        def write(conn: sa.Connection) -> None:
            self._put_message(conn, raw, digest)
            conn.execute(
                _INSERT_HOLD,
                {
                    "id": hold.id,
                    "state": hold.state.value,
                    "created_at": hold.created_at,
                    "expires_at": hold.expires_at,
                    "due_at": hold.due_at,
                    "escalate_at": hold.escalate_at,
                    "message_sha256": digest,
                    "mail_from": hold.mail_from,
                    "rcpts": list(hold.rcpts),
                    "retry_key": retry_key(digest, hold.mail_from, hold.rcpts),
                    "auth_user": hold.auth_user,
                    "subject": hold.subject,
                    "action": hold.action,
                    "rules": list(hold.rules),
                    "verdict_json": hold.verdict_json,
                    "approvers": list(hold.approvers),
                    "offer_bcc": hold.offer_bcc,
                    "language": hold.language,
                    "escalated": hold.escalated,
                },
            )
            conn.execute(
                _INSERT_TRANSITION,
                {
                    "hold_id": hold.id,
                    "at": hold.created_at,
                    "from_state": None,
                    "to_state": hold.state.value,
                    "actor": hold.auth_user or hold.mail_from or "system",
                    "via": Via.RELAY.value,
                    "note": "",
                },
            )

        await self._run_tx(write)
        # what was written, without reading it back (the read: about 5 % of a hold's CPU in a
        # profile of the held benchmark)
        return dataclasses.replace(hold, message_sha256=digest)

    async def recent_hold_for(
        self, sha256: str, mail_from: str, rcpts: Sequence[str], since: datetime
    ) -> HoldRecord | None:
        key = retry_key(sha256, mail_from, rcpts)
        row = await self._run_read(
            lambda conn: conn.execute(_RETRY_LOOKUP, {"b_key": key, "b_since": since}).first()
        )
        return _hold(row._mapping) if row is not None else None

    async def get_hold(self, hold_id: str) -> HoldRecord | None:
        row = await self._run_read(lambda conn: conn.execute(_GET_HOLD, {"b_id": hold_id}).first())
        return _hold(row._mapping) if row is not None else None

    async def list_holds(
        self,
        *,
        states: Sequence[HoldState] = (),
        sender: str | None = None,
        rule: str | None = None,
        older_than: datetime | None = None,
        newer_than: datetime | None = None,
        limit: int = 200,
    ) -> list[HoldRecord]:
        q = sa.select(t.holds).order_by(t.holds.c.created_at.desc(), t.holds.c.id)
        if states:
            q = q.where(t.holds.c.state.in_([s.value for s in states]))
        if sender:
            q = q.where(sa.func.lower(t.holds.c.mail_from) == sender.lower())
        if older_than is not None:
            q = q.where(t.holds.c.created_at < older_than)
        if newer_than is not None:
            q = q.where(t.holds.c.created_at >= newer_than)
        if rule is None:
            q = q.limit(max(0, limit))
        async with self._read() as conn:
            rows = (await conn.execute(q)).all()
        out = [_hold(r._mapping) for r in rows]
        if rule is not None:  # JSON containment differs per backend; filter here
            out = [h for h in out if rule in h.rules][: max(0, limit)]
        return out

    async def transition(
        self,
        hold_id: str,
        *,
        from_states: Sequence[HoldState],
        to_state: HoldState,
        actor: str,
        via: Via,
        note: str = "",
        deliver: tuple[bytes, str, Sequence[str]] | None = None,
    ) -> HoldRecord | None:
        now = _now()
        digest = await self._digest(deliver[0]) if deliver is not None else ""
        async with self._tx() as conn:
            row = (
                await conn.execute(sa.select(t.holds.c.state).where(t.holds.c.id == hold_id))
            ).first()
            if row is None:
                return None
            current = HoldState(row[0])
            if current not in from_states:
                return None
            res = await conn.execute(
                sa.update(t.holds)
                .where(t.holds.c.id == hold_id, t.holds.c.state == current.value)
                .values(state=to_state.value)
            )
            if res.rowcount != 1:  # lost a race with another node
                return None
            await conn.execute(
                sa.insert(t.transitions).values(
                    hold_id=hold_id,
                    at=now,
                    from_state=current.value,
                    to_state=to_state.value,
                    actor=actor,
                    via=via.value,
                    note=note,
                )
            )
            if deliver is not None:
                raw, mail_from, rcpts = deliver
                await conn.run_sync(
                    lambda c: self._enqueue(
                        c, raw, digest, mail_from, rcpts, kind="mail", hold_id=hold_id
                    )
                )
        if deliver is not None:
            self._notify()
        return await self.get_hold(hold_id)

    async def record_event(self, hold_id: str, *, actor: str, via: Via, note: str) -> None:
        async with self._tx() as conn:
            await conn.execute(
                sa.insert(t.transitions).values(
                    hold_id=hold_id,
                    at=_now(),
                    from_state=None,
                    to_state=None,
                    actor=actor,
                    via=via.value,
                    note=note,
                )
            )

    async def timeline(self, hold_id: str) -> list[Transition]:
        return (await self.timelines([hold_id])).get(hold_id, [])

    async def timelines(self, hold_ids: Sequence[str]) -> dict[str, list[Transition]]:
        """The timelines of several holds, in order, in one read (a query per
        ``_IDS_PER_QUERY`` ids): the timers look at every hold that came of age since their
        last tick, one query each was about 1.5 % of a held mail's CPU under load."""
        tr = t.transitions.c
        ids = list(dict.fromkeys(hold_ids))

        def read(conn: sa.Connection) -> dict[str, list[Transition]]:
            out: dict[str, list[Transition]] = {}
            for i in range(0, len(ids), _IDS_PER_QUERY):
                q = (
                    sa.select(t.transitions)
                    .where(tr.hold_id.in_(ids[i : i + _IDS_PER_QUERY]))
                    .order_by(tr.hold_id, tr.at, tr.id)
                )
                for r in conn.execute(q):
                    out.setdefault(r.hold_id, []).append(
                        Transition(
                            hold_id=r.hold_id,
                            at=r.at,
                            from_state=HoldState(r.from_state) if r.from_state else None,
                            to_state=HoldState(r.to_state) if r.to_state else None,
                            actor=r.actor,
                            via=Via(r.via),
                            note=r.note or "",
                        )
                    )
            return out

        return await self._run_read(read) if ids else {}

    async def set_escalated(self, hold_id: str, approvers: Sequence[str]) -> bool:
        """Mark an open hold escalated (with its new approvers), once: a compare-and-set, so
        that of several timers (workers, nodes) exactly one wins and sends the notices.
        False when the hold was already escalated or is closed."""
        h = t.holds.c
        async with self._tx() as conn:
            res = await conn.execute(
                sa.update(t.holds)
                .where(
                    h.id == hold_id,
                    h.escalated.is_(False),
                    h.state.in_([HoldState.HELD.value, HoldState.DELAYED.value]),
                )
                .values(escalated=True, approvers=list(approvers))
            )
        return res.rowcount == 1

    async def due_holds(self, now: datetime) -> list[HoldRecord]:
        open_states = [HoldState.HELD.value, HoldState.DELAYED.value]
        h = t.holds.c
        q = (
            sa.select(t.holds)
            .where(h.state.in_(open_states))
            .where(
                sa.or_(
                    sa.and_(h.due_at.is_not(None), h.due_at <= now),
                    h.expires_at <= now,
                    sa.and_(h.escalate_at.is_not(None), h.escalate_at <= now, ~h.escalated),
                )
            )
            .order_by(h.created_at)
            .limit(1000)
        )
        async with self._read() as conn:
            rows = (await conn.execute(q)).all()
        return [_hold(r._mapping) for r in rows]

    # ------------------------------------------------------------------ tokens

    async def add_token(self, token: TokenRecord) -> None:
        await self._run_tx(lambda conn: _insert_tokens(conn, (token,)))

    async def use_token(self, token_hash: str, now: datetime) -> TokenRecord | None:
        c = t.tokens.c
        async with self._tx() as conn:
            res = await conn.execute(
                sa.update(t.tokens)
                .where(c.token_hash == token_hash, c.used_at.is_(None), c.expires_at > now)
                .values(used_at=now)
            )
            if res.rowcount != 1:
                return None
            row = (await conn.execute(sa.select(t.tokens).where(c.token_hash == token_hash))).one()
        return _token(row._mapping)

    async def peek_token(self, token_hash: str, now: datetime) -> TokenRecord | None:
        c = t.tokens.c
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(t.tokens).where(
                        c.token_hash == token_hash, c.used_at.is_(None), c.expires_at > now
                    )
                )
            ).first()
        return _token(row._mapping) if row is not None else None

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        """A token whatever its state (used, expired): to explain a link opened again."""
        c = t.tokens.c
        async with self._read() as conn:
            row = (
                await conn.execute(sa.select(t.tokens).where(c.token_hash == token_hash))
            ).first()
        return _token(row._mapping) if row is not None else None

    # ------------------------------------------------------------------ delivery queue

    def _enqueue(
        self,
        conn: sa.Connection,
        raw: bytes,
        digest: str,
        mail_from: str,
        rcpts: Sequence[str],
        *,
        kind: str,
        hold_id: str | None,
        not_before: datetime | None = None,
        last_error: str = "",
        claim: str | None = None,
    ) -> int:
        self._put_message(conn, raw, digest)
        return _insert_delivery(
            conn,
            digest,
            mail_from,
            rcpts,
            kind=kind,
            hold_id=hold_id,
            now=_now(),
            not_before=not_before,
            last_error=last_error,
            claim=claim,
        )

    async def enqueue_delivery(
        self,
        raw: bytes,
        mail_from: str,
        rcpts: Sequence[str],
        *,
        kind: str = "mail",
        hold_id: str | None = None,
        not_before: datetime | None = None,
        last_error: str = "",
        note: str | None = None,
        tokens: Sequence[TokenRecord] = (),
    ) -> int:
        """Queue a delivery durably (committed on return). ``not_before`` delays it.
        ``note`` (with ``hold_id``): a system event on the hold's timeline in the same
        commit, so that a crash cannot leave the delivery without its record ("notice sent
        to …": without it, the timers would send the notice again)."""
        digest = await self._digest(raw)

        def write(conn: sa.Connection) -> int:
            did = self._enqueue(
                conn,
                raw,
                digest,
                mail_from,
                rcpts,
                kind=kind,
                hold_id=hold_id,
                not_before=not_before,
                last_error=last_error,
            )
            if note is not None and hold_id is not None:
                _system_note(conn, hold_id, note)
            _insert_tokens(conn, tokens)
            return did

        did = await self._run_tx(write)
        self._notify()
        return did

    @staticmethod
    def _already_noted(conn: sa.Connection, hold_id: str, note: str) -> bool:
        """Whether the hold's timeline has ``note``, its row locked first (a no-op UPDATE:
        a row lock on PostgreSQL, the write lock on SQLite), so that timers on two nodes
        (or workers) sending the same notice are serialised and the second one sees the
        first one's note: the notice goes once."""
        conn.execute(_LOCK_HOLD, {"b_id": hold_id})
        return conn.execute(_NOTED, {"b_id": hold_id, "b_note": note}).first() is not None

    async def enqueue_claimed(
        self,
        raw: bytes,
        mail_from: str,
        rcpts: Sequence[str],
        *,
        kind: str,
        worker: str,
        hold_id: str | None = None,
        note: str | None = None,
        once: bool = False,
        tokens: Sequence[TokenRecord] = (),
    ) -> DeliveryRecord | None:
        """Queue a delivery durably, already claimed by ``worker`` (committed on return),
        for a first try made at once with the bytes in hand (``Delivery.enqueue_and_send``):
        no claim query, no re-read of the message, no wake of the queue's loop. Until that
        try records its outcome the row is an ordinary claim: a crash leaves it to
        ``recover_deliveries``. ``note``: as for ``enqueue_delivery``; ``once`` (with
        ``hold_id`` and ``note``): as ``enqueue_once``, None when the note is there."""
        now = _now()
        digest = await self._digest(raw)

        def write(conn: sa.Connection) -> int | None:
            if once:
                assert hold_id is not None and note is not None
                if self._already_noted(conn, hold_id, note):
                    return None
            self._put_message(conn, raw, digest)
            did = _insert_delivery(
                conn, digest, mail_from, rcpts, kind=kind, hold_id=hold_id, now=now, claim=worker
            )
            if note is not None and hold_id is not None:
                _system_note(conn, hold_id, note)
            _insert_tokens(conn, tokens)
            return did

        did = await self._run_tx(write)
        if did is None:
            return None
        return DeliveryRecord.claimed(
            did, digest, mail_from, rcpts, kind=kind, hold_id=hold_id, now=now
        )

    async def enqueue_once(
        self,
        raw: bytes,
        mail_from: str,
        rcpts: Sequence[str],
        *,
        kind: str,
        hold_id: str,
        note: str,
        tokens: Sequence[TokenRecord] = (),
    ) -> int | None:
        """``enqueue_delivery`` with ``note``, unless the hold's timeline already has that
        note (``_already_noted``): then nothing is queued and None is returned."""
        digest = await self._digest(raw)

        def write(conn: sa.Connection) -> int | None:
            if self._already_noted(conn, hold_id, note):
                return None
            did = self._enqueue(conn, raw, digest, mail_from, rcpts, kind=kind, hold_id=hold_id)
            _system_note(conn, hold_id, note)
            _insert_tokens(conn, tokens)
            return did

        did = await self._run_tx(write)
        if did is not None:
            self._notify()
        return did

    def _notify(self) -> None:
        for cb in self.on_enqueue:
            # a listener's bug must not undo a committed enqueue
            with contextlib.suppress(Exception):
                cb()

    async def claim_deliveries(
        self, worker: str, now: datetime, limit: int
    ) -> list[DeliveryRecord]:
        c = t.deliveries.c

        def claim(conn: sa.Connection) -> list[Any]:
            claimed: list[int] = []
            ids = conn.execute(
                sa.select(c.id)
                .where(c.state == DeliveryState.QUEUED.value, c.next_attempt_at <= now)
                .order_by(c.next_attempt_at, c.id)
                .limit(max(0, limit))
                .with_for_update(skip_locked=True)  # PostgreSQL; ignored by SQLite
            ).scalars()
            for did in list(ids):
                res = conn.execute(
                    sa.update(t.deliveries)
                    .where(c.id == did, c.state == DeliveryState.QUEUED.value)
                    .values(
                        state=DeliveryState.SENDING.value,
                        claimed_by=worker,
                        claimed_at=now,
                        attempts=c.attempts + 1,
                    )
                )
                if res.rowcount == 1:
                    claimed.append(did)
            if not claimed:
                return []
            return list(
                conn.execute(sa.select(t.deliveries).where(c.id.in_(claimed)).order_by(c.id))
            )

        return [_delivery(r._mapping) for r in await self._run_tx(claim)]

    async def finish_delivery(
        self,
        delivery_id: int,
        *,
        state: DeliveryState,
        error: str = "",
        dsn: bytes | None = None,
        dsn_to: str = "",
        worker: str | None = None,
    ) -> int | None:
        """Close a delivery. With ``dsn``: queue that bounce to ``dsn_to`` (null sender) in
        the same commit, so a crash cannot record the failure and lose the sender's DSN.
        Returns the DSN's queue id, or None.

        ``worker``: only while this worker's claim stands (see ``_fenced``); otherwise
        nothing changes and no DSN is queued (the node that holds the claim now will)."""
        digest = await self._digest(dsn) if dsn is not None and dsn_to else ""

        def write(conn: sa.Connection) -> int | None:
            res = conn.execute(
                *_fenced(
                    delivery_id,
                    worker,
                    {"state": state.value, "last_error": error[:2000], "finished_at": _now()},
                )
            )
            if res.rowcount != 1 or dsn is None or not dsn_to:
                return None
            return self._enqueue(conn, dsn, digest, "", [dsn_to], kind="dsn", hold_id=None)

        did = await self._run_tx(write)
        if did is not None:
            self._notify()
        return did

    async def retry_delivery(
        self,
        delivery_id: int,
        *,
        next_attempt_at: datetime,
        error: str,
        worker: str | None = None,
    ) -> bool:
        """Back to the queue for a later try. ``worker``: only while this worker's claim
        stands (``_fenced``); False when it no longer does (nothing changed)."""
        async with self._tx() as conn:
            res = await conn.execute(
                *_fenced(
                    delivery_id,
                    worker,
                    {
                        "state": DeliveryState.QUEUED.value,
                        "next_attempt_at": next_attempt_at,
                        "last_error": error[:2000],
                        "claimed_by": None,
                        "claimed_at": None,
                    },
                )
            )
        return res.rowcount == 1

    async def update_delivery_rcpts(
        self, delivery_id: int, rcpts: Sequence[str], *, worker: str | None = None
    ) -> bool:
        """Narrow a delivery to the recipients still to be tried (after a partial refusal).
        ``worker``: only while this worker's claim stands (``_fenced``)."""
        async with self._tx() as conn:
            res = await conn.execute(*_fenced(delivery_id, worker, {"rcpts": list(rcpts)}))
        return res.rowcount == 1

    async def recover_deliveries(
        self, *, claimed_before: datetime | None = None, worker: str | None = None
    ) -> int:
        """Put deliveries left in ``sending`` by a crashed worker back in the queue.

        ``worker`` alone: every delivery that worker (a stable node id) claimed, whatever
        its age: a node recovers its own at startup, since its previous process is gone.
        ``claimed_before`` alone: every claim older than that (the lease), whoever made it:
        a dead host's work. Both: that worker's claims older than that. A delivery that was
        handed to the upstream just before the crash may be sent again (at-least-once: the
        upstream's acceptance and our commit cannot be one atomic step).
        """
        if claimed_before is None and worker is None:
            raise ValueError("recover_deliveries needs claimed_before or worker")
        c = t.deliveries.c
        q = sa.update(t.deliveries).where(c.state == DeliveryState.SENDING.value)
        if claimed_before is not None:
            q = q.where(c.claimed_at < claimed_before)
        if worker is not None:
            q = q.where(c.claimed_by == worker)
        async with self._tx() as conn:
            res = await conn.execute(
                q.values(state=DeliveryState.QUEUED.value, claimed_by=None, claimed_at=None)
            )
        return int(res.rowcount or 0)

    async def get_delivery(self, delivery_id: int) -> DeliveryRecord | None:
        async with self._read() as conn:
            row = (
                await conn.execute(sa.select(t.deliveries).where(t.deliveries.c.id == delivery_id))
            ).first()
        return _delivery(row._mapping) if row is not None else None

    async def list_deliveries(
        self, *, states: Sequence[DeliveryState] = (), limit: int = 1000
    ) -> list[DeliveryRecord]:
        q = sa.select(t.deliveries).order_by(t.deliveries.c.id).limit(max(0, limit))
        if states:
            q = q.where(t.deliveries.c.state.in_([s.value for s in states]))
        async with self._read() as conn:
            rows = (await conn.execute(q)).all()
        return [_delivery(r._mapping) for r in rows]

    async def queue_depth(self) -> int:
        c = t.deliveries.c
        q = (
            sa.select(sa.func.count())
            .select_from(t.deliveries)
            .where(c.state.in_([DeliveryState.QUEUED.value, DeliveryState.SENDING.value]))
        )
        return int(await self._run_read(lambda conn: conn.execute(q).scalar_one()))

    # ------------------------------------------------------------------ sender history

    async def record_sent(self, sender: str, rcpts: Sequence[tuple[str, str]]) -> None:
        await self.record_sent_many([(sender, rcpts)])

    async def record_sent_many(
        self, batch: Sequence[tuple[str, Sequence[tuple[str, str]]]]
    ) -> None:
        """``record_sent`` for many messages in one transaction (one fsync)."""
        merged: dict[tuple[str, str, str], int] = {}
        for sender, rcpts in batch:
            sender_key = sender.strip().lower()[:320]
            if not sender_key:
                continue
            for a, n in rcpts:
                addr = (a or "").strip().lower()[:320]
                if addr:
                    key = (sender_key, addr, (n or "").strip()[:_NAME_LIMIT])
                    merged[key] = merged.get(key, 0) + 1
        if not merged:
            return
        try:
            await self._record_merged(merged)
        except BaseException:
            # the commit may or may not have happened: forget what is cached of them
            self.history_cache.invalidate({k[0] for k in merged})
            raise
        # after the commit: cached entries get the rows, and a read still running (begun
        # before the commit) does not store its rows
        self.history_cache.merge(merged)

    async def _record_merged(self, merged: dict[tuple[str, str, str], int]) -> None:
        """One upsert statement for the whole batch (executemany): the Python cost of a row
        by row UPDATE-then-INSERT ran on the event loop, ten rows a message (issue 11)."""
        now = _now()
        rows = [
            {
                "sender": sender_key,
                "rcpt": addr,
                "display_name": name,
                "count": count,
                "first_at": now,
                "last_at": now,
            }
            for (sender_key, addr, name), count in sorted(merged.items())
        ]
        stmt = _HISTORY_UPSERT["sqlite" if self._sqlite else "postgresql"]
        await self._run_tx(lambda conn: conn.execute(stmt, rows))

    async def sender_history(
        self, sender: str
    ) -> tuple[frozenset[str], dict[str, tuple[str, ...]]]:
        """The addresses ``sender`` wrote to and the display names used for them (served
        from ``history_cache`` when fresh; see ``leakguard/store/history_cache.py``). The
        caller must not modify what is returned (it may be shared)."""
        key = sender.strip().lower()
        cache = self.history_cache
        cached = cache.get(key)
        if cached is not None:
            return cached
        pending = self._history_reads.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._read_history(key))
            self._history_reads[key] = pending
            pending.add_done_callback(lambda f: self._history_read_done(key, f))
        stale = cache.get_stale(key)
        if stale is not None:
            return stale  # older than the TTL: served while the fresh read runs
        return cast(History, await asyncio.shield(pending))

    def _history_read_done(self, key: str, fut: asyncio.Future[Any]) -> None:
        if self._history_reads.get(key) is fut:
            del self._history_reads[key]
        if not fut.cancelled():
            fut.exception()  # retrieved: a failed background read is not "never retrieved"

    async def _read_history(self, key: str) -> History:
        generation = self.history_cache.generation
        h = t.sent_history.c
        q = (
            sa.select(h.rcpt, h.display_name)
            .where(h.sender == key)
            .order_by(h.last_at.desc())
            .limit(_HISTORY_LIMIT)
        )

        def read(conn: sa.Connection) -> History:
            # the rows and the sets built from them: all in the store's thread (SQLite), a
            # long history costs the event loop nothing
            recipients: set[str] = set()
            names: dict[str, list[str]] = {}
            for rcpt, name in conn.execute(q):
                recipients.add(rcpt)
                if name and name not in names.setdefault(rcpt, []):
                    names[rcpt].append(name)
            return frozenset(recipients), {k: tuple(v) for k, v in names.items() if v}

        value = await self._run_read(read)
        self.history_cache.put(key, value, generation=generation)
        return value

    # ------------------------------------------------------------------ shared settings

    async def settle_value(self, key: str, value: str) -> str:
        """The value stored under ``key`` in ``leakguard_meta``; the first caller stores
        ``value`` (relays starting together agree on one: the insert is conditional on the
        primary key)."""
        m = t.meta.c
        with contextlib.suppress(IntegrityError):
            async with self._tx() as conn:
                found = (await conn.execute(sa.select(m.value).where(m.key == key))).first()
                if found is not None:
                    return str(found[0])
                await conn.execute(sa.insert(t.meta).values(key=key, value=value[:256]))
                return value
        async with self._read() as conn:
            return str((await conn.execute(sa.select(m.value).where(m.key == key))).scalar_one())

    # ------------------------------------------------------------------ admin sessions

    async def revoke_session(self, session_id: str, expires_at: datetime) -> None:
        """Remember a logged-out admin session until it would have expired; prunes the
        ones past that in the same commit."""
        r = t.revoked_sessions.c
        sid = session_id[:64]
        # a concurrent logout of the same session on another node: already revoked
        with contextlib.suppress(IntegrityError):
            async with self._tx() as conn:
                await conn.execute(sa.delete(t.revoked_sessions).where(r.expires_at < _now()))
                exists = (
                    await conn.execute(sa.select(r.session_id).where(r.session_id == sid))
                ).first()
                if exists is None:
                    await conn.execute(
                        sa.insert(t.revoked_sessions).values(session_id=sid, expires_at=expires_at)
                    )

    async def session_revoked(self, session_id: str) -> bool:
        r = t.revoked_sessions.c
        async with self._read() as conn:
            row = (
                await conn.execute(sa.select(r.session_id).where(r.session_id == session_id[:64]))
            ).first()
        return row is not None

    # ------------------------------------------------------------------ thread record

    async def record_threads(self, entries: Sequence[ThreadEntry]) -> int:
        """Remember mails sent on or held (one transaction); returns how many were stored.

        Entries without a Message-ID or without two addresses are skipped: they can never
        show that two people met.
        """
        rows = []
        now = _now()
        for e in entries:
            addrs = bounded(e.addresses)
            if not e.message_id.strip().strip("<>").strip() or len(addrs) < 2:
                continue
            rows.append(
                {
                    "msgid_hash": message_id_key(e.message_id),
                    "addresses": addrs,
                    "bcc_addresses": bounded(e.bcc_addresses),
                    "hold_id": e.hold_id,
                    "created_at": now,
                }
            )
        if not rows:
            return 0
        async with self._tx() as conn:
            await conn.execute(sa.insert(t.thread_record), rows)
        return len(rows)

    async def thread_groups(
        self, message_ids: Sequence[str], *, since: datetime
    ) -> tuple[frozenset[str], ...]:
        """Who saw whom in the mails named by ``message_ids`` (In-Reply-To/References).

        Only the last ``MAX_LOOKUP_IDS`` ids are looked up and at most ``MAX_GROUPS`` groups
        returned. A held mail counts only once released (as Bcc: only what stayed visible);
        held, discarded or expired ones do not count; records older than ``since`` neither.
        """
        keys = list(dict.fromkeys(message_id_key(m) for m in message_ids if m.strip()))
        keys = keys[-MAX_LOOKUP_IDS:]
        if not keys:
            return ()
        tr = t.thread_record.c
        q = (
            sa.select(tr.addresses, tr.bcc_addresses, tr.hold_id, t.holds.c.state)
            .select_from(t.thread_record.outerjoin(t.holds, t.holds.c.id == tr.hold_id))
            .where(tr.msgid_hash.in_(keys), tr.created_at >= since)
            .order_by(tr.id.desc())
            .limit(MAX_GROUPS * 4)
        )
        async with self._read() as conn:
            rows = (await conn.execute(q)).all()
        groups: list[frozenset[str]] = []
        for addresses, bcc_addresses, hold_id, state in rows:
            if hold_id is None or state == HoldState.RELEASED.value:
                group = addresses
            elif state == HoldState.RELEASED_BCC.value:
                group = bcc_addresses
            else:
                continue
            g = frozenset(str(a) for a in (group or ()))
            if len(g) >= 2 and g not in groups:
                groups.append(g)
                if len(groups) >= MAX_GROUPS:
                    break
        return tuple(groups)

    async def prune_threads(self, older_than: datetime) -> int:
        """Forget thread records created before ``older_than`` (retention)."""
        async with self._tx() as conn:
            res = await conn.execute(
                sa.delete(t.thread_record).where(t.thread_record.c.created_at < older_than)
            )
        return int(res.rowcount or 0)


# ---------------------------------------------------------------------- row mapping


def _insert_delivery(
    conn: sa.Connection,
    digest: str,
    mail_from: str,
    rcpts: Sequence[str],
    *,
    kind: str,
    hold_id: str | None,
    now: datetime,
    not_before: datetime | None = None,
    last_error: str = "",
    claim: str | None = None,
) -> int:
    claimed: dict[str, Any] = (
        # claimed by ``claim`` from the start: its first try is under way (see
        # ``enqueue_claimed``); a crash leaves it to recovery like any other claim
        {"state": DeliveryState.SENDING.value, "claimed_by": claim, "claimed_at": now}
        if claim is not None
        else {"state": DeliveryState.QUEUED.value}
    )
    res = conn.execute(
        _INSERT_DELIVERY,
        {
            "message_sha256": digest,
            "mail_from": mail_from,
            "rcpts": list(rcpts),
            "attempts": 0 if claim is None else 1,
            "next_attempt_at": not_before or now,
            "hold_id": hold_id,
            "kind": kind,
            "last_error": last_error,
            "created_at": now,
            **claimed,
        },
    )
    return int(res.scalar_one())


def _insert_tokens(conn: sa.Connection, tokens: Sequence[TokenRecord]) -> None:
    """The tokens of a notice, committed with the notice's delivery (``tokens=``): one
    transaction for both, and no token for a notice that was not queued."""
    if tokens:
        conn.execute(
            _INSERT_TOKEN,
            [
                {
                    "token_hash": tok.token_hash,
                    "hold_id": tok.hold_id,
                    "actor": tok.actor,
                    "expires_at": tok.expires_at,
                    "used_at": tok.used_at,
                }
                for tok in tokens
            ],
        )


def _system_note(conn: sa.Connection, hold_id: str, note: str) -> None:
    """A timeline note without a state change (what was sent, to whom)."""
    conn.execute(
        _INSERT_TRANSITION,
        {
            "hold_id": hold_id,
            "at": _now(),
            "from_state": None,
            "to_state": None,
            "actor": "system",
            "via": Via.RELAY.value,
            "note": note,
        },
    )


def _fenced(
    delivery_id: int, worker: str | None, values: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """``UPDATE deliveries SET values`` for one delivery, as (statement, parameters); with
    ``worker``, only while it is still ``sending`` under that worker's claim. A node that
    outlived its lease (a very slow upstream, a paused VM) and whose delivery another node
    recovered and claimed must not put it back in the queue, narrow it or close it under
    the new claimer's feet."""
    if worker is None:
        return _UPDATE_DELIVERY, {"b_id": delivery_id, **values}
    params = {"b_id": delivery_id, "b_sending": DeliveryState.SENDING.value, "b_worker": worker}
    return _UPDATE_CLAIMED_DELIVERY, {**params, **values}


# write transactions committed together at most (``SqlStore._group_write``)
_GROUP_MAX = 64
_HASH_SMALL = 64 * 1024  # hashed on the loop without letting go of the GIL
# ids bound in one ``IN (...)`` (SQLite's limit on bound parameters is 999 in old builds)
_IDS_PER_QUERY = 500


def _insert_new(dialect: str, table: sa.Table) -> Any:
    """INSERT that leaves an existing row with the same primary key alone."""
    if dialect == "postgresql":
        return pg_insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    return sa.insert(table)


# ---------------------------------------------------------------- prebuilt statements
# The busiest statements are built once and executed with a parameter dict: building the
# construct for every call (``insert(...).values(...)``, ``where(...)``, its cache key)
# cost about 190 µs of CPU a statement against 35 µs for the prebuilt one (a delivery row,
# measured on this project's 2-core machine), and a hold runs about twenty of them.
# Parameters of WHERE clauses are named ``b_*``: an UPDATE may not bind a column's own name.

_INSERT_HOLD = sa.insert(t.holds)
_INSERT_TRANSITION = sa.insert(t.transitions)
_INSERT_TOKEN = sa.insert(t.tokens)
_INSERT_DELIVERY = sa.insert(t.deliveries).returning(t.deliveries.c.id)
# leaves an existing row with the same digest alone (the same bytes), per dialect
_INSERT_NEW_MESSAGE = {d: _insert_new(d, t.messages) for d in ("postgresql", "sqlite")}
_MESSAGE_EXISTS = sa.select(t.messages.c.sha256).where(
    t.messages.c.sha256 == sa.bindparam("b_sha256")
)
_GET_HOLD = sa.select(t.holds).where(t.holds.c.id == sa.bindparam("b_id"))


def _history_upsert(insert: Callable[[sa.Table], Any]) -> Any:
    h = t.sent_history.c
    stmt = insert(t.sent_history)
    return stmt.on_conflict_do_update(
        index_elements=[h.sender, h.rcpt, h.display_name],
        set_={"count": h.count + stmt.excluded.count, "last_at": stmt.excluded.last_at},
    )


# built once (it was built on the event loop for every batch, once a second per worker)
_HISTORY_UPSERT = {
    "sqlite": _history_upsert(sqlite_insert),
    "postgresql": _history_upsert(pg_insert),
}
_RETRY_LOOKUP = (
    sa.select(t.holds)
    .where(
        t.holds.c.retry_key == sa.bindparam("b_key"),
        t.holds.c.created_at >= sa.bindparam("b_since"),
    )
    .order_by(t.holds.c.created_at.desc())
    .limit(1)
)
# a no-op UPDATE that locks the hold's row (see ``SqlStore._already_noted``)
_LOCK_HOLD = (
    sa.update(t.holds)
    .where(t.holds.c.id == sa.bindparam("b_id"))
    .values(escalated=t.holds.c.escalated)
)
_NOTED = (
    sa.select(t.transitions.c.id)
    .where(
        t.transitions.c.hold_id == sa.bindparam("b_id"),
        t.transitions.c.note == sa.bindparam("b_note"),
    )
    .limit(1)
)
_UPDATE_DELIVERY = sa.update(t.deliveries).where(t.deliveries.c.id == sa.bindparam("b_id"))
_UPDATE_CLAIMED_DELIVERY = _UPDATE_DELIVERY.where(
    t.deliveries.c.state == sa.bindparam("b_sending"),
    t.deliveries.c.claimed_by == sa.bindparam("b_worker"),
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _tuple(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(str(v) for v in value)


def _hold(r: Any) -> HoldRecord:
    return HoldRecord(
        id=r["id"],
        state=HoldState(r["state"]),
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        due_at=r["due_at"],
        escalate_at=r["escalate_at"],
        message_sha256=r["message_sha256"],
        mail_from=r["mail_from"],
        rcpts=_tuple(r["rcpts"]),
        auth_user=r["auth_user"],
        subject=r["subject"],
        action=r["action"],
        rules=_tuple(r["rules"]),
        verdict_json=r["verdict_json"],
        approvers=_tuple(r["approvers"]),
        offer_bcc=bool(r["offer_bcc"]),
        language=r["language"],
        escalated=bool(r["escalated"]),
    )


def _token(r: Any) -> TokenRecord:
    return TokenRecord(
        token_hash=r["token_hash"],
        hold_id=r["hold_id"],
        actor=r["actor"],
        expires_at=r["expires_at"],
        used_at=r["used_at"],
    )


def _delivery(r: Any) -> DeliveryRecord:
    return DeliveryRecord(
        id=int(r["id"]),
        state=DeliveryState(r["state"]),
        message_sha256=r["message_sha256"],
        mail_from=r["mail_from"],
        rcpts=_tuple(r["rcpts"]),
        attempts=int(r["attempts"]),
        next_attempt_at=r["next_attempt_at"],
        hold_id=r["hold_id"],
        kind=r["kind"],
        last_error=r["last_error"] or "",
        created_at=r["created_at"],
    )


def backoff(attempts: int, *, base: float = 60.0, cap: float = 3600.0) -> timedelta:
    """Exponential backoff for the ``attempts``-th failed try (1-based): 1m, 2m, 4m ... 1h."""
    return timedelta(seconds=min(cap, base * (2 ** max(0, attempts - 1))))
