"""One accepted SMTP transaction: decide, then execute the verdict, then answer.

``Relay.process`` is called by the SMTP front at the end of DATA and returns the one reply
line the client gets. The decision runs in a worker thread (CPU work must not stall other
connections); the action — relay upstream, store a hold, queue — runs shielded from a
client that hangs up, so a half-done commit never happens (DESIGN §4).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import time
import unicodedata
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from leakguard import budget
from leakguard.delivery import Delivery, SendOptions
from leakguard.engine import calendar_thread_id
from leakguard.holds.model import HoldHandler
from leakguard.message.addresses import clean_addr_spec, make_address, parse_address_list
from leakguard.message.headers import parse_header_block
from leakguard.message.rewrite import RewriteResult, rewrite_recipients
from leakguard.metrics import Metrics
from leakguard.officer.bcc_notice import BccNotifier
from leakguard.organization import Organization, SenderHistory
from leakguard.relay import replies
from leakguard.relay.auth import may_send_as
from leakguard.relay.journal import JournalWriter, department_of
from leakguard.relay.sent_filter import SentFilter
from leakguard.relay.submission import complete_submission
from leakguard.store import SqlStore, ThreadEntry
from leakguard.store.journal import new_decision_id
from leakguard.types import Action, Address, Message, Verdict

T = TypeVar("T")


class DecisionLike(Protocol):
    """``leakguard.engine.Decision``."""

    @property
    def message(self) -> Message: ...
    @property
    def verdict(self) -> Verdict: ...
    @property
    def cpu_seconds(self) -> float: ...


class PolicyLike(Protocol):
    @property
    def organization(self) -> Organization: ...


# The relay's thread record as the engine sees it (``leakguard.engine.ThreadLookup``).
ThreadLookup = Callable[[tuple[str, ...]], tuple[frozenset[str], ...] | None]


class Decider(Protocol):
    """What the relay needs of ``leakguard.engine.Engine`` (tests may pass a stand-in)."""

    @property
    def policy(self) -> PolicyLike: ...

    def decide(
        self,
        raw: bytes,
        *,
        envelope_from: str | None = None,
        rcpts: Sequence[str] | None = None,
        history: SenderHistory | None = None,
        auth_user: str | None = None,
        thread_lookup: ThreadLookup | None = None,
    ) -> DecisionLike: ...


@dataclass(frozen=True, slots=True)
class Transaction:
    raw: bytes
    mail_from: str
    rcpts: tuple[str, ...]
    auth_user: str | None  # SMTP AUTH principal, or the envelope sender on a trusted listener
    authenticated: bool  # True only for SMTP AUTH (the From: check applies)
    smtputf8: bool = False
    eightbit: bool = False
    peer: str = ""
    listener: str = ""

    @property
    def auth_principal(self) -> str | None:
        """The SMTP AUTH login, or None (a trusted client's envelope sender is not a login)."""
        return self.auth_user if self.authenticated else None

    @property
    def trusted_client(self) -> bool:
        """Relayed without AUTH because the client is in a trusted network."""
        return not self.authenticated


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A transaction's bytes as relayed (header completed) and the hashes of the client's
    bytes and of those."""

    client_digest: str
    raw: bytes
    digest: str


@dataclass(frozen=True, slots=True)
class RelaySettings:
    language: str = "ja"
    check_from_header: bool = True
    allowed_senders: Mapping[str, Sequence[str]] = field(default_factory=dict)
    bcc_header: str | None = None
    bcc_header_to_external: bool = False
    decide_timeout: float = 30.0
    # Decisions run in their own small pool, so CPU-heavy mail cannot starve AUTH (argon2),
    # maildir writes or other work of the default executor; beyond ``decide_backlog``
    # waiting decisions the client is told to retry later instead of piling up threads.
    decide_workers: int = 2
    decide_backlog: int = 64
    # The relay's own thread record (issue 8): kept this many days; a lookup that takes
    # longer than ``thread_lookup_timeout`` seconds is skipped (the mail is judged without).
    thread_record: bool = True
    thread_retention_days: float = 180.0
    thread_lookup_timeout: float = 0.5
    # RFC 6409 §8: add Date and Message-ID when the client left them out (Message-ID's
    # domain is this name; a name without a dot gives "leakguard.invalid")
    hostname: str = "localhost"
    complete_headers: bool = True
    # A client's retry of a mail already sent on (same bytes, sender and recipients) within
    # this many seconds is answered 250 and not sent again (0: off)
    retry_window: float = 600.0
    # other processes relay from the same store (``serve --workers N`` with SQLite): a
    # retry may land on a sibling, so the journal is asked as for a shared PostgreSQL
    shared_store: bool = False


class ReportHandler(Protocol):
    """``leakguard.officer.incidents.IncidentService``: mail to the report address."""

    def is_report_address(self, rcpt: str) -> bool: ...

    async def handle_report_mail(
        self, *, raw: bytes, mail_from: str, auth_user: str | None
    ) -> str: ...


class Relay:
    def __init__(
        self,
        *,
        engine: Decider,
        store: SqlStore,
        delivery: Delivery,
        holds: HoldHandler | None,
        settings: RelaySettings,
        metrics: Metrics,
        log: Any,
        senders_of: Callable[[str], Sequence[str]] = lambda _p: (),
        journal: JournalWriter | None = None,
        bcc_notices: BccNotifier | None = None,
    ) -> None:
        self.engine = engine
        self.journal = journal
        self.bcc_notices = bcc_notices
        self.store = store
        self.delivery = delivery
        self.holds = holds
        self.settings = settings
        self.metrics = metrics
        self.log = log
        self.senders_of = senders_of
        self._tasks: set[asyncio.Task[Any]] = set()
        self._decide_pool = ThreadPoolExecutor(
            max_workers=max(1, settings.decide_workers), thread_name_prefix="leakguard-decide"
        )
        self._deciding = 0
        self._threads: list[ThreadEntry] = []
        self._threads_task: asyncio.Task[None] | None = None
        self._threads_pruned_at = 0.0
        # retry key -> (monotonic time, decision id) of mail sent on, oldest first
        self._sent_recently: dict[tuple[str, ...], tuple[float, str]] = {}
        # the same, shared by sibling worker processes (``serve --workers N``): a filter
        # that spares the journal lookup for mail no worker sent on (relay/sent_filter.py)
        self.sent_filter: SentFilter | None = None
        # retry key -> the transaction being decided and carried out (``process``)
        self._in_flight: dict[tuple[str, ...], tuple[asyncio.Task[str], Callable[[], bool]]] = {}
        # the decision id of mail recently sent on, by retry key (for the session's receipt)
        self._sent_ids: dict[tuple[str, ...], str] = {}
        self.reports: ReportHandler | None = None  # the report address (issue 9)

    @property
    def org(self) -> Organization:
        return self.engine.policy.organization

    def may_send_as(self, principal: str, address: str) -> bool:
        return may_send_as(
            principal,
            address,
            allowed=self.settings.allowed_senders,
            extra=self.senders_of(principal),
        )

    def language_of(self, identity: str | None) -> str:
        if identity:
            p = self.org.person(identity)
            if p is not None and p.language:
                return "ja" if p.language.lower().startswith("ja") else "en"
        return self.settings.language

    async def drain(self, timeout: float) -> None:
        """Wait for actions still committing (graceful shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        if self._threads_task is not None and not self._threads_task.done():
            await asyncio.wait([self._threads_task], timeout=timeout)
        self._decide_pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ the transaction

    async def process(
        self,
        tx: Transaction,
        receipt: list[tuple[tuple[str, ...], str]] | None = None,
        gone: Callable[[], bool] | None = None,
    ) -> str:
        """The reply to one transaction. ``receipt``: when the mail was sent on, gets its
        retry key and decision id, for ``abandoned`` if the connection ends before the
        client shows it read the reply. ``gone``: whether this client's connection has
        ended (only then may a retry join this transaction while it is still in flight)."""
        keys: list[tuple[str, ...]] = []
        reply = await self._process(tx, keys, gone)
        if receipt is not None and reply.startswith("2") and keys:
            sent = self._sent_ids.pop(keys[0], None)  # only needed until now
            if sent is not None:
                receipt.append((keys[0], sent))
        return reply

    async def _process(
        self, tx: Transaction, keys: list[tuple[str, ...]], gone: Callable[[], bool] | None
    ) -> str:
        loop = asyncio.get_running_loop()
        start = loop.time()
        normal = list(tx.rcpts)
        if self.reports is not None and any(self.reports.is_report_address(r) for r in tx.rcpts):
            # a report of a mistake: never relayed, answered by mail (like hold replies)
            rep = [r for r in tx.rcpts if self.reports.is_report_address(r)]
            me = {x.lower() for x in (tx.mail_from, tx.auth_user or "") if x}
            others = [r for r in tx.rcpts if r not in rep and r.lower() not in me]
            if others:
                return self._mixed_command(tx, rep, others)
            return await self._shielded(
                self.reports.handle_report_mail(
                    raw=tx.raw, mail_from=tx.mail_from, auth_user=tx.auth_principal
                )
            )
        if self.holds is not None:
            cmd = [r for r in tx.rcpts if self.holds.is_command_address(r)]
            if cmd:
                # "Reply all" to a notice also goes to the sender themself (the notice's
                # To); that copy is dropped rather than refusing the command.
                me = {x.lower() for x in (tx.mail_from, tx.auth_user or "") if x}
                normal = [r for r in tx.rcpts if r not in cmd and r.lower() not in me]
                if normal:  # never execute and relay the same mail (it quotes live links)
                    return self._mixed_command(tx, cmd, normal)
                return await self._shielded(
                    self.holds.handle_reply(
                        raw=tx.raw, mail_from=tx.mail_from, rcpts=cmd, auth_user=tx.auth_principal
                    )
                )
        # One step off the event loop (one thread hand-off, issue 11) for what reads the
        # hostile header section before the decision: one reading of the header for everyone
        # (a header section that other software would split differently, bare CR or NUL, is
        # refused before any check reads it), the From:/Sender: ownership check of an
        # authenticated submission, and the completed header and the hashes of the bytes.
        prep = await loop.run_in_executor(self._decide_pool, self._prepare, tx)
        if isinstance(prep, tuple) and prep[0] == "header":
            self.metrics.messages.labels("refused").inc()
            self.metrics.smtp_replies.labels("5xx").inc()
            self.log.info("header_refused", sender=tx.mail_from, peer=tx.peer, reply=prep[1])
            return prep[1]
        if isinstance(prep, tuple) and prep[0] == "from":
            refused = prep[1]
            self.metrics.messages.labels("refused").inc()
            self.metrics.smtp_replies.labels(refused[:1] + "xx").inc()
            self.log.info(
                "from_refused",
                auth_user=tx.auth_user,
                sender=tx.mail_from,
                peer=tx.peer,
                listener=tx.listener,
                reply=refused[:200],
            )
            return refused
        assert isinstance(prep, _Prepared)
        client_digest, raw, digest = prep.client_digest, prep.raw, prep.digest
        if raw is not tx.raw:
            tx = dataclasses.replace(tx, raw=raw)
        keys.append(self._retry_key(tx, normal, client_digest))
        retry = await self._sent_before(tx, normal, client_digest, digest)
        if retry is not None:
            return retry
        # A client that gave up waiting (a slow store, a busy upstream) and sent the same
        # transaction again while the first is still being decided or stored: the retry
        # waits for the first one's answer instead of making a second hold or delivery.
        key = self._retry_key(tx, normal, client_digest)
        first = self._in_flight.get(key)
        # a retry only when the first try's client is gone (it gave up waiting): two clients
        # both connected and sending the same bytes at once are two mails
        running = first[0] if first is not None and first[1]() else None
        if running is not None:
            self.metrics.messages.labels("retry").inc()
            self.log.info("retry_joined", sender=tx.mail_from, peer=tx.peer, recipients=len(normal))
            return await asyncio.shield(running)
        # shielded as a whole: a client that hangs up does not cancel what a retry may join
        task = asyncio.ensure_future(
            self._decide_and_execute(tx, normal, client_digest, digest, start)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._in_flight[key] = (task, gone or (lambda: False))
        task.add_done_callback(
            lambda t: (
                self._in_flight.pop(key, None)
                if self._in_flight.get(key, (None,))[0] is t
                else None
            )
        )
        return await asyncio.shield(task)

    async def _decide_and_execute(
        self, tx: Transaction, normal: list[str], client_digest: str, digest: str, start: float
    ) -> str:
        loop = asyncio.get_running_loop()
        if self._deciding >= self.settings.decide_backlog:
            self.metrics.messages.labels("busy").inc()
            self.log.warning("decision_backlog_full", sender=tx.mail_from, peer=tx.peer)
            return replies.LOCAL_ERROR
        self._deciding += 1
        try:
            history = await self._history(tx.mail_from)
            async with asyncio.timeout(self.settings.decide_timeout):
                decision = await loop.run_in_executor(
                    self._decide_pool,
                    functools.partial(
                        self.engine.decide,
                        tx.raw,
                        envelope_from=tx.mail_from,
                        rcpts=normal,
                        history=history,
                        auth_user=tx.auth_user,
                        thread_lookup=self._thread_lookup(loop),
                    ),
                )
        except Exception as exc:
            self.metrics.messages.labels("error").inc()
            self.log.error(
                "decision_failed", error=repr(exc)[:500], sender=tx.mail_from, peer=tx.peer
            )
            return replies.LOCAL_ERROR
        finally:
            self._deciding -= 1
        self.metrics.decision_seconds.observe(decision.cpu_seconds)
        decision_id = new_decision_id()
        hold_id: str | None = None
        try:
            reply, hold_id = await self._shielded(self._execute(tx, decision, normal, decision_id))
        except Exception as exc:
            self.log.error(
                "action_failed",
                error=repr(exc)[:500],
                sender=tx.mail_from,
                action=decision.verdict.action.value,
            )
            reply = replies.LOCAL_ERROR
        action = decision.verdict.action.value
        self.metrics.transaction_seconds.labels(action).observe(loop.time() - start)
        self.metrics.smtp_replies.labels(reply[:1] + "xx").inc()
        self._audit(tx, decision, action, reply, start, len(normal), decision_id)
        self._journal(tx, decision, normal, reply, decision_id, hold_id, digest)
        if reply.startswith("2") and decision.verdict.action in (Action.PASS, Action.BCC):
            self._remember_sent(tx, normal, client_digest, reply, decision_id)
        return reply

    # ------------------------------------------------------------------ retries

    def _prepare(self, tx: Transaction) -> _Prepared | tuple[str, str]:
        """Runs in the decisions' pool: ("header", refusal), ("from", refusal), or the bytes
        as relayed and their hashes."""
        bad_header = replies.header_section_problem(tx.raw)
        if bad_header is not None:
            return "header", bad_header
        if tx.authenticated and self.settings.check_from_header and tx.auth_user:
            refused = self.check_author(tx)
            if refused is not None:
                return "from", refused
        client_digest, raw, digest = self._complete_and_hash(tx.raw)
        return _Prepared(client_digest, raw, digest)

    def _complete_and_hash(self, raw: bytes) -> tuple[str, bytes, str]:
        """(hash of the client's bytes, the bytes as relayed, their hash)."""
        client = hashlib.sha256(raw).hexdigest()
        if not self.settings.complete_headers:
            return client, raw, client
        done = complete_submission(raw, self.settings.hostname)
        return client, done, client if done is raw else hashlib.sha256(done).hexdigest()

    @staticmethod
    def _retry_key(tx: Transaction, rcpts: Sequence[str], digest: str) -> tuple[str, ...]:
        return (digest, tx.mail_from.lower(), *sorted(r.lower() for r in rcpts))

    def abandoned(self, key: tuple[str, ...], decision_id: str) -> None:
        """The connection of ``decision_id``'s client ended after its 250 and before any
        other command: the client may not have read the reply and may send the same
        transaction again. Only such transactions are recognised as retried (in memory, in
        the filter the workers share, and on the journal row for other workers and nodes);
        a client that went on after the 250 read it, and the same bytes sent again later
        (an alert, a form submitted twice) are new mail."""
        now = time.monotonic()
        recent = self._sent_recently
        recent[key] = (now, decision_id)
        if self.sent_filter is not None:
            self.sent_filter.add(key)
        if self.journal is not None:
            self.journal.abandoned(decision_id)
        window = self.settings.retry_window
        while recent and (len(recent) > 20000 or next(iter(recent.values()))[0] < now - window):
            recent.pop(next(iter(recent)))

    def _remember_sent(
        self, tx: Transaction, rcpts: Sequence[str], digest: str, reply: str, decision_id: str
    ) -> None:
        key = self._retry_key(tx, rcpts, digest)
        ids = self._sent_ids
        ids.pop(key, None)
        ids[key] = decision_id
        while len(ids) > 20000:
            ids.pop(next(iter(ids)))

    async def _sent_before(
        self, tx: Transaction, rcpts: Sequence[str], client_digest: str, digest: str
    ) -> str | None:
        """A client's retry of a mail this relay (or another sharing the store) already sent
        on within ``retry_window``: the same bytes, sender and recipients. It happens when
        the connection broke after the upstream accepted the mail but before the client got
        the 250; sending it again would deliver it twice. Answered 250, not sent again."""
        if self.settings.retry_window <= 0:
            return None
        first: str | None = None
        hit = self._sent_recently.get(self._retry_key(tx, rcpts, client_digest))
        if hit is not None and hit[0] >= time.monotonic() - self.settings.retry_window:
            first = hit[1]
        elif self.journal is not None and (
            self.store.dialect != "sqlite"
            or (
                self.settings.shared_store
                and (
                    self.sent_filter is None
                    or self.sent_filter.maybe(self._retry_key(tx, rcpts, client_digest))
                )
            )
        ):
            # another relay sharing the store (PostgreSQL), or a sibling worker process.
            # With SQLite and one process there is one relay, and its memory is enough: a
            # graceful stop drains before it goes, and a row that a SIGKILL cut off was not
            # written either (one read per mail is ~1 ms of the event loop's time, issue 11)
            since = datetime.now(UTC) - timedelta(seconds=self.settings.retry_window)
            want = sorted(r.lower() for r in rcpts)
            try:
                async with asyncio.timeout(self.settings.thread_lookup_timeout):
                    rows = await self.store.journal.find(
                        sha256=digest, sender=tx.mail_from, since=since, limit=20
                    )
            except Exception as exc:
                self.log.warning("retry_lookup_unavailable", error=repr(exc)[:200])
                rows = []
            for row in rows:
                if (
                    row.abandoned
                    and row.outcome in ("sent", "sent_bcc")
                    and sorted(r.lower() for r in row.rcpts) == want
                ):
                    first = row.id
                    break
        if first is None:
            return None
        self.metrics.messages.labels("retry").inc()
        self.metrics.smtp_replies.labels("2xx").inc()
        self.log.info(
            "retry_recognised",
            decision_id=first,
            sender=tx.mail_from,
            peer=tx.peer,
            recipients=len(rcpts),
        )
        return replies.RETRY_SENT.format(id=first)

    def _journal(
        self,
        tx: Transaction,
        decision: DecisionLike,
        rcpts: list[str],
        reply: str,
        decision_id: str,
        hold_id: str | None,
        digest: str,
    ) -> None:
        if self.journal is None:
            return
        org = self.org
        self.journal.submit(
            decision_id=decision_id,
            raw=tx.raw,
            message=decision.message,
            verdict=decision.verdict,
            sender=tx.mail_from,
            auth_user=tx.auth_principal,
            rcpts=tuple(rcpts),
            external_rcpts=sum(1 for r in rcpts if not org.is_internal(r)),
            department=department_of(org.person, tx.auth_principal, tx.mail_from),
            reply=reply,
            hold_id=hold_id,
            sha256=digest,
        )

    def check_author(self, tx: Transaction) -> str | None:
        """From:/Sender: ownership for an authenticated submission; the refusal, or None.

        Read with the parser the detectors use. Every From: mailbox (at least one is
        required) and every Sender: mailbox must have a domain and be one the user may send
        as; a display name (or comment) that shows a different address the user may not use
        — an RFC 2047 word decoding to ``boss@city...``, say — is refused too.
        """
        user = tx.auth_user or ""
        hb = parse_header_block(tx.raw)

        def reply(en: str, ja: str, addr: str = "") -> str:
            a = replies.ascii_text(addr)
            if self.language_of(user) == "ja":
                return replies.smtp_text(
                    ja.format(addr=a), utf8=tx.smtputf8, fallback=en.format(addr=a)
                )
            return en.format(addr=a)

        def name_addresses(a: Address) -> list[str]:
            found = []
            # NFKC first: a display name "kazuya.sato＠city…" shows an address too.
            shown_name = unicodedata.normalize("NFKC", a.display_name)
            for word in shown_name.replace("<", " ").replace(">", " ").split():
                spec = clean_addr_spec(word) if "@" in word else None
                if spec is not None and "." in spec.rpartition("@")[2]:
                    found.append(make_address(spec).addr)
            return found

        if hb.truncated or hb.ambiguous:
            # Fields past the parser's limit (or split differently elsewhere) were not read:
            # a From/Sender there would go out unchecked.
            return reply(replies.HEADER_UNCHECKABLE, replies.HEADER_UNCHECKABLE_JA)
        checks = (
            ("From", replies.FROM_NOT_OWNED, replies.FROM_NOT_OWNED_JA),
            ("Sender", replies.SENDER_HDR_NOT_OWNED, replies.SENDER_HDR_NOT_OWNED_JA),
            ("Resent-From", replies.FROM_NOT_OWNED, replies.FROM_NOT_OWNED_JA),
            ("Resent-Sender", replies.SENDER_HDR_NOT_OWNED, replies.SENDER_HDR_NOT_OWNED_JA),
        )
        for field_name, not_owned, not_owned_ja in checks:
            values = hb.get_all(field_name)
            mailboxes: list[Address] = []
            for v in values:
                mailboxes += parse_address_list(v)[0]
            if field_name == "From" and not mailboxes:
                return reply(replies.NO_FROM, replies.NO_FROM_JA)
            if values and not mailboxes and any(v.strip() for v in values):
                return reply(not_owned, not_owned_ja, " ".join(values)[:100])
            for a in mailboxes:
                if not a.domain or not self.may_send_as(user, a.addr):
                    return reply(not_owned, not_owned_ja, a.addr)
                for shown in name_addresses(a):
                    if shown.lower() != a.key and not self.may_send_as(user, shown):
                        return reply(replies.FROM_NAME_ADDRESS, replies.FROM_NAME_ADDRESS_JA, shown)
        return None

    def _mixed_command(self, tx: Transaction, cmd: list[str], normal: list[str]) -> str:
        self.metrics.smtp_replies.labels("5xx").inc()
        self.log.info(
            "mixed_command_refused",
            sender=tx.mail_from,
            auth_user=tx.auth_principal,
            trusted_client=tx.trusted_client,
            peer=tx.peer,
            command_rcpts=len(cmd),
            other_rcpts=len(normal),
        )
        if self.language_of(tx.auth_user or tx.mail_from) == "ja":
            return replies.smtp_text(
                replies.MIXED_COMMAND_JA, utf8=tx.smtputf8, fallback=replies.MIXED_COMMAND
            )
        return replies.MIXED_COMMAND

    async def _shielded(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run to completion even if the client disconnects (the handler is cancelled)."""
        task: asyncio.Task[T] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    # ------------------------------------------------------------------ thread record

    def _thread_lookup(self, loop: asyncio.AbstractEventLoop) -> ThreadLookup | None:
        """The lookup the engine calls from the decision thread: the store runs it on the
        event loop; on timeout or error the record is unknown (None), never an error."""
        if not self.settings.thread_record:
            return None
        timeout = self.settings.thread_lookup_timeout
        since = datetime.now(UTC) - timedelta(days=self.settings.thread_retention_days)

        def lookup(ids: tuple[str, ...]) -> tuple[frozenset[str], ...] | None:
            fut = asyncio.run_coroutine_threadsafe(self.store.thread_groups(ids, since=since), loop)
            try:
                return fut.result(timeout)
            except Exception as exc:
                fut.cancel()
                self.log.warning("thread_record_unavailable", error=repr(exc)[:200])
                return None

        return lookup

    def remember_thread(self, msg: Message, *, visible: bool, hold_id: str | None = None) -> None:
        """Record who saw whom in a mail sent on (``visible``: To/Cc as written; otherwise
        as after a Bcc rewrite) or held (``hold_id``: counts once released). Batched and
        advisory: written in the background, never delaying or failing the transaction.

        Only a mail that showed two or more external addresses to each other is recorded:
        the record serves to tell that outsiders already met (``already_acquainted``), and
        nothing else could ever be found in it (internal mail, 1:1 mail, a Bcc rewrite)."""
        keys = [
            *([msg.message_id] if msg.message_id else []),
            *(calendar_thread_id(uid) for uid in msg.calendar_uids),
        ]
        if not self.settings.thread_record or not keys:
            return
        org = self.org
        # An invitation shows its attendees to each other as To/Cc do.
        seen: dict[str, Address] = {}
        for a in (*msg.visible_recipients, *msg.calendar_attendees):
            if a.domain:
                seen.setdefault(a.key, a)
        outside = [a for a in seen.values() if not org.is_internal(a)]
        if not visible or len(outside) < 2:
            return
        sender = [a.key for a in msg.from_ if a.domain]
        shown = list(seen)
        inside = [k for k, a in seen.items() if org.is_internal(a)]
        bcc_view = (*sender, *inside)
        if len(self._threads) >= 10000:  # the store is down: drop rather than grow
            return
        for key in keys:
            self._threads.append(
                ThreadEntry(
                    message_id=key,
                    addresses=(*sender, *shown) if visible else bcc_view,
                    bcc_addresses=bcc_view,
                    hold_id=hold_id,
                )
            )
        if self._threads_task is None or self._threads_task.done():
            self._threads_task = asyncio.ensure_future(self._flush_threads())

    async def flush_threads(self) -> None:
        """Wait until the thread entries recorded so far are written (tests, shutdown)."""
        while self._threads_task is not None and not self._threads_task.done():
            await asyncio.shield(self._threads_task)

    async def _flush_threads(self) -> None:
        while self._threads:
            batch, self._threads = self._threads[:500], self._threads[500:]
            try:
                await self.store.record_threads(batch)
            except Exception as exc:  # advisory: a lost entry only means a later hold
                self.log.warning("thread_record_error", error=repr(exc)[:200])
        now = time.monotonic()
        if now - self._threads_pruned_at >= 3600 or not self._threads_pruned_at:
            self._threads_pruned_at = now
            cutoff = datetime.now(UTC) - timedelta(days=self.settings.thread_retention_days)
            try:
                await self.store.prune_threads(cutoff)
            except Exception as exc:
                self.log.warning("thread_record_error", error=repr(exc)[:200])

    async def _history(self, sender: str) -> SenderHistory:
        if not sender:
            return SenderHistory()
        try:
            rcpts, names = await self.store.sender_history(sender)
        except Exception as exc:
            self.log.warning("history_unavailable", error=repr(exc)[:200])
            return SenderHistory()
        return SenderHistory(recipients=rcpts, contact_names=names, known=True)

    async def _execute(
        self, tx: Transaction, decision: DecisionLike, rcpts: list[str], decision_id: str
    ) -> tuple[str, str | None]:
        """Carry out the verdict: (the client's reply, the hold id if one was stored)."""
        verdict = decision.verdict
        msg = decision.message
        action = verdict.action
        self.metrics.messages.labels(action.value).inc()
        for r in verdict.rules:
            self.metrics.rule_matches.labels(r.rule_id, "enforce").inc()
        for r in verdict.audit_rules:
            self.metrics.rule_matches.labels(r.rule_id, "audit").inc()
        names = {a.addr.lower(): a.display_name for a in (*msg.to, *msg.cc, *msg.bcc)}
        options = SendOptions(smtputf8=tx.smtputf8, eightbit=tx.eightbit)
        history = (tx.mail_from, names)
        if action is Action.PASS:
            out = await self.delivery.deliver_now(
                tx.raw, tx.mail_from, rcpts, options=options, history=history
            )
            if out.reply.startswith("2"):
                self.remember_thread(msg, visible=True)
            return out.reply, None
        if action is Action.BCC:
            reply, removed = await self._bcc(tx, rcpts, options, history)
            if reply.startswith("2"):
                self.remember_thread(msg, visible=False)
                self._bcc_notice(tx, decision, rcpts, removed, names, decision_id)
            return reply, None
        if action in (Action.HOLD, Action.DELAY):
            if self.holds is None:
                return replies.LOCAL_ERROR, None
            rec = await self.holds.hold(
                raw=tx.raw,
                verdict=verdict,
                message=msg,
                mail_from=tx.mail_from,
                rcpts=rcpts,
                auth_user=tx.auth_principal,
            )
            self.remember_thread(msg, visible=True, hold_id=rec.id)
            tmpl = replies.DELAYED if action is Action.DELAY else replies.HELD
            return tmpl.format(id=replies.ascii_text(rec.id)), rec.id
        # reject
        return replies.REJECTED.format(reason=self._reason(verdict, tx)), None

    def _bcc_notice(
        self,
        tx: Transaction,
        decision: DecisionLike,
        rcpts: list[str],
        removed: tuple[str, ...],
        names: Mapping[str, str],
        decision_id: str,
    ) -> None:
        """Tell the sender what the rewrite changed (issue 9): queued in the background,
        never delaying or failing the transaction."""
        if self.bcc_notices is None:
            return
        try:
            task = self.bcc_notices.submit(
                org=self.org,
                decision_id=decision_id,
                mail_from=tx.mail_from,
                auth_user=tx.auth_principal,
                rcpts=rcpts,
                message=decision.message,
                verdict=decision.verdict,
                removed=removed,
                names=names,
            )
        except Exception as exc:
            self.log.error("bcc_notice.failed", decision_id=decision_id, error=repr(exc)[:300])
            return
        if task is not None:  # drained with the other actions on shutdown
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _reason(self, verdict: Verdict, tx: Transaction) -> str:
        rule = next((r for r in verdict.rules if r.action is Action.REJECT), None)
        if rule is None:
            return "Message refused by policy"
        lang = self.language_of(tx.auth_user or tx.mail_from)
        text = rule.reason.get(lang) or rule.reason.en or rule.rule_id
        return replies.smtp_text(
            f"{text} [{rule.rule_id}]",
            utf8=tx.smtputf8,
            fallback=f"{rule.reason.en or 'Message refused by policy'} [{rule.rule_id}]",
        )

    async def _bcc(
        self,
        tx: Transaction,
        rcpts: list[str],
        options: SendOptions,
        history: tuple[str, Mapping[str, str]],
    ) -> tuple[str, tuple[str, ...]]:
        """Deliver with visible external recipients moved to Bcc: (the reply, the
        addresses taken out of To/Cc)."""
        org = self.org
        header = self.settings.bcc_header

        def both() -> tuple[RewriteResult, RewriteResult | None]:
            plain = rewrite_recipients(tx.raw, org.is_internal)
            if plain.visible or header is None or not plain.changed:
                return plain, None
            return plain, rewrite_recipients(tx.raw, org.is_internal, record_header=header)

        # Rewriting reads hostile header bytes (250,000 folded lines): off the event loop,
        # both versions in one step, in the Bcc rewrite pool within its budget (issue 12).
        # Past the budget the mail is refused like an unsafe rewrite (fail closed).
        try:
            plain, marked_or_none = await budget.run(budget.BCC_REWRITE, both)
        except budget.BudgetExceeded:
            self.log.error("bcc_rewrite_unsafe", sender=tx.mail_from, visible=-1)
            return replies.BCC_UNSAFE, ()
        if plain.visible:  # fail closed: never deliver a bcc verdict with externals visible
            self.log.error("bcc_rewrite_unsafe", sender=tx.mail_from, visible=len(plain.visible))
            return replies.BCC_UNSAFE, ()
        removed = plain.removed
        if header is None or not plain.changed:
            out = await self.delivery.deliver_now(
                plain.raw, tx.mail_from, rcpts, options=options, history=history
            )
            return out.reply, removed
        marked = marked_or_none
        assert marked is not None
        if marked.visible:
            self.log.error("bcc_rewrite_unsafe", sender=tx.mail_from, visible=len(marked.visible))
            return replies.BCC_UNSAFE, ()
        if self.settings.bcc_header_to_external:
            out = await self.delivery.deliver_now(
                marked.raw, tx.mail_from, rcpts, options=options, history=history
            )
            return out.reply, removed
        internal = [r for r in rcpts if org.is_internal(r)]
        external = [r for r in rcpts if not org.is_internal(r)]
        first = (
            await self.delivery.deliver_now(
                plain.raw, tx.mail_from, external, options=options, history=history
            )
            if external
            else None
        )
        if first is not None and not first.reply.startswith("2"):
            return first.reply, removed
        if not internal:
            return (first.reply if first else replies.OK), removed
        second = await self.delivery.deliver_now(
            marked.raw, tx.mail_from, internal, options=options, history=history
        )
        if second.reply.startswith("2") or first is None:
            return second.reply, removed
        # the external copy is out already: the internal one must not be lost or refused
        did = await self.delivery.enqueue(
            marked.raw, tx.mail_from, internal, kind="mail", last_error=second.reply
        )
        return f"250 2.0.0 OK (internal copy queued as Q{did})", removed

    def _audit(
        self,
        tx: Transaction,
        decision: DecisionLike,
        action: str,
        reply: str,
        start: float,
        n_rcpts: int,
        decision_id: str,
    ) -> None:
        msg = decision.message
        org = self.org
        external = sum(1 for r in tx.rcpts if not org.is_internal(r))
        self.log.info(
            "message",
            decision_id=decision_id,
            message_id=msg.message_id[:300],
            sender=tx.mail_from,
            auth_user=tx.auth_principal,
            trusted_client=tx.trusted_client,
            peer=tx.peer,
            listener=tx.listener,
            recipients=n_rcpts,
            external_recipients=external,
            visible_recipients=len(msg.visible_recipients),
            size=len(tx.raw),
            action=action,
            rules=list(decision.verdict.rule_ids),
            audit_rules=[r.rule_id for r in decision.verdict.audit_rules],
            reply=reply[:200],
            decide_ms=round(decision.cpu_seconds * 1000, 2),
            total_ms=round((asyncio.get_running_loop().time() - start) * 1000, 2),
            policy=decision.verdict.policy_version,
            at=time.time(),
        )
