"""The sender is told when the relay changed their mail (issue 9).

After a successful Bcc rewrite the relay hands the facts to ``BccNotifier.submit``; the
notice — which recipients were moved from To/Cc to Bcc, which rule and why, that the mail
was delivered, and a signed "report a mistake" link — is built off the event loop and
queued durably in the delivery queue (kind ``notice``), in the background: it never delays
or fails the SMTP transaction (a failure is logged). Only an internal sender is told (the
SMTP AUTH user, else the envelope sender), never an external address; automatic mail and
mail to the hold command or report address get no notice.

Everything taken from the mail (subject, display names, addresses) is cleaned to one line
and escaped by the HTML template (Jinja2 autoescape); identifiers in the subject are masked.
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from leakguard import budget
from leakguard.holds.codec import clean_subject
from leakguard.holds.explain import clean_line, local_time, zone
from leakguard.holds.notice import NOTICE_HEADER, alternative_mail, render
from leakguard.holds.texts import t
from leakguard.i18n import normalize_lang
from leakguard.masking import mask_identifiers
from leakguard.officer.links import ReportLinks, ReportRef
from leakguard.organization import Organization
from leakguard.types import Action, Message, Verdict

KIND = "bcc_notice"
MAX_LISTED = 20  # recipients listed by name; beyond, "and N more"
_MSGID_RE = re.compile(r"^<[!-;=?-~]{1,250}>$")  # a plain Message-ID, safe to refer to


class NoticeQueue(Protocol):
    async def enqueue_delivery(
        self, raw: bytes, mail_from: str, rcpts: Sequence[str], *, kind: str = ...
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class BccNoticeSettings:
    enabled: bool = True
    notice_from: str = "leakguard@localhost"
    language: str = "ja"  # default when the directory does not say
    timezone: str = "Asia/Tokyo"
    report_address: str = ""  # mail to these addresses gets no notice
    command_address: str = ""


@dataclass(frozen=True, slots=True)
class BccChange:
    """What the relay did to one mail: the facts the notice is written from."""

    decision_id: str
    to: str  # the internal sender told
    lang: str
    subject: str  # cleaned and masked
    moved: tuple[str, ...]  # "Name <addr>" of each recipient moved to Bcc, cleaned
    reasons: tuple[tuple[str, str], ...]  # (rule id, reason in ``lang``)
    message_id: str  # the mail's own Message-ID when plain, else ""
    at: datetime


class BccNotifier:
    def __init__(
        self,
        queue: NoticeQueue,
        settings: BccNoticeSettings,
        *,
        links: ReportLinks | None,
        log: Any,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.queue = queue
        self.settings = settings
        self.links = links
        self.log = log
        self.now = now
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ who and whether

    def recipient(self, org: Organization, mail_from: str, auth_user: str | None) -> str | None:
        """The internal person to tell: the AUTH user (an address), else the envelope
        sender; None when neither is internal (an external address is never told)."""
        for cand in (auth_user, mail_from):
            c = (cand or "").strip()
            if "@" in c and org.is_internal(c):
                return c
        return None

    def _skip(self, rcpts: Sequence[str], to: str) -> str | None:
        s = self.settings
        special = {a.strip().lower() for a in (s.report_address, s.command_address) if a}
        cmd_local, _, cmd_domain = s.command_address.strip().lower().rpartition("@")
        for r in rcpts:
            rl = r.strip().strip("<>").lower()
            local, _, domain = rl.rpartition("@")
            if rl in special or (
                cmd_local and domain == cmd_domain and local.startswith(cmd_local + "+")
            ):
                return "command_or_report_address"
        if to.lower() == s.notice_from.strip().lower():
            return "notice_sender"
        return None

    @staticmethod
    def is_automatic(message: Message) -> bool:
        """Auto-Submitted mail or one of leakguard's own notices (reads every header
        field: off the event loop)."""
        auto = (message.header("Auto-Submitted") or "").strip().lower()
        return bool(auto and not auto.startswith("no")) or message.header(NOTICE_HEADER) is not None

    def lang_for(self, org: Organization, addr: str) -> str:
        default = normalize_lang(self.settings.language, "ja")
        p = org.person(addr)
        if p is not None and p.language:
            return normalize_lang(p.language, default)
        return default

    # ------------------------------------------------------------------ the relay's call

    def submit(
        self,
        *,
        org: Organization,
        decision_id: str,
        mail_from: str,
        auth_user: str | None,
        rcpts: Sequence[str],
        message: Message,
        verdict: Verdict,
        removed: Sequence[str],
        names: Mapping[str, str],
    ) -> asyncio.Task[None] | None:
        """Queue the notice in the background (returns the task, None when none is due)."""
        if not self.settings.enabled or not removed:
            return None
        to = self.recipient(org, mail_from, auth_user)
        if to is None:
            self.log.info("bcc_notice.skipped", decision_id=decision_id, reason="not_internal")
            return None
        why = self._skip(rcpts, to)
        if why is not None:
            self.log.info("bcc_notice.skipped", decision_id=decision_id, reason=why)
            return None
        task = asyncio.ensure_future(
            self._queue(org, decision_id, to, message, verdict, tuple(removed), names)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def flush(self) -> None:
        """Wait for the notices submitted so far (tests, shutdown)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def _queue(
        self,
        org: Organization,
        decision_id: str,
        to: str,
        message: Message,
        verdict: Verdict,
        removed: tuple[str, ...],
        names: Mapping[str, str],
    ) -> None:
        try:
            lang = self.lang_for(org, to)
            # reads hostile header content (names, subject): off the event loop, in the
            # notice pool within its budget (past it: logged as bcc_notice.failed)
            raw = await budget.run(
                budget.NOTICE, self._build, decision_id, to, lang, message, verdict, removed, names
            )
            if raw is None:
                self.log.info("bcc_notice.skipped", decision_id=decision_id, reason="automatic")
                return
            did = await self.queue.enqueue_delivery(
                raw, self.settings.notice_from, [to], kind="notice"
            )
            self.log.info(
                "bcc_notice.queued",
                decision_id=decision_id,
                to=to,
                moved=len(removed),
                delivery_id=did,
            )
        except Exception as exc:  # never the transaction's business
            self.log.error("bcc_notice.failed", decision_id=decision_id, error=repr(exc)[:300])

    # ------------------------------------------------------------------ the mail

    def change_of(
        self,
        decision_id: str,
        to: str,
        lang: str,
        message: Message,
        verdict: Verdict,
        removed: Sequence[str],
        names: Mapping[str, str],
    ) -> BccChange:
        moved = []
        for addr in removed:
            # a display name is hostile text like the subject: identifiers masked
            name = clean_line(mask_identifiers(names.get(addr.lower(), "")), 80).strip()
            a = clean_line(addr, 254)
            moved.append(f"{name} <{a}>" if name else a)
        rules = [r for r in verdict.rules if r.action is Action.BCC] or list(verdict.rules)
        reasons = tuple(
            (
                clean_line(r.rule_id, 80),
                clean_line(r.reason.get(lang) or r.reason.en or r.rule_id, 300),
            )
            for r in rules
        )
        mid = message.message_id.strip()
        return BccChange(
            decision_id=decision_id,
            to=to,
            lang=lang,
            subject=clean_line(clean_subject(message.subject), 160),
            moved=tuple(moved),
            reasons=reasons,
            message_id=mid if _MSGID_RE.match(mid) else "",
            at=self.now(),
        )

    def _build(
        self,
        decision_id: str,
        to: str,
        lang: str,
        message: Message,
        verdict: Verdict,
        removed: Sequence[str],
        names: Mapping[str, str],
    ) -> bytes | None:
        if self.is_automatic(message):
            return None
        return self.build(self.change_of(decision_id, to, lang, message, verdict, removed, names))

    def build(self, change: BccChange) -> bytes:
        """The notice as multipart/alternative text + HTML."""
        lang = change.lang
        report_url = (
            self.links.url(ReportRef(actor=change.to, decision_id=change.decision_id))
            if self.links is not None
            else None
        )

        def tr(key: str, **fields: object) -> str:
            return t(key, lang, **fields)

        listed = change.moved[:MAX_LISTED]
        ctx: dict[str, object] = {
            "t": tr,
            "lang": lang,
            "headline": tr("head.bcc_notice"),
            "subject": change.subject,
            "moved": listed,
            "more": len(change.moved) - len(listed),
            "count": len(change.moved),
            "reasons": change.reasons,
            "sent_at": local_time(change.at, zone(self.settings.timezone)),
            "decision_id": change.decision_id,
            "report_url": report_url,
        }
        text = render(f"{KIND}.txt.j2", **ctx)
        html = render(f"{KIND}.html.j2", **ctx)
        sender = self.settings.notice_from
        domain = sender.rpartition("@")[2] or "localhost"
        headers = [
            ("From", sender),
            ("To", change.to),
            ("Subject", clean_line(tr("subj.bcc_notice", subject=change.subject), 200)),
            ("Date", email.utils.formatdate(localtime=False)),
            # names the decision, so a reply (In-Reply-To) can be traced to it
            ("Message-ID", f"<{KIND}.{change.decision_id}.{secrets.token_hex(6)}@{domain}>"),
        ]
        if change.message_id:
            headers += [("In-Reply-To", change.message_id), ("References", change.message_id)]
        headers += [
            ("Auto-Submitted", "auto-generated"),
            ("X-Auto-Response-Suppress", "All"),
            ("Content-Language", lang),
            (NOTICE_HEADER, f"{KIND}; decision={change.decision_id}"),
        ]
        return alternative_mail(headers, text, html)


def bcc_notifier(
    config: Any, queue: NoticeQueue, links: ReportLinks | None, log: Any
) -> BccNotifier:
    """The notifier for ``leakguard serve`` (``ServiceConfig``: ``incidents.bcc_notice``,
    the hold notices' sender, language and time zone, the command and report addresses)."""
    h = config.holds
    return BccNotifier(
        queue,
        BccNoticeSettings(
            enabled=config.incidents.bcc_notice,
            notice_from=h.notice_from,
            language=h.language,
            timezone=h.timezone,
            report_address=config.incidents.report_address,
            command_address=h.command_address,
        ),
        links=links,
        log=log,
    )
