"""Incident reports and near-miss alerts (issue 9): who is told, at once, and durably.

``IncidentService.report`` files a sender's (or an administrator's) report of a mail that
went out, or was held; ``near_miss`` files an alert when a held mail is released against a
third-party, lookalike, similar-name or personal-data finding, or discarded as "this was a
mistake". Both are idempotent per mail and tell the route at once:

- by mail to ``incidents.officers``, the deputy and (reports) the sender's supervisor from
  the directory, queued through the store's delivery queue (``kind="notice"``), so an alert
  is never lost to a crash or an upstream outage; one ``notified`` event per recipient;
- optionally by a JSON webhook, signed with HMAC-SHA256 (``X-Leakguard-Signature``), sent
  in a background task with retries and backoff (``webhook_ok`` / ``webhook_failed``).

Neither the mail nor the webhook carries mail body text or a full identifier: only the
journal's masked summary and redacted subject.
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import httpx

from leakguard import budget
from leakguard.holds import codec
from leakguard.holds.commands import Decision
from leakguard.holds.model import HoldRecord, HoldState
from leakguard.holds.notice import NOTICE_HEADER
from leakguard.holds.texts import t as hold_t
from leakguard.i18n import normalize_lang
from leakguard.masking import mask_identifiers, redact_text
from leakguard.officer.config import IncidentsConfig
from leakguard.officer.links import ReportLinks, ReportRef
from leakguard.officer.texts import t, trigger_words, via_words
from leakguard.organization import Organization
from leakguard.store import SqlStore
from leakguard.store.journal import DecisionEntry, IncidentRecord, new_incident_id
from leakguard.types import Verdict

if TYPE_CHECKING:
    from leakguard.officer.record import IncidentFile

MAX_NOTE = 2000
WEBHOOK_ATTEMPTS = 4
WEBHOOK_TIMEOUT = 5.0
WEBHOOK_BACKOFF = 2.0  # seconds before the 2nd attempt; doubles each time


def _now() -> datetime:
    return datetime.now(UTC)


class ReportRefused(Exception):
    """A report that cannot be filed: ``code`` is ``unknown_mail`` or ``not_entitled``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class MailRef:
    """The reported mail as the store knows it: its journal row and/or its hold."""

    decision: DecisionEntry | None
    hold: HoldRecord | None

    @property
    def sender(self) -> str:
        if self.decision is not None:
            return self.decision.sender
        return self.hold.mail_from if self.hold is not None else ""

    @property
    def identities(self) -> frozenset[str]:
        ids = []
        if self.decision is not None:
            ids += [self.decision.sender, self.decision.auth_user or ""]
        if self.hold is not None:
            ids += [self.hold.mail_from, self.hold.auth_user or ""]
        return frozenset(i.strip().lower() for i in ids if i and i.strip())

    @property
    def reporters(self) -> frozenset[str]:
        """Who may report it: the sender and AUTH user, and a held mail's approvers (the
        supervisor who released it is exactly who may see the mistake afterwards)."""
        approvers = self.hold.approvers if self.hold is not None else ()
        return self.identities | frozenset(
            a.strip().lower() for a in approvers if "@" in a and a.strip()
        )

    @property
    def rules(self) -> tuple[str, ...]:
        if self.decision is not None:
            return self.decision.rules
        return self.hold.rules if self.hold is not None else ()

    @property
    def subject(self) -> str:
        if self.decision is not None:
            return self.decision.subject
        return self.hold.subject if self.hold is not None else ""


def is_admin_actor(actor: str) -> bool:
    return actor.startswith("admin:")


def fact_matches(fact: str, wanted: str) -> bool:
    """``wanted`` (a configured fact name) covers ``fact``: equal, a ``wanted.*`` kind, and
    ``personal_data`` covers every ``personal_data.*`` kind and ``personal_data_*`` count."""
    if fact == wanted or fact.startswith(wanted + "."):
        return True
    return wanted == "personal_data" and fact.startswith("personal_data_")


