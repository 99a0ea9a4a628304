"""``HoldService``: the hold workflow (DESIGN §5) behind the relay's ``HoldHandler`` protocol.

One resolve path: web, reply commands, the CLI and the timers all call ``resolve`` (the
Mailman ``handle_message`` lesson), which checks who may do what, spends the single-use
token, moves the hold with the store's compare-and-set ``transition`` (queueing the
delivery in the same transaction) and tells the people concerned.

Who may answer a hold:
- the sender (envelope sender or SMTP AUTH identity recorded with the hold), unless the
  hold needs approval: then the sender may only withdraw (discard);
- an approver (``approval: supervisor`` / an address / ``group:<name>``, plus the deputy
  after escalation): everything. The sender (envelope sender or AUTH user) is never an
  approver of their own mail: such approvers are dropped, a deputy who is the sender is not
  escalated to, and ``role_of`` ranks "sender" before "approver";
- an administrator (CLI, admin web view): everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.policy
import functools
import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import structlog

from leakguard import budget, stepproc
from leakguard.durations import format_duration, parse_duration
from leakguard.holds import codec
from leakguard.holds.commands import Decision as Decision  # re-exported
from leakguard.holds.commands import Reading, Unclear, read_command
from leakguard.holds.config import HoldsConfig
from leakguard.holds.explain import (
    Explanation,
    explain,
    local_time,
    zone,
)
from leakguard.holds.model import HoldRecord, HoldState, Store, TokenRecord, Transition, Via
from leakguard.holds.notice import (
    NOTICE_HEADER,
    Answer,
    build_mail,
    command_reply_to,
    notice_context,
)
from leakguard.holds.report_reply import handle_report_reply
from leakguard.holds.texts import t
from leakguard.holds.tokens import LinkSigner, hash_token, looks_like_token, new_hold_id, new_token
from leakguard.i18n import normalize_lang
from leakguard.message import parse_message
from leakguard.message.rewrite import bcc_rewrite
from leakguard.officer.links import ReportLinks, ReportRef
from leakguard.organization import Organization
from leakguard.randomness import sha256_small
from leakguard.types import Action, Message, Verdict
from leakguard.web.config import WebConfig

log = structlog.get_logger("leakguard.holds")

# Approvers entry meaning "approval required but nobody could be found": only administrators
# (CLI, admin web view) can release; the sender may still withdraw.
ADMIN_ONLY = "admin:"


# Hold notices that could not be queued when the hold was made are retried by the timers.
NOTICE_FAILED = "notice could not be queued"
NOTICE_RESENT = "notice re-sent"
NOTICE_GAVE_UP = "notice retry given up"
_NOTICE_RETRIES = 5
_NOTICE_SCAN_LIMIT = 10_000
_SENT_NOTE = re.compile(r"^notice (held|delayed|approval|pending) sent to (.+)$")


# Appended to the transition note of a hold discarded as "this was a mistake".
MISTAKE_NOTE = " [mistake]"
HOOK_TIMEOUT = 30.0  # seconds one on_resolved / on_report hook may take

# A transaction repeated within this time is a client's retry (see ``HoldService.hold``).
RETRY_WINDOW = timedelta(minutes=10)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What ``resolve`` did. ``code`` is a state (success) or an ``err.*`` key (refusal)."""

    ok: bool
    code: str  # "released", "released_bcc", "discarded" | "unknown_hold", "closed", ...
    hold: HoldRecord | None = None
    detail: str = ""

    def message(self, lang: str) -> str:
        if self.ok:
            text = t(f"res.{self.code}", lang)
            if self.code == "reported" and self.detail:  # the incident's reference number
                text += " " + t("res.reported_id", lang, id=self.detail)
            return text
        state = t(f"state.{self.hold.state}", lang) if self.hold is not None else ""
        approvers = (
            ", ".join(a for a in self.hold.approvers if a != ADMIN_ONLY) if self.hold else ""
        )
        return t(f"err.{self.code}", lang, state=state, approvers=approvers or "-")


@dataclass(frozen=True, slots=True)
class LinkView:
    """A valid review link: the hold, to whom the link was issued and their role."""

    hold: HoldRecord
    actor: str
    role: str  # "sender", "approver" or "" (issued to someone no longer entitled)
    token: str
    lang: str


@dataclass(frozen=True, slots=True)
class SpentLink:
    """A genuine review link that can no longer be used: already used, or expired.

    Carries only what the link's own hold says (the token is bound to one hold): what
    happened to the mail, by whom and when.
    """

    hold: HoldRecord
    lang: str
    used: bool  # False: the link expired unused
    actor: str  # who closed the hold, as recorded ("" while it is still open)
    via: Via | None  # how it was closed
    at: datetime | None  # when it was closed
    issued_to: str = ""  # the person the link was issued to (for their report link)


# --------------------------------------------------------------------------- reply parsing


def parse_command(text: str) -> Decision | None:
    """The command a reply's new text plainly gives, else None (see ``holds.commands``)."""
    return read_command(text).decision


def is_automatic(msg: Message, mail_from: str) -> bool:
    """Bounces, auto-replies and our own notices: never answered, never noticed (RFC 3834)."""
    if not mail_from or message_is_automatic(msg):
        return True
    prec = (msg.header("Precedence") or "").strip().lower()
    if prec in ("bulk", "junk", "list", "auto_reply"):
        return True
    return msg.header("X-Autoreply") is not None or msg.header("X-Autorespond") is not None


def message_is_automatic(message: Message) -> bool:
    auto = (message.header("Auto-Submitted") or "").strip().lower()
    if auto and not auto.startswith("no"):
        return True
    return message.header(NOTICE_HEADER) is not None


# --------------------------------------------------------------------------- the service


def _email_like(s: str | None) -> bool:
    return bool(s) and "@" in (s or "")


