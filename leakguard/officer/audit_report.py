"""The automatic audit-first rollout report (issue 9).

A rule in ``mode: audit`` does nothing but leave its id in the journal. Once
``incidents.audit_report_after`` (default 14 days) has passed since its first hit, the
officers (``incidents.officers``) get one mail, in Japanese and English: what the rule
would have done and how those mails were actually answered (``leakguard.officer.stats``).

"Sent" is remembered in the store's ``leakguard_meta`` table (key ``audit_report:<rule>``),
inserted in the same transaction that queues the mail: a restart, a second worker or a
second relay sharing PostgreSQL never sends it twice (the primary key decides), and a crash
never remembers a report that was not queued.
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta, tzinfo
from email.message import EmailMessage
from typing import Any

from leakguard.officer.stats import AuditReport, audit_report, audit_report_text, clean, label
from leakguard.store import SqlStore
from leakguard.store.stats import StatsQueries, meta_key

NOTICE_HEADER = "X-Leakguard-Notice"  # as on every notice the relay writes
META_PREFIX = "audit_report"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def report_mail(
    report: AuditReport,
    *,
    officers: Collection[str],
    from_addr: str,
    after_days: int,
    tz: tzinfo = UTC,
) -> bytes:
    """The report mail: Japanese first, then English, plain text."""
    rule = clean(report.rule, 80)
    body = []
    for lang in ("ja", "en"):
        body += [
            label("audit.intro", lang, rule=rule, days=after_days),
            "",
            audit_report_text(report, lang, tz),
            label("audit.howto", lang, rule=rule),
            "",
            "-" * 40,
            "",
        ]
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = from_addr
    msg["To"] = ", ".join(officers)
    msg["Subject"] = label("audit.subject", "ja", rule=rule)
    msg["Date"] = email.utils.formatdate(localtime=False)
    domain = from_addr.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = email.utils.make_msgid("leakguard", domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg[NOTICE_HEADER] = "audit_report"
    msg.set_content("\n".join(body).rstrip() + "\n", charset="utf-8", cte="base64")
    return msg.as_bytes()


class AuditReporter:
    """Checks (hourly) for audit-mode rules due for their report and queues it once."""

    def __init__(
        self,
        store: SqlStore,
        *,
        officers: Collection[str],
        after_seconds: int,
        from_addr: str,
        audit_rules: Callable[[], Collection[str] | None] = lambda: None,
        tz: tzinfo = UTC,
        log: Any = None,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.queries = StatsQueries(store)
        self.officers = tuple(officers)
        self.after = timedelta(seconds=after_seconds)
        self.from_addr = from_addr
        self.audit_rules = audit_rules
        self.tz = tz
        self.log = log
        self.now = now

    async def run_once(self) -> list[str]:
        """Queue the report of every rule now due; returns the rules reported."""
        if not self.officers:
            return []
        rules = self.audit_rules()
        now = self.now()
        firsts = await self.queries.audit_first_hits(None if rules is None else sorted(rules))
        sent = []
        for rule, first in sorted(firsts.items()):
            if first + self.after > now:
                continue
            key = meta_key(META_PREFIX, rule)
            if await self.queries.get_mark(key) is not None:
                continue
            report = await audit_report(self.queries, rule, first, now)
            raw = report_mail(
                report,
                officers=self.officers,
                from_addr=self.from_addr,
                after_days=max(1, round(self.after.total_seconds() / 86400)),
                tz=self.tz,
            )
            mail = (raw, self.from_addr, list(self.officers))
            if await self.queries.mark_and_enqueue(key, now.isoformat(), [mail]):
                sent.append(rule)
                if self.log is not None:
                    self.log.info(
                        "audit_report_sent",
                        rule=rule,
                        first_hit=first.isoformat(),
                        hits=report.total,
                        officers=len(self.officers),
                    )
        return sent

    async def run(self, interval: float = 3600.0, first_delay: float = 60.0) -> None:
        await asyncio.sleep(first_delay)
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bad hour must not end the task
                if self.log is not None:
                    self.log.warning("audit_report_failed", error=str(exc)[:300])
            await asyncio.sleep(interval)


def audit_reporter(config: Any, store: SqlStore, engine: Any, log: Any) -> AuditReporter:
    """The service's reporter (``config``: ``ServiceConfig``; rules from the running policy,
    so a reload that turns a rule to enforce stops its report)."""
    from leakguard.holds.explain import zone

    def audit_rules() -> Collection[str] | None:
        rules = getattr(getattr(engine, "policy", None), "rules", None)
        if rules is None:
            return None
        return {r.id for r in rules if getattr(r, "mode", "") == "audit"}

    inc = config.incidents
    return AuditReporter(
        store,
        officers=inc.officers,
        after_seconds=config.seconds(inc.audit_report_after),
        from_addr=config.holds.notice_from,
        audit_rules=audit_rules,
        tz=zone(config.holds.timezone),
        log=log,
    )
