"""Writing the decision journal and retained mail (issue 9) beside each transaction.

The relay hands every decided message to ``JournalWriter.submit`` after it answered the
client. One background task gathers what was submitted for up to ``linger`` seconds (or
``batch`` rows), builds the rows (masking the evidence, redacting the subject, hashing,
sealing the bytes with AES-GCM) in one worker-thread call, and writes them in one
transaction, so the journal costs the SMTP transaction neither a commit nor CPU on the
event loop, and one connection sending mail after mail (issue 11: one session) costs one
thread hand-off and one commit per batch instead of per mail.

The journal is the officer's record, not the mail: the 250 never waits for it. A row still
in memory when the process is killed is lost (the mail itself is safe: sent, or a durable
hold), which is why holds also keep their own durable history. Memory is bounded: beyond
``buffer_bytes`` of waiting retained bytes a mail is journaled with its hash only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from leakguard.masking import mask_identifiers, redact_text
from leakguard.organization import Person
from leakguard.store import SqlStore
from leakguard.store.journal import DecisionEntry, Retained
from leakguard.store.sealing import Sealer
from leakguard.types import Action, Message, Verdict

MAX_FINDINGS = 60
MAX_ADDRESSES = 20


@dataclass(frozen=True, slots=True)
class JournalSettings:
    mode: str = "encrypted"  # encrypted | hashed | off (retained mail; the row is always kept)
    retain_seconds: float = 30 * 86400.0
    journal_seconds: float = 400 * 86400.0
    max_message_size: int = 50 * 1024 * 1024
    buffer_bytes: int = 256 * 1024 * 1024
    batch: int = 200
    prune_interval: float = 3600.0
    linger: float = 0.1  # seconds a flush waits to gather a batch


def outcome_of(action: Action, reply: str) -> str:
    """What happened to the mail, from the verdict and the reply the client got."""
    if not reply.startswith("2"):
        return "rejected" if action is Action.REJECT else "failed"
    return {
        Action.PASS: "sent",
        Action.BCC: "sent_bcc",
        Action.HOLD: "held",
        Action.DELAY: "delayed",
        Action.REJECT: "rejected",
    }[action]


def verdict_summary(verdict: Verdict) -> dict[str, Any]:
    """The verdict as the officer's record keeps it: facts, the rules with their reasons,
    and the findings with masked details (never a full identifier)."""

    def masked(value: str, limit: int = 300) -> str:
        return mask_identifiers(value[: limit * 4])[:limit]

    findings = []
    for f in verdict.findings[:MAX_FINDINGS]:
        findings.append(
            {
                "detector": f.detector,
                "fact": f.fact,
                "addresses": [a[:320] for a in f.addresses[:MAX_ADDRESSES]],
                "detail": masked(f.detail),
                "evidence": {k[:64]: masked(str(v)) for k, v in list(f.evidence.items())[:20]},
            }
        )

    def rule(r: Any) -> dict[str, Any]:
        return {
            "id": r.rule_id,
            "action": r.action.value,
            "mode": r.mode,
            "reason": {"ja": r.reason.ja, "en": r.reason.en},
        }

    return {
        "facts": {k: int(v) for k, v in verdict.facts.items() if v},
        "rules": [rule(r) for r in verdict.rules],
        "audit_rules": [rule(r) for r in verdict.audit_rules],
        "findings": findings,
        "findings_total": len(verdict.findings),
        "approval": verdict.approval,
    }


class JournalWriter:
    def __init__(
        self,
        store: SqlStore,
        settings: JournalSettings,
        *,
        sealer: Sealer | None,
        executor: Executor | None,
        log: Any,
        on_error: Callable[[str], None] = lambda _kind: None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.sealer = sealer if settings.mode == "encrypted" else None
        self.executor = executor
        self.log = log
        self.on_error = on_error
        self._queued: list[tuple[dict[str, Any], bool]] = []  # submitted, not yet built
        self._pending: list[tuple[DecisionEntry, Retained | None]] = []  # built, not written
        self._pending_bytes = 0
        self._task: asyncio.Task[None] | None = None
        self._now = asyncio.Event()  # flush at once (``flush``, an abandoned mark)
        self._flushing = False
        self._pruned_at = 0.0
        # decisions whose client's connection ended before it showed it read the reply:
        # marked on their row (``abandoned``: a retry of them is recognised)
        self._abandoned_early: set[str] = set()  # before the row was built
        self._abandoned_written: list[str] = []  # after it was written: one UPDATE per flush
        self._building: set[str] = set()  # ids of the batch being built now
        self._writing: set[str] = set()  # ids of the batch being written now

    # ------------------------------------------------------------------ building a row

    def build(
        self,
        *,
        decision_id: str,
        raw: bytes,
        message: Message,
        verdict: Verdict,
        sender: str,
        auth_user: str | None,
        rcpts: tuple[str, ...],
        external_rcpts: int,
        department: str,
        reply: str,
        hold_id: str | None,
        at: datetime,
        retain: bool,
        sha256: str = "",
    ) -> tuple[DecisionEntry, Retained | None]:
        """One journal row and its retained form (CPU work: called in a worker thread)."""
        digest = sha256 or hashlib.sha256(raw).hexdigest()
        entry = DecisionEntry(
            id=decision_id,
            at=at,
            sender=sender,
            auth_user=auth_user,
            department=department,
            rcpts=rcpts,
            external_rcpts=external_rcpts,
            subject=redact_text(message.subject[:2000])[:300],
            message_id=message.message_id[:300],
            action=verdict.action.value,
            outcome=outcome_of(verdict.action, reply),
            reply=mask_identifiers(reply[:200]),
            rules=verdict.rule_ids,
            audit_rules=tuple(r.rule_id for r in verdict.audit_rules),
            summary=verdict_summary(verdict),
            policy_version=verdict.policy_version,
            size=len(raw),
            sha256=digest,
            hold_id=hold_id,
        )
        s = self.settings
        if s.mode == "off":
            return entry, None
        expires = at + timedelta(seconds=s.retain_seconds)
        sealed = None
        if retain and self.sealer is not None and len(raw) <= s.max_message_size:
            sealed = self.sealer.seal(raw, aad=decision_id)
        mode = "encrypted" if sealed is not None else "hashed"
        return entry, Retained(
            mode=mode, sha256=digest, size=len(raw), expires_at=expires, sealed=sealed
        )

    # ------------------------------------------------------------------ submitting

    def submit(self, **fields: Any) -> None:
        """Queue one row (built off the loop, with its batch); never raises, never waits."""
        raw: bytes = fields["raw"]
        retain = self._pending_bytes + len(raw) <= self.settings.buffer_bytes
        if not retain and self.settings.mode == "encrypted":
            self.log.warning(
                "journal_buffer_full", decision_id=fields["decision_id"], size=len(raw)
            )
            self.on_error("buffer_full")
        if retain:
            self._pending_bytes += len(raw)
        fields["at"] = datetime.now(UTC)
        self._queued.append((fields, retain))
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._flush())

    def _build_batch(
        self, batch: list[tuple[dict[str, Any], bool]]
    ) -> list[tuple[DecisionEntry, Retained | None] | BaseException]:
        out: list[tuple[DecisionEntry, Retained | None] | BaseException] = []
        for fields, retain in batch:
            try:
                out.append(self.build(retain=retain, **fields))
            except Exception as exc:  # one bad row never loses the others
                out.append(exc)
        return out

    async def _build_queued(self) -> None:
        """Build every queued row (one worker-thread call) into ``_pending``."""
        batch, self._queued = self._queued, []
        loop = asyncio.get_running_loop()
        self._building = {f["decision_id"] for f, _ in batch}
        try:
            built = await loop.run_in_executor(self.executor, self._build_batch, batch)
        finally:
            self._building = set()
            self._pending_bytes -= sum(len(f["raw"]) for f, retain in batch if retain)
        for item in built:
            if isinstance(item, BaseException):
                self.log.error("journal_error", stage="build", error=repr(item)[:300])
                self.on_error("build")
                continue
            entry, kept = item
            if entry.id in self._abandoned_early:
                self._abandoned_early.discard(entry.id)
                entry = replace(entry, abandoned=True)
            self._pending.append((entry, kept))
            if kept is not None and kept.sealed is not None:
                self._pending_bytes += len(kept.sealed)

    def abandoned(self, decision_id: str) -> None:
        """This decision's client left without showing it read the reply (``Relay.abandoned``):
        its row says so, for other workers and nodes asking whether a transaction is a
        retry. Never raises, never waits. Written without lingering: another node asks
        for it when the client retries."""
        self._now.set()
        for i, (entry, kept) in enumerate(self._pending):
            if entry.id == decision_id:
                self._pending[i] = (replace(entry, abandoned=True), kept)
                return
        if decision_id in self._building or any(
            f["decision_id"] == decision_id for f, _ in self._queued
        ):
            if len(self._abandoned_early) < 100_000:
                self._abandoned_early.add(decision_id)  # marked when its row is built
            return
        # written, or being written (the update runs after that batch, in the same flush
        # loop): rows are submitted before their 250 goes out, so a decision whose client
        # is gone is in one of these places; no memory of written ids is needed (it grew
        # with every mail up to its bound, issue 11's flat-memory goal)
        self._abandoned_written.append(decision_id)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        if len(self._queued) < self.settings.batch and self.settings.linger > 0:
            with contextlib.suppress(TimeoutError):  # gather a batch, unless asked to flush
                await asyncio.wait_for(self._now.wait(), self.settings.linger)
            if not self._flushing:
                self._now.clear()
        while True:
            if not (self._queued or self._pending or self._abandoned_written):
                # prune when due, then look again: a row submitted while the prune (or the
                # last write) awaited is written by this task, which ``submit`` saw running
                now = time.monotonic()
                if self._pruned_at and now - self._pruned_at < self.settings.prune_interval:
                    break
                self._pruned_at = now
                await self.prune()
                continue
            if self._queued and len(self._pending) < self.settings.batch:
                await self._build_queued()
                continue
            if self._abandoned_written:
                ids = self._abandoned_written[:1000]
                self._abandoned_written = self._abandoned_written[1000:]
                try:
                    await self.store.journal.mark_abandoned(ids)
                except Exception as exc:
                    self.log.error(
                        "journal_error", stage="abandoned", error=repr(exc)[:300], rows=len(ids)
                    )
                    self.on_error("write")
                continue
            batch = self._pending[: self.settings.batch]
            self._pending = self._pending[self.settings.batch :]
            self._writing = {entry.id for entry, _ in batch}
            try:
                await self.store.journal.record(batch)
            except Exception as exc:
                self.log.error(
                    "journal_error", stage="write", error=repr(exc)[:300], rows=len(batch)
                )
                self.on_error("write")
            finally:
                self._writing = set()
                self._pending_bytes -= sum(
                    len(k.sealed) for _, k in batch if k is not None and k.sealed is not None
                )

    async def prune(self) -> tuple[int, int]:
        """Delete expired retained mail and old journal rows (hourly, and on demand)."""
        now = datetime.now(UTC)
        try:
            kept, rows = await self.store.journal.prune(
                now, journal_before=now - timedelta(seconds=self.settings.journal_seconds)
            )
        except Exception as exc:
            self.log.warning("journal_error", stage="prune", error=repr(exc)[:300])
            self.on_error("prune")
            return 0, 0
        if kept or rows:
            self.log.info("journal_pruned", retained=kept, decisions=rows)
        return kept, rows

    async def flush(self) -> None:
        """Write every submitted row now and wait until it is written (tests, shutdown)."""
        self._now.set()
        self._flushing = True
        try:
            while True:
                if self._task is not None and not self._task.done():
                    await asyncio.shield(self._task)
                elif self._queued or self._pending or self._abandoned_written:
                    self._task = asyncio.ensure_future(self._flush())
                else:
                    break
        finally:
            self._flushing = False
            self._now.clear()


def department_of(directory_lookup: Callable[[str], Person | None], *who: str | None) -> str:
    """The department of the first of ``who`` found in the directory, or ""."""
    for w in who:
        if w:
            p = directory_lookup(w)
            if p is not None and p.department:
                return p.department
    return ""