def alert_triggers(
    verdict: Verdict, config: IncidentsConfig, rules: Sequence[str] = ()
) -> list[str]:
    """Why releasing a hold with this verdict is a near miss ([] when it is not).

    Only rules outside ``except_rules`` count: a fact counts when a counting rule's
    findings show it (or, for verdicts recorded without per-rule findings, when the verdict
    has the fact and some counting rule matched); ``rule:<id>`` counts when that rule
    matched and is not excepted.
    """
    excepted = set(config.except_rules)
    matched = [r for r in verdict.rules if r.rule_id not in excepted]
    ids = {r.rule_id for r in matched} | {r for r in rules if r not in excepted}
    if not ids:
        return []
    facts: set[str] = {f.fact for r in matched for f in r.findings if f.fact}
    if not any(r.findings for r in verdict.rules):
        facts |= {k for k, v in verdict.facts.items() if v}
        facts |= {f.fact for f in verdict.findings if f.fact}
    out: list[str] = []
    for wanted in config.alert_on_release:
        w = wanted.strip()
        if not w:
            continue
        if w.startswith("rule:"):
            if w[5:] in ids:
                out.append(w)
        elif any(fact_matches(f, w) for f in facts):
            out.append(w)
    return out


def webhook_signature(secret: bytes, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class IncidentService:
    def __init__(
        self,
        store: SqlStore,
        config: IncidentsConfig,
        *,
        organization: Organization | Callable[[], Organization] | None = None,
        notice_from: str,
        links: ReportLinks | None = None,
        log: Any = None,
        language: str = "ja",
        timezone: str = "Asia/Tokyo",
        base_url: str | None = None,
        policy_rules: Callable[[], Sequence[str] | None] = lambda: None,
        now: Callable[[], datetime] = _now,
        lookback: timedelta = timedelta(days=30),
        webhook_attempts: int = WEBHOOK_ATTEMPTS,
        webhook_timeout: float = WEBHOOK_TIMEOUT,
        webhook_backoff: float = WEBHOOK_BACKOFF,
    ) -> None:
        import structlog

        self.store = store
        self.config = config
        self._org = organization
        self.notice_from = notice_from
        self.links = links
        self.log = log if log is not None else structlog.get_logger("leakguard.incidents")
        self.language = normalize_lang(language, "ja")
        self.timezone = timezone
        self.base_url = base_url
        self.policy_rules = policy_rules
        self.now = now
        self.lookback = lookback  # how far back a report by mail matches by subject
        self.webhook_attempts = max(1, webhook_attempts)
        self.webhook_timeout = webhook_timeout
        self.webhook_backoff = webhook_backoff
        self._lock = asyncio.Lock()  # one incident per mail, even for two reports at once
        self._tasks: set[asyncio.Task[None]] = set()
        rl = config.report_address.strip().lower()
        self._report_local, _, self._report_domain = rl.rpartition("@")

    # ------------------------------------------------------------------ helpers

    @property
    def org(self) -> Organization:
        o = self._org
        if o is None:
            return Organization()
        return o if isinstance(o, Organization) else o()

    def lang_for(self, addr: str | None) -> str:
        if addr:
            p = self.org.person(addr)
            if p is not None and p.language:
                return normalize_lang(p.language, self.language)
        return self.language

    def record_url(self, incident_id: str) -> str | None:
        base = self.base_url or (self.links.base_url if self.links is not None else "")
        return f"{base.rstrip('/')}/admin/incidents/{incident_id}" if base else None

    def report_url(self, *, actor: str, decision_id: str | None, hold_id: str | None) -> str:
        """The signed report link for a mail (notices and tests)."""
        if self.links is None:
            raise RuntimeError("no report links configured")
        return self.links.url(ReportRef(actor=actor, decision_id=decision_id, hold_id=hold_id))

    def is_report_address(self, rcpt: str) -> bool:
        local, _, domain = rcpt.strip().strip("<>").lower().rpartition("@")
        if not self._report_local or domain != self._report_domain:
            return False
        return local == self._report_local or local.startswith(self._report_local + "+")

    def webhook_secret(self) -> bytes | None:
        env = os.environ.get("LEAKGUARD_WEBHOOK_SECRET")
        if env:
            return env.encode()
        s = self.config.webhook_secret
        return s.get_secret_value().encode() if s is not None else None

    async def find_mail(
        self, *, decision_id: str | None = None, hold_id: str | None = None
    ) -> MailRef:
        """The journal row and hold of a mail named by either id (``unknown_mail`` if none)."""
        j = self.store.journal
        decision = await j.get(decision_id[:32]) if decision_id else None
        hid = hold_id or (decision.hold_id if decision is not None else None)
        hold = await self.store.get_hold(hid[:64]) if hid else None
        if decision is None and hold is not None:
            decision = await j.by_hold(hold.id)
        if decision is None and hold is None:
            raise ReportRefused("unknown_mail")
        return MailRef(decision, hold)

    # ------------------------------------------------------------------ reports

    async def report(
        self,
        *,
        decision_id: str | None = None,
        hold_id: str | None = None,
        actor: str,
        via: str,
        note: str = "",
    ) -> IncidentRecord:
        """File a report of a mail (idempotent per mail) and tell the route at once.

        ``actor`` must be the mail's envelope sender or SMTP AUTH user, a held mail's
        approver, or ``admin:NAME``.
        Raises ``ReportRefused`` otherwise, or when the mail is unknown.
        """
        note = note.strip()[:MAX_NOTE]
        mail = await self.find_mail(decision_id=decision_id, hold_id=hold_id)
        if not is_admin_actor(actor) and actor.strip().lower() not in mail.reporters:
            self.log.info(
                "incident.report_refused",
                reason="not_entitled",
                actor=actor,
                via=via,
                decision_id=decision_id,
                hold_id=hold_id,
            )
            raise ReportRefused("not_entitled")
        did = mail.decision.id if mail.decision is not None else None
        hid = mail.hold.id if mail.hold is not None else None
        async with self._lock:
            existing = await self.existing(did, hid, "report")
            if existing is not None:
                await self.store.journal.add_incident_event(
                    existing.id, actor=actor, kind="reported_again", detail=_clean_note(note)
                )
                self.log.info(
                    "incident.reported_again", incident_id=existing.id, actor=actor, via=via
                )
                return existing
            sender = mail.sender
            incident = IncidentRecord(
                id=new_incident_id(),
                kind="report",
                state="open",
                created_at=self.now(),
                reported_by=actor,
                via=via,
                decision_id=did,
                hold_id=hid,
                sender=sender,
                department=self._department(mail),
                rules=mail.rules,
                note=_clean_note(note),
            )
            await self.store.journal.create_incident(incident, detail=_clean_note(note))
        self.log.info(
            "incident.reported",
            incident_id=incident.id,
            actor=actor,
            via=via,
            decision_id=did,
            hold_id=hid,
            sender=sender,
            rules=list(incident.rules),
        )
        await self._route(incident, mail, headline=("mail.head.report", {}))
        return incident

    async def existing(
        self, decision_id: str | None, hold_id: str | None, kind: str
    ) -> IncidentRecord | None:
        j = self.store.journal
        found = None
        if decision_id is not None:
            found = await j.find_incident(decision_id=decision_id, kind=kind)
        if found is None and hold_id is not None:
            found = await j.find_incident(hold_id=hold_id, kind=kind)
        return found

    def _department(self, mail: MailRef) -> str:
        if mail.decision is not None and mail.decision.department:
            return mail.decision.department
        for who in mail.identities:
            p = self.org.person(who)
            if p is not None and p.department:
                return p.department
        return ""

    # ------------------------------------------------------------------ near misses

    async def near_miss(
        self, hold: HoldRecord, *, decision: Decision, actor: str, via: str, mistake: bool
    ) -> IncidentRecord | None:
        """Alert the officers when a resolution is a near miss (see ``alert_triggers``);
        None when it is not one. Idempotent per hold."""
        triggers: list[str]
        if mistake and decision == Decision.DISCARD:
            if not self.config.alert_on_mistake:
                return None
            triggers = ["mistake"]
        elif decision in (Decision.RELEASE, Decision.RELEASE_BCC) and hold.state in (
            HoldState.RELEASED,
            HoldState.RELEASED_BCC,
        ):
            verdict, _ = await asyncio.to_thread(codec.decode, hold.verdict_json)
            triggers = alert_triggers(verdict, self.config, hold.rules)
            if not triggers:
                return None
        else:
            return None
        detail = ", ".join(triggers)
        decision_row = await self.store.journal.by_hold(hold.id)
        mail = MailRef(decision_row, hold)
        async with self._lock:
            existing = await self.existing(None, hold.id, "near_miss")
            if existing is not None:
                await self.store.journal.add_incident_event(
                    existing.id, actor=actor, kind="alerted", detail=detail
                )
                return existing
            incident = IncidentRecord(
                id=new_incident_id(),
                kind="near_miss",
                state="open",
                created_at=self.now(),
                reported_by=actor,
                via=str(via),
                decision_id=decision_row.id if decision_row is not None else None,
                hold_id=hold.id,
                sender=hold.mail_from,
                department=self._department(mail),
                rules=hold.rules,
                note=detail,
            )
            await self.store.journal.create_incident(incident, detail=detail)
        self.log.info(
            "incident.near_miss",
            incident_id=incident.id,
            hold_id=hold.id,
            actor=actor,
            via=str(via),
            triggers=triggers,
        )
        key = "mail.head.mistake" if triggers == ["mistake"] else "mail.head.near_miss"
        await self._route(incident, mail, headline=(key, {"triggers": detail}))
        return incident

    # ------------------------------------------------------------------ the route

    def route(self, incident: IncidentRecord) -> list[tuple[str, str]]:
        """(address, role) told of an incident: officers, the deputy and, for reports
        when ``notify_supervisor``, the sender's supervisor from the directory."""
        out: list[tuple[str, str]] = []
        seen: set[str] = set()

        def add(addr: str | None, role: str) -> None:
            a = (addr or "").strip()
            if a and "@" in a and a.lower() not in seen:
                seen.add(a.lower())
                out.append((a, role))

        for o in self.config.officers:
            add(o, "officer")
        add(self.config.deputy, "deputy")
        if incident.kind == "report" and self.config.notify_supervisor and incident.sender:
            add(self.org.supervisor_of(incident.sender), "supervisor")
        return out

    async def _route(
        self, incident: IncidentRecord, mail: MailRef, *, headline: tuple[str, Mapping[str, str]]
    ) -> None:
        people = self.route(incident)
        for addr, role in people:
            try:
                raw = await budget.run(
                    budget.NOTICE, self._alert_mail, incident, mail, addr, role, headline
                )
                await self.store.enqueue_delivery(raw, self.notice_from, [addr], kind="notice")
                await self.store.journal.add_incident_event(
                    incident.id, actor="leakguard", kind="notified", detail=f"{addr} ({role})"
                )
            except Exception as exc:
                self.log.error(
                    "incident.notify_failed",
                    incident_id=incident.id,
                    rcpt=addr,
                    error=repr(exc)[:300],
                )
        self.log.info(
            "incident.notified", incident_id=incident.id, recipients=[a for a, _ in people]
        )
        if not people and not self.config.webhook_url:
            self.log.warning("incident.no_route", incident_id=incident.id)
        if self.config.webhook_url:
            payload = self.webhook_payload(incident, mail)
            task = asyncio.ensure_future(self._webhook(incident.id, payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _mail_lines(
        self,
        incident: IncidentRecord,
        mail: MailRef,
        lang: str,
        role: str,
        headline: tuple[str, Mapping[str, str]],
    ) -> list[str]:
        from leakguard.holds.explain import local_time, zone

        tz = zone(self.timezone)
        key, fields = headline
        shown = {k: trigger_words(v, lang) if k == "triggers" else v for k, v in fields.items()}
        lines = [
            t(key, lang, actor=incident.reported_by, via=via_words(incident.via, lang), **shown),
            "",
            f"{t('f.incident', lang)}: {incident.id} ({t('kind.' + incident.kind, lang)})",
            f"{t('f.reported_at', lang)}: {local_time(incident.created_at, tz)}",
            f"{t('f.reported_by', lang)}: {incident.reported_by} ({via_words(incident.via, lang)})",
            f"{t('f.sender', lang)}: {incident.sender or '-'}",
        ]
        if incident.department:
            lines.append(f"{t('f.department', lang)}: {incident.department}")
        d = mail.decision
        if d is not None:
            lines += [
                f"{t('f.sent_at', lang)}: {local_time(d.at, tz)}",
                f"{t('f.subject', lang)}: {_one_line(d.subject)}",
                f"{t('f.relay_did', lang)}: {d.action} → {t('outcome.' + d.outcome, lang)}",
                f"{t('f.rcpts', lang)}: "
                + t("f.rcpts_count", lang, n=len(d.rcpts), ext=d.external_rcpts),
            ]
            org = self.org
            for r in d.rcpts[:30]:
                kind = t("internal" if org.is_internal(r) else "external", lang)
                lines.append(f"  - {r} ({kind})")
            if len(d.rcpts) > 30:
                lines.append(f"  - … (+{len(d.rcpts) - 30})")
        elif mail.hold is not None:
            h = mail.hold
            lines += [
                f"{t('f.hold', lang)}: {h.id} ({hold_t('state.' + h.state.value, lang)})",
                f"{t('f.subject', lang)}: {_one_line(h.subject)}",
                f"{t('f.rcpts', lang)}: {len(h.rcpts)}",
            ]
        if mail.hold is not None and d is not None:
            state = hold_t("state." + mail.hold.state.value, lang)
            lines.append(f"{t('f.hold', lang)}: {mail.hold.id} ({state})")
        lines.append(f"{t('f.rules', lang)}: {', '.join(incident.rules) or '-'}")
        if incident.note:
            if incident.kind == "near_miss":
                note = trigger_words(incident.note, lang)
                lines.append(f"{t('f.triggers', lang)}: {_one_line(note, 500)}")
            else:
                lines.append(f"{t('f.note', lang)}: {_one_line(incident.note, 500)}")
        lines.append("")
        url = self.record_url(incident.id)
        if url:
            lines.append(t("mail.record", lang, url=url))
        lines.append(t("mail.cli", lang, id=incident.id))
        lines += ["", t("mail.todo", lang), t("mail.why_you", lang, role=t("role." + role, lang))]
        return lines

    def _alert_mail(
        self,
        incident: IncidentRecord,
        mail: MailRef,
        to: str,
        role: str,
        headline: tuple[str, Mapping[str, str]],
    ) -> bytes:
        """One mail, the recipient's language first and the other after it."""
        first = self.lang_for(to)
        second = "en" if first == "ja" else "ja"
        body = self._mail_lines(incident, mail, first, role, headline)
        body += ["", "-" * 40, ""]
        body += self._mail_lines(incident, mail, second, role, headline)
        body += ["", "--", t("mail.auto", first)]
        subj = t(
            f"subj.{incident.kind}",
            first,
            id=incident.id,
            sender=incident.sender or "-",
            subject=_one_line(mail.subject, 120),
        )
        return _plain_mail(
            self.notice_from, to, subj, "\n".join(body) + "\n", first, f"incident; id={incident.id}"
        )

    # ------------------------------------------------------------------ webhook

    def webhook_payload(self, incident: IncidentRecord, mail: MailRef) -> dict[str, Any]:
        """What the webhook receives: ids, people, rules and the masked summary only."""
        d = mail.decision
        out: dict[str, Any] = {
            "event": f"incident.{incident.kind}",
            "incident": {
                "id": incident.id,
                "kind": incident.kind,
                "state": incident.state,
                "created_at": incident.created_at.isoformat(),
                "reported_by": incident.reported_by,
                "via": incident.via,
                "sender": incident.sender,
                "department": incident.department,
                "rules": list(incident.rules),
                "note": mask_identifiers(incident.note),
                "decision_id": incident.decision_id,
                "hold_id": incident.hold_id,
                "url": self.record_url(incident.id),
            },
        }
        if d is not None:
            summary = d.summary
            out["mail"] = {
                "at": d.at.isoformat(),
                "subject": redact_text(d.subject),
                "action": d.action,
                "outcome": d.outcome,
                "recipients": len(d.rcpts),
                "external_recipients": d.external_rcpts,
                "facts": dict(summary.get("facts") or {}),
                "rules": [r.get("id") for r in summary.get("rules") or () if isinstance(r, dict)],
            }
        elif mail.hold is not None:
            out["mail"] = {
                "at": mail.hold.created_at.isoformat(),
                "subject": redact_text(mail.hold.subject),
                "action": mail.hold.action,
                "outcome": mail.hold.state.value,
                "recipients": len(mail.hold.rcpts),
            }
        return out

    async def _webhook(self, incident_id: str, payload: Mapping[str, Any]) -> None:
        url = self.config.webhook_url
        if not url:
            return
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "leakguard",
            "X-Leakguard-Event": str(payload.get("event", "incident")),
        }
        secret = self.webhook_secret()
        if secret:
            headers["X-Leakguard-Signature"] = webhook_signature(secret, body)
        error = ""
        for attempt in range(self.webhook_attempts):
            if attempt:
                await asyncio.sleep(self.webhook_backoff * (2 ** (attempt - 1)))
            try:
                async with httpx.AsyncClient(
                    timeout=self.webhook_timeout, follow_redirects=False
                ) as client:
                    resp = await client.post(url, content=body, headers=headers)
                if 200 <= resp.status_code < 300:
                    await self._event_quiet(incident_id, "webhook_ok", f"HTTP {resp.status_code}")
                    self.log.info(
                        "incident.webhook",
                        incident_id=incident_id,
                        ok=True,
                        status=resp.status_code,
                        attempts=attempt + 1,
                    )
                    return
                error = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                error = type(exc).__name__
        await self._event_quiet(incident_id, "webhook_failed", error)
        self.log.warning(
            "incident.webhook",
            incident_id=incident_id,
            ok=False,
            error=error,
            attempts=self.webhook_attempts,
        )

    async def _event_quiet(self, incident_id: str, kind: str, detail: str) -> None:
        try:
            await self.store.journal.add_incident_event(
                incident_id, actor="leakguard", kind=kind, detail=detail
            )
        except Exception as exc:
            self.log.error("incident.event_failed", incident_id=incident_id, error=repr(exc)[:300])

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for webhook deliveries still running (shutdown, the CLI, tests)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    # ------------------------------------------------------------------ officer actions

    async def record(self, incident_id: str) -> IncidentFile | None:
        """Everything the store knows about an incident, for ``officer.record.sections``."""
        from leakguard.officer.record import assemble

        try:
            rules = self.policy_rules()
        except Exception:
            rules = None
        return await assemble(
            self.store, incident_id, organization=self.org, policy_rules=rules, now=self.now()
        )

    async def followup(
        self, incident_id: str, key: str, *, done: bool, actor: str
    ) -> IncidentRecord | None:
        inc = await self.store.journal.set_followup(incident_id, key, done=done, actor=actor)
        if inc is not None:
            self.log.info(
                "incident.followup", incident_id=incident_id, followup=key, done=done, actor=actor
            )
        return inc

    async def set_state(self, incident_id: str, state: str, *, actor: str) -> IncidentRecord | None:
        inc = await self.store.journal.set_incident_state(incident_id, state, actor=actor)
        if inc is not None:
            self.log.info("incident.state", incident_id=incident_id, state=state, actor=actor)
        return inc

    async def handle_report_mail(self, *, raw: bytes, mail_from: str, auth_user: str | None) -> str:
        """A mail to the report address (the relay calls this instead of deciding it)."""
        from leakguard.officer.report_mail import handle_report_mail

        return await handle_report_mail(self, raw=raw, mail_from=mail_from, auth_user=auth_user)

    # ------------------------------------------------------------------ hooks for holds

    async def on_report(self, hold: HoldRecord, actor: str, via: Any, note: str) -> None:
        """``HoldService.on_report`` handler."""
        await self.report(hold_id=hold.id, actor=actor, via=str(via), note=note)

    async def on_resolved(
        self, hold: HoldRecord, decision: Decision, actor: str, via: Any, mistake: bool
    ) -> None:
        """``HoldService.on_resolved`` handler."""
        await self.near_miss(hold, decision=decision, actor=actor, via=str(via), mistake=mistake)


# --------------------------------------------------------------------------- helpers


def _clean_note(note: str) -> str:
    """A reporter's note as stored and shown: bounded, identifiers masked."""
    return mask_identifiers(note.replace("\x00", "")[:MAX_NOTE])


def _one_line(text: str, limit: int = 200) -> str:
    s = " ".join(text.replace("\x00", "").split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _plain_mail(from_addr: str, to: str, subject: str, body: str, lang: str, marker: str) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = from_addr
    msg["To"] = to
    msg["Subject"] = _one_line(subject, 160)
    msg["Date"] = email.utils.formatdate(localtime=False)
    domain = from_addr.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = email.utils.make_msgid("leakguard", domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["Content-Language"] = lang
    msg[NOTICE_HEADER] = marker
    msg.set_content(
        body, subtype="plain", charset="utf-8", cte="base64" if not body.isascii() else "7bit"
    )
    return msg.as_bytes()