def _own_identities(mail_from: str | None, auth_user: str | None) -> frozenset[str]:
    """The sender's identities on a hold (lower case): envelope sender and AUTH user."""
    return frozenset(x.strip().lower() for x in (mail_from, auth_user) if x and x.strip())


class HoldService:
    """Implements ``HoldHandler`` for the relay and the actions of web, reply and CLI."""

    def __init__(
        self,
        store: Store,
        config: HoldsConfig,
        web: WebConfig,
        *,
        secret: str | bytes,
        organization: Organization | Callable[[], Organization] | None = None,
        bcc_rewrite: Callable[[bytes, Callable[[str], bool]], bytes] | None = None,
        now: Callable[[], datetime] = _utcnow,
        base_url: str | None = None,
        report_links: ReportLinks | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.web = web
        # the base of review links; the service sets it to the URL the web listener really
        # answers on (``ServiceConfig.link_base_url``) once the port is bound
        self.base_url = base_url
        self._org = organization
        self._bcc_rewrite = bcc_rewrite
        self.now = now
        self.expire_after = timedelta(seconds=parse_duration(config.expire_after))
        self.escalate_after = timedelta(seconds=parse_duration(config.escalate_after))
        self.default_delay = timedelta(seconds=parse_duration(config.default_delay))
        self.signer = LinkSigner(
            secret, max_age_seconds=int(self.expire_after.total_seconds()) + 86400
        )
        self.secret = secret
        cmd = config.command_address.strip().lower()
        self._cmd_local, _, self._cmd_domain = cmd.rpartition("@")
        self._stopping = asyncio.Event()
        self._notice_pending: dict[str, int] = {}  # hold id -> failed attempts
        # holds created before this time were scanned for a missing first notice
        self._notice_scanned_to: datetime | None = None
        self.notice_grace = timedelta(seconds=parse_duration(config.notice_grace))
        # Hooks for the officer's desk (issue 9; ``leakguard.officer``): called after every
        # successful resolution (the moved hold, the decision, actor, via, and whether it
        # was discarded as "this was a mistake"), and when a report command arrives (the
        # hold, actor, via, the person's note). A failing hook is logged; it never undoes
        # or breaks the resolution.
        self.on_report: list[Callable[[HoldRecord, str, Via, str], Awaitable[None]]] = []
        self.on_resolved: list[
            Callable[[HoldRecord, Decision, str, Via, bool], Awaitable[None]]
        ] = []
        # Signed "report a mistake" links in notices and on the review page (issue 9).
        self.report_links = report_links
        # First notices queued after ``hold`` returns (``leakguard serve``: the relay's 250
        # then waits for the hold's one commit, not the notices' tokens and queue commits;
        # issue 11). A crash in between is what ``_scan_missing_notices`` is for. Off by
        # default: the CLI and direct callers get the notices before ``hold`` returns.
        self.background_notices = False
        self._notice_tasks: set[asyncio.Task[None]] = set()
        # ``Delivery.enqueue_and_send`` in ``leakguard serve``: a notice is queued already
        # claimed and tried at once with its bytes in hand; None: queued in the store for
        # the delivery loop (the CLI, tools)
        self.sender: Callable[..., Awaitable[int | None]] | None = None
        self._explained: dict[tuple[HoldRecord, str, int], Explanation] = {}

    # ------------------------------------------------------------------ helpers

    @property
    def org(self) -> Organization:
        o = self._org
        if o is None:
            return Organization()
        return o if isinstance(o, Organization) else o()

    def lang_for(self, addr: str | None) -> str:
        default = normalize_lang(self.config.language, "ja")
        if not addr:
            return default
        p = self.org.person(addr)
        if p is not None and p.language:
            return normalize_lang(p.language, default)
        return default

    def review_url(self, token: str, action: str | None = None) -> str:
        base = (self.base_url or self.web.base_url or f"http://{self.web.listen}").rstrip("/")
        url = f"{base}/h/{self.signer.sign(token)}"
        return f"{url}?a={action}" if action else url

    def explain(self, hold: HoldRecord, lang: str) -> Explanation:
        """The hold explained in ``lang``. Remembered for the minute (a hold's first notices,
        to its approvers and its sender, explain the same record in the same language one
        after the other: decoding the verdict and cleaning every line, about 6 % of a
        held mail's GIL time in a py-spy profile, was done twice); the record itself is the
        key, so any change is explained afresh."""
        now = self.now()
        key = (hold, lang, int(now.timestamp() // 60))
        ex = self._explained.get(key)
        if ex is None:
            ex = explain(hold, lang=lang, now=now, timezone=self.config.timezone)
            if len(self._explained) >= 64:
                self._explained.clear()
            self._explained[key] = ex
        return ex

    @staticmethod
    def is_own(hold: HoldRecord, identity: str | None) -> bool:
        """True when ``identity`` is the hold's envelope sender or its SMTP AUTH user."""
        if not identity:
            return False
        ident = identity.strip().lower()
        return bool(ident) and ident in _own_identities(hold.mail_from, hold.auth_user)

    @staticmethod
    def role_of(hold: HoldRecord, identity: str | None) -> str:
        """ "sender", "approver" or "". The sender (envelope or AUTH identity) is never an
        approver of their own mail, whatever the approvers list says (two-person check)."""
        if not identity or not identity.strip():
            return ""
        if HoldService.is_own(hold, identity):
            return "sender"
        ident = identity.strip().lower()
        if ident in {a.strip().lower() for a in hold.approvers if a != ADMIN_ONLY}:
            return "approver"
        return ""

    def _approvers_for(
        self, approval: str | None, sender: str, auth_user: str | None = None
    ) -> tuple[str, ...]:
        """Who may release: never the sender nor the authenticated user who submitted it
        (on a shared mailbox the mailbox's supervisor may be the person who sent it)."""
        if not approval:
            return ()
        own = _own_identities(sender, auth_user)
        org = self.org
        found: list[str] = []
        a = approval.strip()
        if a == "supervisor":
            sup = org.supervisor_of(sender)
            if sup:
                found.append(sup)
        elif a.startswith("group:"):
            found.extend(sorted(org.groups.get(a[6:].strip(), frozenset())))
        elif "@" in a:
            found.append(a)
        approvers = tuple(
            x for x in dict.fromkeys(f.strip() for f in found) if x and x.lower() not in own
        )
        if approvers:
            return approvers
        deputy = (self.config.deputy or "").strip()
        if deputy and deputy.lower() not in own:
            return (deputy,)
        return (ADMIN_ONLY,)

    def _deputy_for(
        self, mail_from: str, auth_user: str | None, approvers: Sequence[str]
    ) -> str | None:
        """The configured deputy to escalate to, unless approval is not needed, the deputy
        already approves, or the mail is the deputy's own (then no escalation: the approvers
        and administrators decide, as when nobody can approve)."""
        deputy = (self.config.deputy or "").strip()
        if not deputy or not approvers or tuple(approvers) == (ADMIN_ONLY,):
            return None
        if deputy.lower() in {a.strip().lower() for a in approvers}:
            return None
        if deputy.lower() in _own_identities(mail_from, auth_user):
            return None
        return deputy

    @staticmethod
    def _new_token(hold: HoldRecord, actor: str) -> tuple[str, TokenRecord]:
        """A token for ``actor`` on ``hold`` and its record (to be stored)."""
        token = new_token()
        record = TokenRecord(
            token_hash=hash_token(token),
            hold_id=hold.id,
            actor=actor,
            expires_at=hold.expires_at,
            used_at=None,
        )
        return token, record

    async def _issue_token(self, hold: HoldRecord, actor: str) -> str:
        token, record = self._new_token(hold, actor)
        await self.store.add_token(record)
        return token

    async def _send(
        self,
        hold: HoldRecord,
        to: str,
        raw: bytes,
        note: str,
        *,
        once: bool = False,
        tokens: Sequence[TokenRecord] = (),
    ) -> None:
        # one commit: a crash between the two used to leave a queued notice without its
        # "sent" record, and the timers sent it again (the fault suite's SIGKILL test)
        # once: a notice that goes once per hold and person (the first notices,
        # escalation): timers on several nodes or workers may both try; the store queues it once
        enqueue: Callable[..., Awaitable[int | None]]
        if self.sender is not None:  # queued claimed and tried at once
            enqueue = functools.partial(self.sender, once=once)
        else:
            enqueue = self.store.enqueue_once if once else self.store.enqueue_delivery
        await enqueue(
            raw,
            self.config.notice_from,
            [to],
            kind="notice",
            hold_id=hold.id,
            note=f"{note} sent to {to}",
            tokens=tokens,
        )

    def _answers(self, hold: HoldRecord, link: str, lang: str, role: str) -> list[Answer]:
        """The notice's answers; ``link``: its review link (``review_url(token)``), signed
        once for all of them (a signature cost a third of a notice's rendering when each
        answer signed the same token again)."""

        def ans(key: str, label: str, cmd: str, primary: bool = False) -> Answer:
            return Answer(key, t(label, lang), f"{link}?a={key}", t(cmd, lang), primary)

        mistake = ans("discard_mistake", "btn.discard_mistake", "cmd.discard_mistake")
        if role == "sender" and hold.approvers:
            return [ans("discard", "btn.withdraw", "cmd.discard"), mistake]
        if hold.action == "delay":
            return [
                ans("discard", "btn.cancel", "cmd.cancel", True),
                ans("release", "btn.send_now", "cmd.send_now"),
                mistake,
            ]
        out: list[Answer] = []
        if hold.offer_bcc:
            out.append(ans("release_bcc", "btn.release_bcc", "cmd.release_bcc", True))
        out.append(ans("release", "btn.release", "cmd.release", not hold.offer_bcc))
        out.append(ans("discard", "btn.discard", "cmd.discard"))
        out.append(mistake)
        return out

    def report_url(self, hold: HoldRecord, actor: str) -> str | None:
        """The signed "report a mistake" link for ``actor`` about ``hold`` (None: no links)."""
        if self.report_links is None or not actor:
            return None
        return self.report_links.url(ReportRef(actor=actor, hold_id=hold.id))

    async def _notice(
        self, hold: HoldRecord, to: str, role: str, kind: str, headline_key: str, **fields: object
    ) -> None:
        """Issue a token for ``to`` and queue a full notice with answers."""
        lang = self.lang_for(to)
        # the token is committed with the notice's delivery (``_send``): one transaction,
        # and no token for a notice that was not queued
        token, record = self._new_token(hold, to)
        # its own bounded pool (issue 12); past the budget the notice fails and the notice
        # timers try again
        raw = await budget.run(
            budget.NOTICE,
            self._notice_mail,
            hold,
            to,
            role,
            kind,
            headline_key,
            lang,
            token,
            fields,
        )
        await self._send(hold, to, raw, f"notice {kind}", once=True, tokens=(record,))

    def _notice_mail(
        self,
        hold: HoldRecord,
        to: str,
        role: str,
        kind: str,
        headline_key: str,
        lang: str,
        token: str,
        fields: dict[str, object],
    ) -> bytes:
        """The notice's bytes: explanation, templates and MIME, all from the held mail's
        content, so built in the notices' bounded pool, never on the event loop."""
        ex = self.explain(hold, lang)
        extra: list[str] = []
        if hold.offer_bcc and (role != "sender" or not hold.approvers):
            extra.append(t("note.bcc_offer", lang))
        headline = t(
            headline_key, lang, sender=ex.sender, due_in=ex.due_in, due_at=ex.due_at, **fields
        )
        subject_key = {
            "held": "subj.held",
            "delayed": "subj.delayed",
            "approval": "subj.approval",
            "pending": "subj.pending",
        }[kind]
        link = self.review_url(token)
        raw = build_mail(
            kind=kind,
            lang=lang,
            to=to,
            from_addr=self.config.notice_from,
            subject=t(subject_key, lang, subject=ex.subject, sender=ex.sender),
            template="notice",
            context=notice_context(
                ex,
                answers=self._answers(hold, link, lang, role),
                headline=headline,
                review_url=link,
                extra_lines=extra,
                report_url=self.report_url(hold, to),
            ),
            hold_id=hold.id,
            reply_to=command_reply_to(self.config.command_address, token),
        )
        return raw

    async def _info(
        self,
        hold: HoldRecord,
        to: str,
        kind: str,
        headline: Callable[[str], str],
        *,
        with_withdraw: bool = False,
        extra: Callable[[str], list[str]] | None = None,
        once: bool = False,
    ) -> None:
        """Queue a short information mail (outcome, escalation, reply result); ``once``:
        unless this hold already sent this kind to ``to`` (see ``_send``)."""
        if not to or to == ADMIN_ONLY or "@" not in to:
            return
        lang = self.lang_for(to)
        answers: list[Answer] = []
        reply_to = None
        if with_withdraw:
            token = await self._issue_token(hold, to)
            answers = [
                Answer(
                    "discard",
                    t("btn.withdraw", lang),
                    self.review_url(token, "discard"),
                    t("cmd.discard", lang),
                )
            ]
            reply_to = command_reply_to(self.config.command_address, token)
        # Mail that went out (or may still) can be reported: a link, and a reply address
        # that takes 「報告」 (a token of its own; it gives no other rights on the hold).
        report_url = None
        if hold.state not in (HoldState.DISCARDED, HoldState.EXPIRED):
            report_url = self.report_url(hold, to)
            if reply_to is None:
                token = await self._issue_token(hold, to)
                reply_to = command_reply_to(self.config.command_address, token)
        # the explanation and the templates read the held mail's content (subject, names):
        # built in the notices' bounded pool like the full notices, never on the event loop
        raw = await budget.run(
            budget.NOTICE,
            self._info_mail,
            hold,
            to,
            kind,
            lang,
            headline,
            extra,
            answers,
            reply_to,
            report_url,
        )
        await self._send(hold, to, raw, f"info {kind}", once=once)

    def _info_mail(
        self,
        hold: HoldRecord,
        to: str,
        kind: str,
        lang: str,
        headline: Callable[[str], str],
        extra: Callable[[str], list[str]] | None,
        answers: list[Answer],
        reply_to: str | None,
        report_url: str | None,
    ) -> bytes:
        ex = self.explain(hold, lang)
        subject_key = "subj.reply_result" if kind == "reply_result" else f"subj.{kind}"
        return build_mail(
            kind=kind,
            lang=lang,
            to=to,
            from_addr=self.config.notice_from,
            subject=t(subject_key, lang, subject=ex.subject),
            template="info",
            context=notice_context(
                ex,
                answers=answers,
                headline=headline(lang),
                review_url=None,
                extra_lines=extra(lang) if extra else (),
                report_url=report_url,
            ),
            hold_id=hold.id,
            reply_to=reply_to,
        )

    # ------------------------------------------------------------------ HoldHandler

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
        now = self.now()
        # A client that lost the connection after DATA (its 250 never arrived, or the relay
        # was killed) sends the same transaction again: the same bytes (Message-ID included),
        # sender and recipients within minutes are that retry, not a second mail. It gets
        # the first hold's answer; no second hold, no second notice.
        digest = (
            sha256_small(raw)  # a few KB: on the loop, the GIL kept (randomness.py)
            if len(raw) < 64 * 1024
            else await asyncio.to_thread(lambda: hashlib.sha256(raw).hexdigest())
        )
        earlier = await self.store.recent_hold_for(digest, mail_from, rcpts, now - RETRY_WINDOW)
        if earlier is not None:
            log.info("hold.retry_recognised", hold_id=earlier.id, mail_from=mail_from)
            return earlier
        sender = mail_from or (auth_user if _email_like(auth_user) else "") or ""
        org = self.org
        person = org.person(sender) if sender else None
        delay = verdict.action == Action.DELAY
        approvers = () if delay else self._approvers_for(verdict.approval, sender, auth_user)
        due_at = None
        if delay:
            secs = verdict.delay_seconds
            due_at = now + (timedelta(seconds=secs) if secs is not None else self.default_delay)
        escalate_at = None
        if self._deputy_for(mail_from or sender, auth_user, approvers) is not None:
            escalate_at = now + self.escalate_after
        # Reading the mail for the notice (recipients, first lines, attachments) and encoding
        # the verdict touch hostile content: off the event loop.
        # the hostile content: off the event loop, in the summary pool, within its budget.
        # Past the budget the hold is still made (fail closed) with a summary of the envelope
        # only, and the notice says the mail could not be summarised.
        sender_name = person.name if person else ""
        try:
            verdict_json, subject = await budget.run(
                budget.SUMMARY, self._summary_of, message, rcpts, verdict, sender_name
            )
        except budget.BudgetExceeded:
            subject = codec.clean_subject(message.subject[:2000])
            summary = codec.envelope_summary(
                rcpts, self.org, subject=subject, sender_name=sender_name
            )
            verdict_json = codec.encode(verdict, summary)
        record = HoldRecord(
            id=new_hold_id(),
            state=HoldState.DELAYED if delay else HoldState.HELD,
            created_at=now,
            expires_at=max(now + self.expire_after, due_at + timedelta(hours=1) if due_at else now),
            due_at=due_at,
            escalate_at=escalate_at,
            message_sha256="",
            mail_from=mail_from,
            rcpts=tuple(rcpts),
            auth_user=auth_user,
            subject=subject,
            action="delay" if delay else "hold",
            rules=verdict.rule_ids,
            verdict_json=verdict_json,
            approvers=approvers,
            offer_bcc=verdict.offer_bcc and not delay,
            language=self.lang_for(sender),
        )
        stored = await self.store.create_hold(record, raw)
        log.info(
            "hold.created",
            hold_id=stored.id,
            action=stored.action,
            rules=list(stored.rules),
            approvers=list(stored.approvers),
            mail_from=mail_from,
        )
        if self.background_notices:
            task = asyncio.ensure_future(self._first_notices(stored, message))
            self._notice_tasks.add(task)
            task.add_done_callback(self._notice_tasks.discard)
        else:
            await self._first_notices(stored, message)
        return stored

    async def _first_notices(self, stored: HoldRecord, message: Message) -> None:
        try:
            await self._notify_new(stored, message)
        except Exception:  # the hold is durable; a notice failure must not lose the mail
            log.exception("hold.notice_failed", hold_id=stored.id)
            self._notice_pending[stored.id] = 0  # the timers try again
            with contextlib.suppress(Exception):
                await self.store.record_event(
                    stored.id, actor="system", via=Via.RELAY, note=NOTICE_FAILED
                )

    async def drain_notices(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for first notices still being queued."""
        if self._notice_tasks:
            await asyncio.wait(list(self._notice_tasks), timeout=timeout)

    def _summary_of(
        self, message: Message, rcpts: Sequence[str], verdict: Verdict, sender_name: str
    ) -> tuple[str, str]:
        """The verdict with the notice's summary of the mail, and the masked subject."""
        summary = codec.summarize(message, rcpts, self.org, sender_name=sender_name)
        return codec.encode(verdict, summary), codec.clean_subject(message.subject)

    async def _notify_new(
        self, hold: HoldRecord, message: Message, *, skip: frozenset[str] = frozenset()
    ) -> None:
        """Queue the first notices of a hold; ``skip``: recipients (lower case) who already
        have theirs (a retry after a partial failure sends each notice once)."""
        sender = hold.mail_from
        if (
            message_is_automatic(message)
            or not sender
            or sender.lower()
            in (self.config.notice_from.lower(), self.config.command_address.lower())
        ):
            await self.store.record_event(
                hold.id,
                actor="system",
                via=Via.RELAY,
                note="notice suppressed: automatic message or no sender",
            )
            return
        sender_done = sender.lower() in skip
        if hold.action == "delay":
            if not sender_done:
                await self._notice(hold, sender, "sender", "delayed", "head.delayed")
            return
        if not hold.approvers:
            if not sender_done:
                await self._notice(hold, sender, "sender", "held", "head.held")
            return
        real = [a for a in hold.approvers if a != ADMIN_ONLY]
        notices = [
            self._notice(hold, a, "approver", "approval", "head.approval")
            for a in real
            if a.lower() not in skip
        ]
        if not sender_done:
            notices.append(
                self._notice(
                    hold,
                    sender,
                    "sender",
                    "pending",
                    "head.pending" if real else "head.pending_admin",
                    approvers=", ".join(real),
                )
            )
        # Side by side: rendered in the notices' pool at once, their queue rows in one
        # group commit, sent in parallel slots (one after the other, each waited for the
        # previous one's commit). Each is queued once whatever the other does; a failure
        # is raised after all have finished, and the timers retry only what is missing.
        done = await asyncio.gather(*notices, return_exceptions=True)
        failed = next((x for x in done if isinstance(x, BaseException)), None)
        if failed is not None:
            raise failed

    # ------------------------------------------------------------------ notice retries

    @staticmethod
    def _notice_status(timeline: Sequence[Transition]) -> tuple[bool, bool, frozenset[str]]:
        """(any first notice handled, retry still wanted, recipients already noticed)."""
        noticed: set[str] = set()
        handled = failed = settled = False
        for tr in timeline:
            note = tr.note
            m = _SENT_NOTE.match(note)
            if m:
                noticed.add(m.group(2).strip().lower())
                handled = True
            elif note.startswith("notice suppressed"):
                handled = settled = True
            elif note == NOTICE_FAILED:
                failed = True
            elif note in (NOTICE_RESENT, NOTICE_GAVE_UP):
                settled = True
        return handled, (failed or not handled) and not settled, frozenset(noticed)

    async def _scan_missing_notices(self, now: datetime) -> None:
        """Open holds whose first notice is missing (a crash between the hold's commit and
        its notice, or a failure logged by an earlier process). A hold younger than
        ``notice_grace`` may have its notice on the way; each tick looks at the holds that
        came of age since the last one, so a hold that was too young when the process
        started (a restart right after a crash) is still found (the fault suite's SIGKILL
        test lost such notices when the scan ran only once)."""
        upto = now - self.notice_grace
        holds = await self.store.list_holds(
            states=(HoldState.HELD, HoldState.DELAYED),
            older_than=upto,
            newer_than=self._notice_scanned_to,
            limit=_NOTICE_SCAN_LIMIT,
        )
        ids = [h.id for h in holds if h.id not in self._notice_pending]
        timelines = await self.store.timelines(ids)
        for hold_id in ids:
            _, wanted, _ = self._notice_status(timelines.get(hold_id, []))
            if wanted:
                self._notice_pending[hold_id] = 0
        self._notice_scanned_to = upto

    async def retry_notices(self, now: datetime | None = None) -> int:
        """Queue the first notices that could not be queued when their hold was made (each
        recipient once). Called by ``tick``; returns how many holds got their notices."""
        now = now or self.now()
        await self._scan_missing_notices(now)
        done = 0
        for hold_id in list(self._notice_pending):
            try:
                hold = await self.store.get_hold(hold_id)
                if hold is None or not hold.state.is_open:
                    del self._notice_pending[hold_id]
                    continue
                _, wanted, noticed = self._notice_status(await self.store.timeline(hold_id))
                if not wanted:
                    del self._notice_pending[hold_id]
                    continue
                raw = await self.store.get_message(hold.message_sha256)
                await self._notify_new(hold, parse_message(raw), skip=noticed)
                await self.store.record_event(
                    hold_id, actor="system", via=Via.TIMER, note=NOTICE_RESENT
                )
                del self._notice_pending[hold_id]
                log.info("hold.notice_resent", hold_id=hold_id)
                done += 1
            except Exception:
                attempts = self._notice_pending.get(hold_id, 0) + 1
                self._notice_pending[hold_id] = attempts
                log.exception("hold.notice_retry_failed", hold_id=hold_id, attempts=attempts)
                if attempts >= _NOTICE_RETRIES:
                    del self._notice_pending[hold_id]
                    with contextlib.suppress(Exception):
                        await self.store.record_event(
                            hold_id, actor="system", via=Via.TIMER, note=NOTICE_GAVE_UP
                        )
        return done

    def is_command_address(self, rcpt: str) -> bool:
        local, _, domain = rcpt.strip().strip("<>").lower().rpartition("@")
        if domain != self._cmd_domain:
            return False
        return local == self._cmd_local or local.startswith(self._cmd_local + "+")

    def _token_from_rcpts(self, rcpts: Sequence[str]) -> str | None:
        for r in rcpts:
            if not self.is_command_address(r):
                continue
            local = r.strip().strip("<>").rpartition("@")[0]
            _, plus, tok = local.partition("+")
            if plus and looks_like_token(tok):
                return tok.lower()
        return None

    async def handle_reply(
        self,
        *,
        raw: bytes,
        mail_from: str,
        rcpts: Sequence[str],
        auth_user: str | None,
    ) -> str:
        # Reading a reply parses hostile content: in a killable worker process, bounded.
        try:
            reading, msg = await stepproc.reply(raw)
        except budget.BudgetExceeded:
            # past the budget (issue 12): unclear, never a command; the person is asked back
            reading, msg = Reading(None, Unclear.BUDGET), parse_message(b"")
        if is_automatic(msg, mail_from):
            log.info("hold.reply_ignored", reason="automatic", mail_from=mail_from)
            return "250 2.0.0 Automatic message ignored"
        identity = auth_user or mail_from
        token = self._token_from_rcpts(rcpts)
        if token is None:
            m = re.search(r"\+([a-z2-7]{32})@", (msg.header("To") or "").lower())
            token = m.group(1) if m else None
        if reading.report is not None:  # 「報告」「誤送信」: also on closed holds
            return await handle_report_reply(
                self, reading, token, mail_from=mail_from, identity=identity, auth_user=auth_user
            )
        now = self.now()
        rec = await self.store.peek_token(hash_token(token), now) if token else None
        hold = await self.store.get_hold(rec.hold_id) if rec else None
        decision = reading.decision
        lang = self.lang_for(mail_from)
        if rec is None or hold is None:
            outcome = Outcome(False, "bad_token")
        elif reading.asks_back:
            outcome = Outcome(False, "unclear_command", hold)
        elif decision is None:
            outcome = Outcome(False, "no_command", hold)
        else:
            outcome = await self.resolve(
                hold.id, decision, actor=identity, via=Via.REPLY, token=token, identity=identity
            )
        log.info(
            "hold.reply",
            ok=outcome.ok,
            code=outcome.code,
            unclear=str(reading.unclear) or None,
            mail_from=mail_from,
            auth_user=auth_user,
            hold_id=hold.id if hold else None,
        )
        # The confirmation shows the hold as it is now (after the command), and only to
        # the sender or an approver: a stranger learns nothing, not even the subject.
        entitled = hold is not None and bool(
            self.role_of(hold, mail_from) or self.role_of(hold, identity)
        )
        if hold is not None and not entitled:
            await self._reply_confirmation(mail_from, None, Outcome(False, "not_entitled"), lang)
        else:
            shown = outcome.hold if outcome.hold is not None else hold
            await self._reply_confirmation(mail_from, shown, outcome, lang)
        return "250 2.0.0 " + (
            "Command accepted" if outcome.ok else "Command refused, see the reply mail"
        )

    async def _reply_confirmation(
        self, to: str, hold: HoldRecord | None, outcome: Outcome, lang: str
    ) -> None:
        if not to:
            return
        if hold is None:  # no hold to attach it to: a plain mail, still queued durably
            msg = EmailMessage(policy=email.policy.SMTP)
            msg["From"] = self.config.notice_from
            msg["To"] = to
            msg["Subject"] = t("subj.reply_result", lang, subject="-")
            msg["Auto-Submitted"] = "auto-replied"
            msg["X-Auto-Response-Suppress"] = "All"
            msg[NOTICE_HEADER] = "reply_result"
            msg.set_content(outcome.message(lang) + "\n\n--\n" + t("note.auto", lang) + "\n")
            await self.store.enqueue_delivery(
                msg.as_bytes(), self.config.notice_from, [to], kind="notice"
            )
            return
        await self._info(hold, to, "reply_result", lambda lg: outcome.message(lg))

    # ------------------------------------------------------------------ web links

    async def open_link(self, signed: str) -> LinkView | None:
        """A GET on a review link: check signature, age and the token (without using it)."""
        token = self.signer.unsign(signed)
        if token is None:
            return None
        rec = await self.store.peek_token(hash_token(token), self.now())
        if rec is None:
            return None
        hold = await self.store.get_hold(rec.hold_id)
        if hold is None:
            return None
        return LinkView(
            hold, rec.actor, self.role_of(hold, rec.actor), token, self.lang_for(rec.actor)
        )

    async def spent_link(self, signed: str) -> SpentLink | None:
        """Explain a genuine link that ``open_link`` refuses (used or expired).

        A forged or damaged link, or a token the store does not know, gives None: nothing is
        revealed. The answer is about the token's own hold only.
        """
        token = self.signer.unsign_any_age(signed)
        if token is None:
            return None
        rec = await self.store.find_token(hash_token(token))
        if rec is None:
            return None
        now = self.now()
        if rec.used_at is None and rec.expires_at > now and self.signer.unsign(signed):
            return None  # still valid: open_link's business
        hold = await self.store.get_hold(rec.hold_id)
        if hold is None:
            return None
        closed = await self.closed_by(hold)
        actor, via, at = closed if closed is not None else ("", None, None)
        return SpentLink(
            hold, self.lang_for(rec.actor), rec.used_at is not None, actor, via, at, rec.actor
        )

    async def closed_by(self, hold: HoldRecord) -> tuple[str, Via, datetime] | None:
        """Who closed a hold, how and when (from its timeline); None while it is open."""
        if hold.state.is_open:
            return None
        for tr in reversed(await self.store.timeline(hold.id)):
            if tr.to_state == hold.state:
                return tr.actor, tr.via, tr.at
        return None

    async def handled_text(self, hold: HoldRecord, lang: str) -> str:
        """「このメールは {at} に {actor} によって処理されました: {state}」 or ""."""
        closed = await self.closed_by(hold)
        if closed is None:
            return ""
        actor, via, at = closed
        return t(
            "page.handled",
            lang,
            actor=self.actor_text(actor, via, lang),
            at=local_time(at, zone(self.config.timezone)),
            state=t(f"state.{hold.state}", lang),
        )

    async def act_on_link(
        self, signed: str, decision: Decision, *, mistake: bool = False
    ) -> Outcome:
        view = await self.open_link(signed)
        if view is None:
            return Outcome(False, "bad_token")
        return await self.resolve(
            view.hold.id,
            decision,
            actor=view.actor,
            via=Via.WEB,
            token=view.token,
            identity=view.actor,
            mistake=mistake,
        )

    # ------------------------------------------------------------------ resolve (one path)

    async def resolve(
        self,
        hold_id: str,
        decision: Decision,
        *,
        actor: str,
        via: Via,
        token: str | None = None,
        identity: str | None = None,
        admin: bool = False,
        note: str = "",
        mistake: bool = False,
    ) -> Outcome:
        """Release, release as Bcc or discard a hold, for whoever asks, through one path.

        ``identity`` is checked against the hold (sender / approver) unless ``admin``.
        ``token`` (web, reply) is spent only when the answer is allowed. ``mistake``: a
        discard because the mail was a mistake ("破棄 (誤送信でした)"); recorded in the
        transition note and passed to the ``on_resolved`` hooks (a near miss).
        """
        mistake = mistake and decision == Decision.DISCARD
        hold = await self.store.get_hold(hold_id)
        if hold is None:
            return Outcome(False, "unknown_hold")
        if not hold.state.is_open:
            return Outcome(False, "closed", hold)
        role = "admin" if admin else self.role_of(hold, identity)
        if not role:
            await self.store.record_event(
                hold.id, actor=actor, via=via, note=f"refused {decision}: not entitled"
            )
            return Outcome(False, "not_entitled", hold)
        if role == "sender" and hold.approvers and decision != Decision.DISCARD:
            await self.store.record_event(
                hold.id, actor=actor, via=via, note=f"refused {decision}: needs approval"
            )
            return Outcome(False, "needs_approval", hold)
        deliver = None
        if decision == Decision.RELEASE:
            raw = await self.store.get_message(hold.message_sha256)
            deliver = (raw, hold.mail_from, hold.rcpts)
        elif decision == Decision.RELEASE_BCC:
            raw = await self.store.get_message(hold.message_sha256)
            # rewrites hostile header bytes: in a killable worker process; past the budget
            # the release is refused and the hold stays (issue 12). Done before the token
            # is spent, so the same link can still release or discard.
            try:
                rewritten = await self._rewrite_bcc_bounded(raw)
            except budget.BudgetExceeded:
                await self.store.record_event(
                    hold.id, actor=actor, via=via, note=f"refused {decision}: rewrite budget"
                )
                return Outcome(False, "bcc_rewrite_budget", hold)
            deliver = (rewritten, hold.mail_from, hold.rcpts)
        if token is not None:
            rec = await self.store.use_token(hash_token(token), self.now())
            if rec is None or rec.hold_id != hold.id:
                return Outcome(False, "bad_token", hold)
        text = note or f"{decision}" + (f" ({role})" if role else "")
        if mistake:
            text += MISTAKE_NOTE
        moved = await self.store.transition(
            hold.id,
            from_states=(HoldState.HELD, HoldState.DELAYED),
            to_state=decision.to_state,
            actor=actor,
            via=via,
            note=text,
            deliver=deliver,
        )
        if moved is None:
            return Outcome(False, "closed", await self.store.get_hold(hold.id))
        log.info(
            "hold.resolved",
            hold_id=hold.id,
            state=str(moved.state),
            actor=actor,
            via=str(via),
            mistake=mistake,
        )
        try:
            await self._tell_outcome(moved, actor=actor, via=via, skip=identity)
        finally:  # the officer's desk hears of it even when a notice could not be queued
            await self._run_hooks(
                "on_resolved",
                moved.id,
                [
                    functools.partial(hook, moved, decision, actor, via, mistake)
                    for hook in self.on_resolved
                ],
            )
        return Outcome(True, str(moved.state), moved)

    async def _run_hooks(
        self, name: str, hold_id: str, calls: Sequence[Callable[[], Awaitable[None]]]
    ) -> bool:
        """Call and await each hook (bounded); a failure is logged, never raised."""
        ok = True
        for call in calls:
            try:
                await asyncio.wait_for(call(), HOOK_TIMEOUT)
            except Exception:
                ok = False
                log.exception("hold.hook_failed", hook=name, hold_id=hold_id)
        return ok

    async def _rewrite_bcc_bounded(self, raw: bytes) -> bytes:
        """The release-as-Bcc rewrite within its budget (``BudgetExceeded`` past it): in a
        worker process (``stepproc.bcc_release``), or, for a rewrite function given to
        the service that a worker cannot run, in the Bcc rewrite's thread pool."""
        if self._bcc_rewrite is None or self._bcc_rewrite is bcc_rewrite:
            return await stepproc.bcc_release(raw, self.org.internal_domains)
        return await budget.run(budget.BCC_REWRITE, self._rewrite_bcc, raw)

    def _rewrite_bcc(self, raw: bytes) -> bytes:
        # one implementation for the bcc action and for release-as-Bcc
        fn = self._bcc_rewrite or bcc_rewrite
        return fn(raw, self.org.is_internal)

    def actor_text(self, actor: str, via: Via, lang: str) -> str:
        if via == Via.TIMER:
            return t("who.timer", lang)
        if actor.startswith("admin:"):
            return t("who.admin", lang, name=actor[6:])
        return actor

    async def _tell_outcome(
        self, hold: HoldRecord, *, actor: str, via: Via, skip: str | None
    ) -> None:
        """Tell the sender (and approvers) what happened, except whoever did it themselves."""
        people = [hold.mail_from, *(a for a in hold.approvers if a != ADMIN_ONLY)]
        skip_l = (skip or "").lower()
        done: set[str] = set()
        for p in people:
            pl = p.lower()
            if not p or pl in done or pl == skip_l:
                continue
            if hold.auth_user and skip_l == hold.auth_user.lower() and pl == hold.mail_from.lower():
                continue
            done.add(pl)
            if via == Via.TIMER and hold.state in (HoldState.RELEASED, HoldState.RELEASED_BCC):
                continue  # a delay ran out as announced: no news
            key = str(hold.state)

            def headline(lg: str, key: str = key) -> str:
                return t(
                    f"head.{key}",
                    lg,
                    actor=self.actor_text(actor, via, lg),
                    after=format_duration(int(self.expire_after.total_seconds()), lg),
                )

            await self._info(
                hold,
                p,
                key,
                headline,
            )

    # ------------------------------------------------------------------ timers

    async def tick(self, now: datetime | None = None) -> int:
        """Handle every due hold once (delays, expiry, escalation) and queue first notices
        that could not be queued before (``retry_notices``). Returns how many."""
        now = now or self.now()
        n = 0
        for hold in await self.store.due_holds(now):
            try:
                if (
                    hold.state == HoldState.DELAYED
                    and hold.due_at is not None
                    and hold.due_at <= now
                ):
                    raw = await self.store.get_message(hold.message_sha256)
                    moved = await self.store.transition(
                        hold.id,
                        from_states=(HoldState.DELAYED,),
                        to_state=HoldState.RELEASED,
                        actor="system",
                        via=Via.TIMER,
                        note="delay elapsed",
                        deliver=(raw, hold.mail_from, hold.rcpts),
                    )
                    if moved:
                        log.info("hold.delay_released", hold_id=hold.id)
                elif hold.expires_at <= now:
                    moved = await self.store.transition(
                        hold.id,
                        from_states=(HoldState.HELD, HoldState.DELAYED),
                        to_state=HoldState.EXPIRED,
                        actor="system",
                        via=Via.TIMER,
                        note="expired",
                    )
                    if moved:
                        log.info("hold.expired", hold_id=hold.id)
                        await self._tell_outcome(moved, actor="system", via=Via.TIMER, skip=None)
                elif (
                    hold.escalate_at is not None and not hold.escalated and hold.escalate_at <= now
                ):
                    await self._escalate(hold)
                else:
                    continue
                n += 1
            except Exception:
                log.exception("hold.timer_failed", hold_id=hold.id)
        try:
            n += await self.retry_notices(now)
        except Exception:
            log.exception("hold.notice_retry_failed")
        return n

    async def _escalate(self, hold: HoldRecord) -> None:
        """Add the deputy as an approver and tell them and the sender, once across timers
        on every worker and node: the notices are queued once per person (``_send`` with
        ``once``), then ``set_escalated`` (a compare-and-set) marks the hold. A crash in
        between leaves the hold unmarked: the next tick sends nothing twice and marks it."""
        # checked again here: the configuration may have changed since the hold was made
        deputy = self._deputy_for(hold.mail_from, hold.auth_user, hold.approvers)
        after = int(self.escalate_after.total_seconds())
        if not deputy:
            won = await self.store.set_escalated(hold.id, hold.approvers)
            if won and self.config.deputy:
                await self.store.record_event(
                    hold.id,
                    actor="system",
                    via=Via.TIMER,
                    note="escalation skipped: the deputy is the sender or already an approver",
                )
            return
        approvers = (*(a for a in hold.approvers if a != ADMIN_ONLY), deputy)
        fresh = await self.store.get_hold(hold.id)
        if fresh is None or fresh.escalated or not fresh.state.is_open:
            return  # another timer did it, or the hold was answered meanwhile
        # the notices show the hold as it is once escalated (the deputy among approvers)
        shown = dataclasses.replace(fresh, approvers=approvers, escalated=True)
        await self._notice(
            shown,
            deputy,
            "approver",
            "approval",
            "head.approval_escalated",
            after=format_duration(after, self.lang_for(deputy)),
        )
        await self._info(
            shown,
            shown.mail_from,
            "escalated",
            lambda lg: t("head.escalated", lg, deputy=deputy, after=format_duration(after, lg)),
            with_withdraw=True,
            once=True,
        )
        if not await self.store.set_escalated(hold.id, approvers):
            return
        await self.store.record_event(
            hold.id, actor="system", via=Via.TIMER, note=f"escalated to {deputy}"
        )
        log.info("hold.escalated", hold_id=hold.id, deputy=deputy)

    async def run_timers(self, interval: float | None = None) -> None:
        """Poll ``due_holds`` every ``interval`` seconds (default ``timer_interval``) until
        ``stop_timers`` or cancellation. State lives in the store, so restarts lose nothing."""
        interval = self.config.timer_interval if interval is None else interval
        self._stopping.clear()
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("hold.tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=interval)

    def stop_timers(self) -> None:
        self._stopping.set()
