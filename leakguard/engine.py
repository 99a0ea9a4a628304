"""The engine: parse once, run every detector, let the policy decide.

``Engine`` is what the relay and ``leakguard check`` call. It is pure CPU work (no I/O
besides loading policy files on construction / reload) and safe to share.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from leakguard.detectors.run import run_detectors
from leakguard.extract import ExtractConfig, Extractor
from leakguard.message.parse import parse_message
from leakguard.organization import Context, SenderHistory
from leakguard.policy.engine import evaluate
from leakguard.policy.loader import Policy, load_policy
from leakguard.types import Message, Verdict

# Looks up the relay's own thread record: given Message-IDs (In-Reply-To/References), who
# saw whom in the mails it sent with those ids; None when unknown (no store, timeout).
ThreadLookup = Callable[[tuple[str, ...]], "tuple[frozenset[str], ...] | None"]

MAX_THREAD_IDS = 20  # Message-IDs looked up per mail: In-Reply-To and the last References
_MSGID_RE = re.compile(r"<([^<>\s]{1,250})>")
_REFERENCES_TAIL = 20000  # characters of References read (its end: the latest mails)


def thread_ids(msg: Message) -> tuple[str, ...]:
    """The Message-IDs this mail answers: In-Reply-To first, then the latest References
    (at most ``MAX_THREAD_IDS``, without angle brackets, de-duplicated)."""
    ids: list[str] = []
    irt = msg.header("In-Reply-To") or ""
    ids.extend(_MSGID_RE.findall(irt[:2000]))
    refs = msg.header("References") or ""
    ids.extend(reversed(_MSGID_RE.findall(refs[-_REFERENCES_TAIL:])))
    # An invitation's updates share its UID: the people invited together earlier have met.
    ids.extend(calendar_thread_id(uid) for uid in msg.calendar_uids)
    return tuple(dict.fromkeys(ids))[:MAX_THREAD_IDS]


def calendar_thread_id(uid: str) -> str:
    """The thread-record key of a calendar event: its UID in a namespace of its own."""
    return f"ical-uid:{uid}"


def with_thread_record(
    msg: Message, history: SenderHistory, lookup: ThreadLookup | None
) -> SenderHistory:
    """``history`` with ``sent_together`` filled from the relay's thread record.

    The lookup runs between parse and detect (detectors do no I/O). Any failure leaves
    the record unknown: the mail is then judged without it, never let through for it.
    """
    if lookup is None:
        return history
    ids = thread_ids(msg)
    if not ids:
        return history
    try:
        groups = lookup(ids)
    except Exception:
        return history
    if not groups:
        return history
    return dataclasses.replace(history, sent_together=(*history.sent_together, *groups))


@dataclass(frozen=True, slots=True)
class Decision:
    message: Message
    verdict: Verdict
    cpu_seconds: float


def with_default_envelope(msg: Message) -> Message:
    """DESIGN §7: without an envelope, the sender is From and the recipients To+Cc+Bcc."""
    changes: dict[str, object] = {}
    if msg.envelope_from is None and msg.from_:
        changes["envelope_from"] = msg.from_[0]
    if not msg.envelope_rcpts:
        seen: set[str] = set()
        rcpts = []
        for a in (*msg.to, *msg.cc, *msg.bcc):
            if a.domain and a.key not in seen:
                seen.add(a.key)
                rcpts.append(a)
        changes["envelope_rcpts"] = tuple(rcpts)
    return dataclasses.replace(msg, **changes) if changes else msg  # type: ignore[arg-type]


_WARM_UP_MAIL = (
    b"From: a <a@warm-up.invalid>\r\nTo: =?UTF-8?B?5L2Q6Jek?= <b.c@warm-up.example>\r\n"
    b"Subject: warm-up\r\n\r\n> On Mon, X <x@y.example> wrote:\r\n> hi\r\n"
)


def warm_up(policy: Policy) -> None:
    """Decide one synthetic mail so detectors build their per-organisation indexes now."""
    msg = with_default_envelope(parse_message(_WARM_UP_MAIL))
    ctx = Context(org=policy.organization)
    facts, findings = run_detectors(msg, ctx)
    evaluate(policy, msg, ctx, facts, findings)


class Engine:
    def __init__(
        self,
        policy: Policy,
        *,
        policy_path: Path | None = None,
        org_path: Path | None = None,
        warm: bool = True,
        extract: ExtractConfig | None = None,
        extractor: Extractor | None = None,
    ) -> None:
        self.policy_path = policy_path
        self.org_path = org_path
        # Attachment text is read by worker processes, started on the first mail that has
        # an attachment (``start_extraction`` starts them at once) and stopped by ``close``.
        self.extractor = extractor or Extractor(extract)
        if warm:
            warm_up(policy)
        self.policy = policy

    @classmethod
    def from_files(
        cls, policy_path: Path, org_path: Path | None = None, extract: ExtractConfig | None = None
    ) -> Engine:
        return cls(
            load_policy(policy_path, org_path=org_path),
            policy_path=policy_path,
            org_path=org_path,
            extract=extract,
        )

    def start_extraction(self) -> None:
        """Start the extraction workers now, so the first attachment waits for none."""
        self.extractor.start()

    def close(self) -> None:
        """Stop the extraction workers (they are started again if needed)."""
        self.extractor.close()

    def reload(self) -> Policy:
        """Load the policy files again. On any error raise and keep the running policy."""
        if self.policy_path is None:
            return self.policy
        new = load_policy(self.policy_path, org_path=self.org_path)
        warm_up(new)  # build the organisation's indexes before the swap, not on a message
        self.policy = new
        return new

    def decide(
        self,
        raw: bytes,
        *,
        envelope_from: str | None = None,
        rcpts: Sequence[str] | None = None,
        history: SenderHistory | None = None,
        auth_user: str | None = None,
        thread_lookup: ThreadLookup | None = None,
    ) -> Decision:
        """Parse, detect, decide. ``thread_lookup`` (the relay's thread record; optional)
        is called once after the parse with the mail's In-Reply-To/References ids."""
        start = time.thread_time()  # this decision's own CPU, not its neighbours'
        policy = self.policy  # one policy for the whole decision, even if reloaded meanwhile
        msg = parse_message(raw, envelope_from=envelope_from, envelope_rcpts=rcpts)
        if msg.attachments:  # attachments, calendar parts or attached messages: read them
            msg = self.extractor.read(msg)
        msg = with_default_envelope(msg)
        hist = with_thread_record(msg, history or SenderHistory(), thread_lookup)
        ctx = Context(org=policy.organization, history=hist, auth_user=auth_user)
        facts, findings = run_detectors(msg, ctx)
        verdict = evaluate(policy, msg, ctx, facts, findings)
        return Decision(message=msg, verdict=verdict, cpu_seconds=time.thread_time() - start)
