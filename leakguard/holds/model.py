"""Hold and delivery records, and the store protocol the relay, web, reply and CLI share.

The store (``leakguard.store``) implements ``Store`` over SQLite or PostgreSQL; tests may use
the same SQLite implementation on a temporary directory. Every state change goes through
``Store.transition`` (a compare-and-set that records who, how and when), so web, reply,
CLI and timers resolve holds through one path (the Mailman ``handle_message`` lesson).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from leakguard.types import Message, Verdict


class HoldState(enum.StrEnum):
    HELD = "held"
    DELAYED = "delayed"  # leaves by itself at ``due_at`` unless cancelled
    RELEASED = "released"
    RELEASED_BCC = "released_bcc"
    DISCARDED = "discarded"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in (HoldState.HELD, HoldState.DELAYED)


class Via(enum.StrEnum):
    RELAY = "relay"  # created by the relay
    WEB = "web"
    REPLY = "reply"
    CLI = "cli"
    TIMER = "timer"


@dataclass(frozen=True, slots=True)
class HoldRecord:
    id: str  # short, URL-safe, unguessable enough to quote in a 250 reply ("H-7K3QX9PM")
    state: HoldState
    created_at: datetime  # timezone-aware UTC
    expires_at: datetime
    due_at: datetime | None  # delayed holds: when they leave by themselves
    escalate_at: datetime | None  # two-person check: when the deputy is asked
    message_sha256: str
    mail_from: str
    rcpts: tuple[str, ...]
    auth_user: str | None
    subject: str
    action: str  # "hold" or "delay"
    rules: tuple[str, ...]
    verdict_json: str  # the Verdict (facts, findings, reasons) as JSON for notices and pages
    approvers: tuple[str, ...]  # empty: the sender decides
    offer_bcc: bool
    language: str  # "ja" or "en": language of notices for this hold
    escalated: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    hold_id: str
    at: datetime
    from_state: HoldState | None  # None for creation
    to_state: HoldState | None  # None for events that do not change state (notice sent, escalated)
    actor: str  # address, "system", or an admin name
    via: Via
    note: str = ""


class DeliveryState(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    state: DeliveryState
    message_sha256: str
    mail_from: str
    rcpts: tuple[str, ...]
    attempts: int
    next_attempt_at: datetime
    hold_id: str | None
    kind: str  # "mail" (a user's mail), "notice" (a notice we generated), "dsn"
    last_error: str = ""
    created_at: datetime | None = None  # when it was queued (give-up age); set by the store

    @classmethod
    def claimed(
        cls,
        did: int,
        digest: str,
        mail_from: str,
        rcpts: Sequence[str],
        *,
        kind: str,
        hold_id: str | None,
        now: datetime,
    ) -> DeliveryRecord:
        """A row just queued claimed for its first try (``enqueue_claimed``), as written."""
        return cls(
            id=did,
            state=DeliveryState.SENDING,
            message_sha256=digest,
            mail_from=mail_from,
            rcpts=tuple(rcpts),
            attempts=1,
            next_attempt_at=now,
            hold_id=hold_id,
            kind=kind,
            created_at=now,
        )


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token_hash: str  # sha256 hex of the random token; the token itself is never stored
    hold_id: str
    actor: str  # whom the link was issued to
    expires_at: datetime
    used_at: datetime | None


class Store(Protocol):
    """Durable state. Every method commits before it returns (SQLite: WAL + synchronous=FULL)."""

    # -- message bytes (stored once, keyed by sha256)
    async def put_message(self, raw: bytes) -> str: ...
    async def get_message(self, sha256: str) -> bytes: ...

    # -- holds
    async def create_hold(self, hold: HoldRecord, raw: bytes) -> HoldRecord: ...
    async def recent_hold_for(
        self, sha256: str, mail_from: str, rcpts: Sequence[str], since: datetime
    ) -> HoldRecord | None:
        """A hold of these very bytes from this sender to these recipients made since
        ``since`` (a client retrying a transaction whose 250 it never saw)."""
        ...

    async def get_hold(self, hold_id: str) -> HoldRecord | None: ...
    async def list_holds(
        self,
        *,
        states: Sequence[HoldState] = (),
        sender: str | None = None,
        rule: str | None = None,
        older_than: datetime | None = None,
        newer_than: datetime | None = None,
        limit: int = 200,
    ) -> list[HoldRecord]: ...
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
        """Atomically move a hold from one of ``from_states`` to ``to_state``.

        Returns None (and changes nothing) when the hold is not in ``from_states``: the
        first of two concurrent answers wins. When ``deliver`` = (raw bytes, mail_from,
        rcpts) is given, the delivery is queued in the same transaction, so a released
        hold is never lost and never queued twice.
        """
        ...

    async def record_event(self, hold_id: str, *, actor: str, via: Via, note: str) -> None: ...
    async def timeline(self, hold_id: str) -> list[Transition]: ...
    async def timelines(self, hold_ids: Sequence[str]) -> dict[str, list[Transition]]: ...
    async def set_escalated(self, hold_id: str, approvers: Sequence[str]) -> bool:
        """Compare-and-set: True for the one caller that escalated the open hold."""
        ...

    async def due_holds(self, now: datetime) -> list[HoldRecord]:
        """Open holds whose ``due_at``, ``expires_at`` or ``escalate_at`` has passed."""
        ...

    # -- single-use tokens
    async def add_token(self, token: TokenRecord) -> None: ...
    async def use_token(self, token_hash: str, now: datetime) -> TokenRecord | None:
        """Mark a token used and return it; None if unknown, expired or already used."""
        ...

    async def peek_token(self, token_hash: str, now: datetime) -> TokenRecord | None:
        """Return a valid (unknown/expired/used -> None) token without using it."""
        ...

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        """Return a token whatever its state (used or expired); None when unknown."""
        ...

    # -- delivery queue
    async def enqueue_delivery(
        self,
        raw: bytes,
        mail_from: str,
        rcpts: Sequence[str],
        *,
        kind: str = "mail",
        hold_id: str | None = None,
        not_before: datetime | None = None,
        note: str | None = None,
        tokens: Sequence[TokenRecord] = (),
    ) -> int:
        """Queue durably (committed on return); ``not_before`` delays the first attempt;
        ``note``: an event on the hold's timeline, committed with the delivery; ``tokens``:
        the notice's tokens, committed with it."""
        ...

    async def claim_deliveries(
        self, worker: str, now: datetime, limit: int
    ) -> list[DeliveryRecord]:
        """Claim due queued deliveries (state -> sending) so no two workers send one twice."""
        ...

    async def finish_delivery(
        self,
        delivery_id: int,
        *,
        state: DeliveryState,
        error: str = "",
        dsn: bytes | None = None,
        dsn_to: str = "",
        worker: str | None = None,
    ) -> int | None: ...
    async def retry_delivery(
        self,
        delivery_id: int,
        *,
        next_attempt_at: datetime,
        error: str,
        worker: str | None = None,
    ) -> bool: ...
    async def queue_depth(self) -> int: ...
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
        """``enqueue_delivery`` with ``note`` unless the hold's timeline has it (None)."""
        ...

    # -- admin sessions logged out (shared by every node and worker)
    async def revoke_session(self, session_id: str, expires_at: datetime) -> None: ...
    async def session_revoked(self, session_id: str) -> bool: ...

    # -- sender history
    async def record_sent(self, sender: str, rcpts: Sequence[tuple[str, str]]) -> None:
        """Remember (address, display name) pairs the sender's mail went out to."""
        ...

    async def sender_history(
        self, sender: str
    ) -> tuple[frozenset[str], dict[str, tuple[str, ...]]]: ...

    async def close(self) -> None: ...


class HoldHandler(Protocol):
    """What the relay calls for held mail and for replies to hold notices.

    Implemented by ``leakguard.holds.service.HoldService``.
    """

    async def hold(
        self,
        *,
        raw: bytes,
        verdict: Verdict,
        message: Message,
        mail_from: str,
        rcpts: Sequence[str],
        auth_user: str | None,
    ) -> HoldRecord:
        """Store the mail durably (committed before return) and queue the notice durably."""
        ...

    def is_command_address(self, rcpt: str) -> bool:
        """True for the notice Reply-To address (``command_address``, with or without +token)."""
        ...

    async def handle_reply(
        self,
        *,
        raw: bytes,
        mail_from: str,
        rcpts: Sequence[str],
        auth_user: str | None,
    ) -> str:
        """Execute a reply command; returns the SMTP reply (e.g. "250 2.0.0 OK")."""
        ...
