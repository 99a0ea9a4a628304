"""Delivery: synchronous relay for the SMTP front, and the durable queue worker.

``Delivery.deliver_now`` is what the relay calls while its client waits: it returns the
SMTP reply the client must get, following DESIGN §4 — 250 only once the upstream took the
message or it sits committed in the queue; upstream 4xx → 451 (or queued, when
configured), 5xx → 554 mirroring the upstream's text; recipients refused after the
message was accepted get a DSN to the sender (5xx) or a queued retry (4xx).

``Delivery.run`` works the queue (released holds, notices, DSNs, deferred mail): claims due
work, sends it, retries with exponential backoff, and on final failure tells the sender.

Once the upstream has accepted a message for some recipients, nothing that follows may
send it to them again:

- the client gets 250 (never a 4xx it would retry) however the follow-up goes;
- the worker first records durably who got it (``finish_delivery``, or
  ``update_delivery_rcpts`` narrowing the delivery to the recipients still to try), and
  only then does the follow-up work (sender history, DSN);
- a DSN is its own queued delivery (null sender); ``send_dsn`` never raises, so a DSN
  that cannot be built or stored is logged (``dsn_error``) and never re-queues the mail.

Where delivery is at-least-once, not exactly-once (the upstream's acceptance and our
commit cannot be one atomic step; DESIGN §4 promises no loss, not no duplicates):

- *ambiguous upstream failure*: the connection is lost or times out after the message
  content was sent, before the final reply (``UpstreamError.ambiguous``). The transport
  never retries it on the spot; it is a temporary failure: 451 to the client, a later
  retry for a queued delivery. If the upstream had in fact accepted it, the recipients
  get a second copy. We choose that over "done, possibly": without the upstream's 250
  the message is still ours (RFC 5321 §6.1), and treating it as sent would silently lose
  mail whenever the upstream fails before committing, the more common case.
- *crash, or store down, after acceptance*: if the process dies (or the store refuses
  the write, after a few quick retries; logged as ``delivery_unrecorded``) between the
  upstream's 250 and our ``finish_delivery`` / ``update_delivery_rcpts``, the delivery
  stays ``sending`` and ``recover`` re-queues it with the recipients it had: those who
  already got it get it again. Likewise a direct delivery whose temporarily refused
  recipients cannot be queued (store down) fails the client's transaction (451) after
  some recipients were served, and the client's retry duplicates for them: losing the
  refused recipients behind a 250 would break "nothing acknowledged is lost".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses
from typing import Any

from leakguard import budget, stepproc
from leakguard.delivery.dsn import build_dsn
from leakguard.delivery.transport import (
    Reply,
    SendOptions,
    SendResult,
    UpstreamError,
    UpstreamTransport,
)
from leakguard.holds.model import DeliveryRecord, DeliveryState, TokenRecord
from leakguard.metrics import Metrics
from leakguard.store import SqlStore, backoff

# tries waiting for a slot with their bytes in hand (``enqueue_and_send``), per slot: a
# few megabytes of notices at most; beyond, the queue keeps them. A burst of holds makes
# notices faster than the slots send them; queued, each one cost a claim transaction, a
# read of its bytes and a wake of the queue's loop more: with 4 slots in hand (the old
# limit) a held mail cost 21 ms of CPU, with 64 per slot 14-15 ms (bench held, 1 worker).
_IN_HAND_PER_SLOT = 64
_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\s*")


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    queue_on_temporary_failure: bool = False
    workers: int = 4
    retry_base: float = 60.0
    retry_max: float = 3600.0
    give_up_after: float = 5 * 86400.0
    max_attempts: int = 50
    poll_interval: float = 2.0
    stale_claim_after: float = 600.0
    upstream_timeout: float = 120.0
    hostname: str = "localhost"


@dataclass(frozen=True, slots=True)
class Outcome:
    reply: str  # the SMTP reply for the client
    accepted: tuple[str, ...] = ()  # recipients the upstream took now
    queued_id: int | None = None


def options_for(raw: bytes, mail_from: str, rcpts: Sequence[str]) -> SendOptions:
    """SMTPUTF8 / 8BITMIME needs inferred from the content (queued mail keeps no options)."""
    addrs_ascii = mail_from.isascii() and all(r.isascii() for r in rcpts)
    return SendOptions(smtputf8=not addrs_ascii, eightbit=not raw.isascii())


def one_line(text: str, limit: int = 400) -> str:
    """Upstream text made safe to mirror in one ASCII reply line."""
    clean = " ".join(text.replace("\r", " ").replace("\n", " ").split())
    return clean.encode("ascii", "replace").decode("ascii")[:limit]


def mirror(code: int, text: str, *, temporary: bool) -> str:
    """Client reply for an upstream failure: 451 4.x.x (temporary) or 554 5.x.x."""
    body = one_line(text)
    m = _ENHANCED.match(body)
    if m:
        status, body = m.group(1), body[m.end() :]
    else:
        status = ""
    if temporary:
        if not status.startswith("4"):
            status = "4.4.0"
        return f"451 {status} upstream: {code} {body}".rstrip()
    if not status.startswith("5"):
        status = "5.0.0"
    return f"554 {status} upstream: {code} {body}".rstrip()


def display_names(raw: bytes) -> dict[str, str]:
    """address (lower) -> display name, from To/Cc/Bcc of the header section."""
    try:
        head = BytesHeaderParser(policy=default_policy).parsebytes(raw[: 256 * 1024])
        values: list[str] = []
        for name in ("to", "cc", "bcc"):
            values += [str(v) for v in head.get_all(name, [])]
        out: dict[str, str] = {}
        for disp, addr in getaddresses(values)[:5000]:
            if addr and "@" in addr:
                out.setdefault(addr.lower(), disp.strip())
        return out
    except Exception:
        return {}


class Delivery:
    def __init__(
        self,
        store: SqlStore,
        transport: UpstreamTransport,
        settings: DeliverySettings,
        *,
        metrics: Metrics | None = None,
        log: Any = None,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.transport = transport
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.log = log
        # The claim's owner in the store. A stable node id (``Service.node_id``) lets a
        # restarted node take back its own in-flight deliveries at once (``recover``);
        # without one (tests, tools) the id is unique to this process.
        self._stable_id = worker_id is not None
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.workers)
        self._inflight: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._full = False  # the loop's last claim took every free slot: wake it on a done
        self._history: list[tuple[str, list[tuple[str, str]]]] = []
        self._history_due = asyncio.Event()
        self._history_task: asyncio.Task[None] | None = None

    def _log(self, event: str, **kw: Any) -> None:
        if self.log is not None:
            self.log.info(event, **kw)

    def _warn(self, event: str, **kw: Any) -> None:
        if self.log is not None:
            self.log.warning(event, **kw)

    # ------------------------------------------------------------------ synchronous path

    async def _send(
        self, mail_from: str, rcpts: Sequence[str], raw: bytes, options: SendOptions
    ) -> SendResult:
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            async with asyncio.timeout(self.settings.upstream_timeout):
                return await self.transport.send(mail_from, rcpts, raw, options)
        except TimeoutError as exc:
            # the stage is unknown here (maybe after DATA): treat it as ambiguous
            raise UpstreamError(
                451, "4.4.7 upstream timed out", temporary=True, ambiguous=True
            ) from exc
        finally:
            self.metrics.upstream_seconds.observe(loop.time() - start)

    async def deliver_now(
        self,
        raw: bytes,
        mail_from: str,
        rcpts: Sequence[str],
        *,
        options: SendOptions | None = None,
        history: tuple[str, Mapping[str, str]] | None = None,
    ) -> Outcome:
        """Relay while the client waits; returns the reply to give it (see module doc).

        ``history`` = (sender, {rcpt: display name}) records the sender's recipients once
        the upstream took the message.
        """
        opts = options or options_for(raw, mail_from, rcpts)
        try:
            result = await self._send(mail_from, rcpts, raw, opts)
        except UpstreamError as exc:
            self._count_error(exc, mail_from=mail_from, rcpts=len(rcpts))
            if exc.temporary and self.settings.queue_on_temporary_failure:
                did = await self.enqueue(
                    raw, mail_from, rcpts, kind="mail", last_error=one_line(str(exc))
                )
                return Outcome(reply=f"250 2.0.0 queued as Q{did}", queued_id=did)
            return Outcome(reply=mirror(exc.code, exc.text, temporary=exc.temporary))
        if history is not None:
            await self._record(history[0], result.accepted, history[1])
        queued_id: int | None = None
        if result.refused:
            self.metrics.upstream_errors.labels("refused_recipient").inc(len(result.refused))
            queued_id = await self._handle_refused(raw, mail_from, result.refused)
        reply = "250 2.0.0 OK"
        up = one_line(result.reply, 120)
        if up:
            reply += f" ({up})"
        return Outcome(reply=reply, accepted=result.accepted, queued_id=queued_id)

    def _count_error(self, exc: UpstreamError, **kw: Any) -> None:
        if exc.ambiguous:  # see the module docstring: retried, maybe one duplicate
            self.metrics.upstream_errors.labels("ambiguous").inc()
            self._warn("upstream_ambiguous", error=one_line(str(exc), 300), **kw)
        else:
            self.metrics.upstream_errors.labels("temporary" if exc.temporary else "permanent").inc()

    async def _record(self, sender: str, accepted: Sequence[str], names: Mapping[str, str]) -> None:
        """Remember recipients. Batched: history is advisory and need not cost one fsync
        per message; ``flush_history`` writes the batch (within a second, and on stop)."""
        if not sender or not accepted:
            return
        self._history.append((sender, [(r, names.get(r.lower(), "")) for r in accepted]))
        if len(self._history) >= 500 or self._runner is None:
            await self.flush_history()
        else:
            self._history_due.set()

    async def flush_history(self) -> None:
        batch, self._history = self._history, []
        self._history_due.clear()
        if not batch:
            return
        try:
            await self.store.record_sent_many(batch)
        except Exception as exc:  # history is advisory; never fail a delivered message
            self._log("history_error", error=repr(exc))

    async def _history_loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._history_due.wait(), 1.0)
            if not self._stopping.is_set():
                await asyncio.sleep(0.2)  # gather a batch
            await self.flush_history()
        await self.flush_history()

    async def _handle_refused(
        self, raw: bytes, mail_from: str, refused: Mapping[str, Reply]
    ) -> int | None:
        """After acceptance: 4xx recipients are retried from the queue, 5xx get a DSN."""
        temp = [r for r, rep in refused.items() if rep.temporary]
        perm = {r: rep for r, rep in refused.items() if not rep.temporary}
        did: int | None = None
        if temp:
            did = await self.enqueue(
                raw,
                mail_from,
                temp,
                kind="mail",
                last_error="; ".join(f"{r}: {refused[r]}" for r in temp),
            )
        if perm:
            await self.send_dsn(raw, mail_from, perm)
        return did

    async def send_dsn(self, raw: bytes, mail_from: str, failed: Mapping[str, Reply]) -> int | None:
        """Queue a DSN to ``mail_from`` as its own delivery; returns its queue id.

        Never raises: a DSN is follow-up work for a message the upstream has (partly)
        accepted, and its failure must not turn into a 4xx for the client or a retry of
        the original (a duplicate for every recipient that already got it). A DSN that
        cannot be built or stored is logged (``dsn_error``) and counted instead.
        """
        dsn = await self._build_dsn(raw, mail_from, failed)
        if dsn is None:
            return None
        try:
            did = await self.enqueue(dsn, "", [mail_from], kind="dsn")
        except Exception as exc:
            self._dsn_error(mail_from, failed, exc)
            return None
        self._log("dsn_queued", to=mail_from, recipients=len(failed), delivery=did)
        return did

    async def _build_dsn(
        self, raw: bytes, mail_from: str, failed: Mapping[str, Reply]
    ) -> bytes | None:
        """The DSN for ``failed``, built in a worker process (it reads the hostile original);
        None for a null sender (a DSN itself: never bounced) or when it cannot be built."""
        if not mail_from or not failed:
            return None
        try:
            try:
                return await stepproc.dsn(
                    original=raw,
                    sender=mail_from,
                    failed=failed,
                    reporting_host=self.settings.hostname,
                )
            except budget.BudgetExceeded:
                # past its budget (issue 12): the minimal DSN, which does not read the
                # original (no subject, no headers) and says so; the sender still learns
                return build_dsn(
                    original=b"",
                    sender=mail_from,
                    failed=failed,
                    reporting_host=self.settings.hostname,
                    with_original=False,
                )
        except Exception as exc:
            self._dsn_error(mail_from, failed, exc)
            return None

    def _dsn_error(self, mail_from: str, failed: Mapping[str, Reply], exc: Exception) -> None:
        self.metrics.upstream_errors.labels("dsn_error").inc()
        self._warn("dsn_error", to=mail_from, recipients=len(failed), error=repr(exc)[:500])

    # ------------------------------------------------------------------ queue

    async def enqueue(
        self,
        raw: bytes,
        mail_from: str,
        rcpts: Sequence[str],
        *,
        kind: str = "mail",
        hold_id: str | None = None,
        last_error: str = "",
    ) -> int:
        did = await asyncio.shield(
            self.store.enqueue_delivery(
                raw, mail_from, rcpts, kind=kind, hold_id=hold_id, last_error=last_error
            )
        )
        self.wake()
        return did

    async def enqueue_and_send(
        self,
        raw: bytes,
        mail_from: str,
        rcpts: Sequence[str],
        *,
        kind: str = "notice",
        hold_id: str | None = None,
        note: str | None = None,
        once: bool = False,
        tokens: Sequence[TokenRecord] = (),
    ) -> int | None:
        """Queue a delivery durably and make its first try at once, in the background,
        with the bytes in hand (notices: the queue's loop would claim the row and read the
        message back first, three more transactions for every notice). The row is
        committed claimed by this worker before the try starts, so the guarantees are the
        queue's: a crash mid-try leaves it to recovery, a failed try is retried from the
        queue. When every delivery slot is busy the try waits for one, bytes in hand (a
        burst of holds: the queue's way costs a claim transaction and a read of the
        message more per notice); past ``_IN_HAND_PER_SLOT`` waiting tries a slot, or on
        the way out, it is only queued and the loop sends it. ``once`` (with ``hold_id``
        and ``note``): as the store's ``enqueue_once``, nothing is queued (None) when the
        hold's timeline has that note.
        Returns the queue id."""
        assert not once or (hold_id is not None and note is not None)
        if (
            self._runner is None
            or self._stopping.is_set()
            or len(self._inflight) >= self.settings.workers * _IN_HAND_PER_SLOT
        ):
            queue: Callable[..., Awaitable[int | None]] = (
                self.store.enqueue_once if once else self.store.enqueue_delivery
            )
            queued = await asyncio.shield(
                queue(raw, mail_from, rcpts, kind=kind, hold_id=hold_id, note=note, tokens=tokens)
            )
            self.wake()
            return queued
        d = await asyncio.shield(
            self.store.enqueue_claimed(
                raw,
                mail_from,
                rcpts,
                kind=kind,
                worker=self.worker_id,
                hold_id=hold_id,
                note=note,
                once=once,
                tokens=tokens,
            )
        )
        if d is None:
            return None
        task = asyncio.create_task(self._attempt(d, raw))
        self._inflight.add(task)
        task.add_done_callback(self._done)
        return d.id

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self.run(), name="leakguard-delivery")
            self._history_task = asyncio.create_task(self._history_loop(), name="history")

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        self._history_due.set()  # the history loop flushes and ends now, not in a second
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._runner, timeout)
            self._runner = None
        if self._history_task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._history_task, timeout)
            self._history_task = None
        await self.flush_history()

    async def recover(self, *, startup: bool = False) -> int:
        """Put deliveries that a dead process left in ``sending`` back in the queue.

        At startup: every delivery claimed under this node's own id (its previous process
        is gone; nobody else claims under this id). Always: every claim older than the
        lease (``stale_claim_after``), whoever made it: a host that died and has not come
        back. A live node's claims are never touched before the lease runs out, and the
        lease is longer than the longest upstream attempt (``upstream_timeout``), so a
        delivery in flight on another node is not sent twice by us.
        """
        now = datetime.now(UTC)
        own = 0
        if startup and self._stable_id:
            own = await self.store.recover_deliveries(worker=self.worker_id)
        elif startup and self.store.dialect == "sqlite":
            # no node id (tests, embedded use): one process on its own SQLite store, so
            # whatever is 'sending' died with the previous one
            own = await self.store.recover_deliveries(claimed_before=now)
        stale = await self.store.recover_deliveries(
            claimed_before=now - timedelta(seconds=self.settings.stale_claim_after)
        )
        if own or stale:
            self._log("queue_recovered", own=own, lease_expired=stale, deliveries=own + stale)
        return own + stale

    async def run(self) -> None:
        """Work the queue until ``stop()``; in-flight sends are awaited on the way out."""
        await self.recover(startup=True)
        last_recover = asyncio.get_running_loop().time()
        last_depth = -1.0
        # a dead host's claims are looked for a few times per lease (at most once a minute)
        recover_every = max(1.0, min(60.0, self.settings.stale_claim_after / 3))
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                free = self.settings.workers - len(self._inflight)
                self._full = free <= 0
                if free > 0:
                    batch = await self.store.claim_deliveries(
                        self.worker_id, datetime.now(UTC), free
                    )
                    self._full = len(batch) >= free  # maybe more waiting than slots
                    for d in batch:
                        task = asyncio.create_task(self._attempt(d))
                        self._inflight.add(task)
                        task.add_done_callback(self._done)
                now_m = asyncio.get_running_loop().time()
                if now_m - last_depth >= 1.0:  # a count query: once a second is enough
                    last_depth = now_m
                    self.metrics.queue_depth.set(await self.store.queue_depth())
                if now_m - last_recover > recover_every:
                    last_recover = now_m
                    await self.recover()
            except Exception as exc:  # the store may be briefly unavailable
                self._log("queue_error", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if self._full:
            self._wake.set()  # a slot is free, and the loop's last claim filled them all

    async def _attempt(self, d: DeliveryRecord, raw: bytes | None = None) -> None:
        """One try of a claimed delivery (see the module docstring for the guarantees),
        in one of the ``workers`` slots. ``raw``: the message's bytes when the caller has
        them (``enqueue_and_send``)."""
        # A claim must be tried within its lease (``stale_claim_after`` is longer than one
        # upstream attempt, or another node takes the claim over and sends it too): a try
        # that waits for a slot longer than the lease leaves for the attempt goes back to
        # the queue unsent.
        wait = max(0.0, self.settings.stale_claim_after - self.settings.upstream_timeout) / 2
        try:
            async with asyncio.timeout(wait):
                await self._slots.acquire()
        except TimeoutError:
            await self._requeue(d, TimeoutError(f"no delivery slot free within {wait:.0f} s"))
            return
        try:
            sent = await self._attempt_in_slot(d, raw)
        finally:
            # The slot bounds upstream sends; the bookkeeping after an accepted send waits
            # for the store (a commit, behind others in a burst), not for the upstream, so
            # it runs after the slot is free (a burst of holds: notices held slots through
            # their commits, the slots' waiting list grew past its bound and a quarter of
            # the notices took the queue's slower way).
            self._slots.release()
        if sent is None:
            return
        # The upstream has taken the message for ``result.accepted``. From here on, no
        # error may put those recipients back in the queue (that is a duplicate each).
        try:
            await self._accepted(d, *sent)
        except Exception as exc:  # pragma: no cover - _accepted guards each step itself
            self._warn("delivery_followup_error", delivery=d.id, error=repr(exc)[:500])

    async def _attempt_in_slot(
        self, d: DeliveryRecord, raw: bytes | None
    ) -> tuple[bytes, SendResult] | None:
        """The upstream send; (bytes, result) when the upstream accepted the message for
        someone (``_accepted`` does the bookkeeping), None when this try is dealt with."""
        if raw is None:
            try:
                raw = await self.store.get_message(d.message_sha256)
            except Exception as exc:
                await self._requeue(d, exc)
                return None
        try:
            result = await self._send(
                d.mail_from, d.rcpts, raw, options_for(raw, d.mail_from, d.rcpts)
            )
        except UpstreamError as exc:  # nothing was accepted (or, if ambiguous, maybe was)
            self._count_error(exc, delivery=d.id, rcpts=len(d.rcpts))
            try:
                await self._failed(d, raw, exc, refused=exc.refused)
            except Exception as exc2:
                await self._requeue(d, exc2)
            return None
        except Exception as exc:  # a transport bug before anything was accepted
            await self._requeue(d, exc)
            return None
        return raw, result

    async def _requeue(self, d: DeliveryRecord, exc: BaseException) -> None:
        """Try again later; only for attempts where the upstream accepted nothing."""
        self._log("delivery_error", delivery=d.id, error=repr(exc)[:500])
        with contextlib.suppress(Exception):
            await self.store.retry_delivery(
                d.id,
                next_attempt_at=self._next_at(d.attempts),
                error=repr(exc)[:500],
                worker=self.worker_id,
            )

    async def _persist(
        self, d: DeliveryRecord, step: str, op: Callable[[], Awaitable[object]]
    ) -> bool:
        """Run an idempotent store write, retrying briefly. If the store stays down the
        delivery is left in ``sending``: recovery will send it again (at-least-once)."""
        last: Exception | None = None
        for i in range(3):
            try:
                await op()
                return True
            except Exception as exc:
                last = exc
                await asyncio.sleep(0.1 * 2**i)
        self._warn("delivery_unrecorded", delivery=d.id, step=step, error=repr(last)[:500])
        return False

    async def _accepted(self, d: DeliveryRecord, raw: bytes, result: SendResult) -> None:
        """Bookkeeping after the upstream accepted: first record durably who got it
        (narrow or finish the delivery), then the follow-up work (history, DSN), which
        never fails the delivery."""
        refused = result.refused
        temp = {r: rep for r, rep in refused.items() if rep.temporary}
        perm = {r: rep for r, rep in refused.items() if not rep.temporary}
        final = False
        if temp:
            error = one_line("; ".join(f"{r}: {rep}" for r, rep in temp.items()), 500)
            final = self._is_final(d, temporary=True)
            if final:
                await self._persist(
                    d,
                    "finish",
                    lambda: self.store.finish_delivery(
                        d.id, state=DeliveryState.FAILED, error=error, worker=self.worker_id
                    ),
                )
            elif await self._persist(
                d,
                "narrow",
                lambda: self.store.update_delivery_rcpts(d.id, list(temp), worker=self.worker_id),
            ):
                await self._persist(
                    d,
                    "retry",
                    lambda: self.store.retry_delivery(
                        d.id,
                        next_attempt_at=self._next_at(d.attempts),
                        error=error,
                        worker=self.worker_id,
                    ),
                )
        else:
            await self._persist(
                d,
                "finish",
                lambda: self.store.finish_delivery(
                    d.id, state=DeliveryState.DONE, worker=self.worker_id
                ),
            )
        # follow-up work: each step below swallows its own errors
        if d.kind == "mail":
            await self._record(d.mail_from, result.accepted, display_names(raw))
            await self.send_dsn(raw, d.mail_from, {**perm, **temp} if final else perm)
        if temp and not final:
            self._log(
                "delivery_deferred",
                delivery=d.id,
                kind=d.kind,
                attempts=d.attempts,
                delivered=len(result.accepted),
                remaining=len(temp),
            )
            return
        result_label = "failed" if final else "done"
        self.metrics.deliveries.labels(d.kind, result_label).inc()
        self._log(
            "delivered",
            delivery=d.id,
            kind=d.kind,
            hold_id=d.hold_id,
            recipients=len(result.accepted),
            failed=len(perm) + (len(temp) if final else 0),
            attempts=d.attempts,
        )

    def _next_at(self, attempts: int) -> datetime:
        return datetime.now(UTC) + backoff(
            attempts, base=self.settings.retry_base, cap=self.settings.retry_max
        )

    def _is_final(self, d: DeliveryRecord, *, temporary: bool) -> bool:
        age = (datetime.now(UTC) - d.created_at).total_seconds() if d.created_at is not None else 0
        return (
            (not temporary)
            or d.attempts >= self.settings.max_attempts
            or (age >= self.settings.give_up_after)
        )

    async def _failed(
        self, d: DeliveryRecord, raw: bytes, exc: UpstreamError, *, refused: Mapping[str, Reply]
    ) -> None:
        """Nothing was accepted this time: retry later, or give up and tell the sender."""
        error = one_line(str(exc), 500)
        if not self._is_final(d, temporary=exc.temporary):
            await self.store.retry_delivery(
                d.id, next_attempt_at=self._next_at(d.attempts), error=error, worker=self.worker_id
            )
            self._log(
                "delivery_deferred", delivery=d.id, kind=d.kind, attempts=d.attempts, error=error
            )
            return
        # the sender's DSN is queued in the same commit that records the failure: a crash in
        # between would otherwise lose it
        dsn = None
        if d.kind == "mail":
            failed = dict(refused) or {r: Reply(exc.code, exc.text) for r in d.rcpts}
            dsn = await self._build_dsn(raw, d.mail_from, failed)
        dsn_id = await self.store.finish_delivery(
            d.id,
            state=DeliveryState.FAILED,
            error=error,
            dsn=dsn,
            dsn_to=d.mail_from,
            worker=self.worker_id,
        )
        self.metrics.deliveries.labels(d.kind, "failed").inc()
        self._log(
            "delivery_failed",
            delivery=d.id,
            kind=d.kind,
            hold_id=d.hold_id,
            attempts=d.attempts,
            error=error,
        )
        if dsn_id is not None:
            self._log("dsn_queued", to=d.mail_from, recipients=len(failed), delivery=dsn_id)


class SendingQueue:
    """``enqueue_delivery`` that also makes the first try at once (``Delivery.enqueue_and_send``):
    the queue handed to the Bcc notices, which are built in the background after the 250."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    async def enqueue_delivery(
        self, raw: bytes, mail_from: str, rcpts: Sequence[str], *, kind: str = "notice"
    ) -> int:
        did = await self.delivery.enqueue_and_send(raw, mail_from, rcpts, kind=kind)
        assert did is not None  # only ``once`` queues nothing
        return did
