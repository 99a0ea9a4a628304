"""What each rule does (issue 9): statistics per rule and per department, and the
audit-first rollout report.

``compute_stats`` reads the store for a period: hold outcomes from the holds and their
transitions, everything else from the decision journal; the database does the counting
(``leakguard.store.stats``). ``audit_report`` tells what an audit-mode rule would have done
and how those mails were actually answered. Values are frozen dataclasses; rendering for
the terminal, the web page and the report mail lives beside them (plain text, ja/en).
"""

from __future__ import annotations

import asyncio
import re
import statistics
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from leakguard.masking import mask_identifiers
from leakguard.store.stats import AuditExample, By, Count, StatsQueries

# a rule is "noisy" when at least NOISY_MIN_CLOSED of its holds were answered and at least
# NOISY_RATE of those were released anyway
NOISY_RATE = 0.8
NOISY_MIN_CLOSED = 10
DAILY_ACTIONS = ("pass", "bcc", "hold", "delay", "reject")
MAX_DAYS = 400

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: str, limit: int = 200) -> str:
    """Printable text: control characters (terminal escapes, bidi overrides) removed."""
    return _CONTROL.sub("", text[: limit * 2])[:limit]


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal (East Asian wide and fullwidth count two)."""
    return sum(
        0
        if unicodedata.combining(ch)
        else 2
        if unicodedata.east_asian_width(ch) in ("W", "F")
        else 1
        for ch in text
    )


def pad(text: str, columns: int, *, right: bool = False) -> str:
    fill = " " * max(0, columns - width(text))
    return fill + text if right else text + fill


@dataclass(frozen=True, slots=True)
class RowStats:
    """One rule's (or one department's) numbers for the period."""

    key: str
    holds: int = 0
    released: int = 0
    released_bcc: int = 0
    discarded: int = 0
    expired: int = 0
    open: int = 0
    median_release_seconds: float | None = None
    bcc_rewrites: int = 0
    audit_hits: int = 0
    delays: int = 0
    rejects: int = 0
    noisy: bool = False

    @property
    def closed(self) -> int:
        return self.released + self.released_bcc + self.discarded + self.expired

    @property
    def release_rate(self) -> float | None:
        """(released + released as Bcc) / closed holds: a proxy for false positives."""
        if not self.closed:
            return None
        return (self.released + self.released_bcc) / self.closed

    def as_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "holds": self.holds,
            "released": self.released,
            "released_bcc": self.released_bcc,
            "discarded": self.discarded,
            "expired": self.expired,
            "open": self.open,
            "closed": self.closed,
            "release_rate": None if self.release_rate is None else round(self.release_rate, 4),
            "median_release_seconds": self.median_release_seconds,
            "bcc_rewrites": self.bcc_rewrites,
            "audit_hits": self.audit_hits,
            "delays": self.delays,
            "rejects": self.rejects,
            "noisy": self.noisy,
        }


@dataclass(frozen=True, slots=True)
class DayStats:
    day: date
    counts: Mapping[str, int]  # action -> mails

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class StatsReport:
    since: datetime
    until: datetime
    by: By
    rows: tuple[RowStats, ...]
    days: tuple[DayStats, ...]
    noisy_rate: float = NOISY_RATE
    noisy_min: int = NOISY_MIN_CLOSED

    @property
    def noisy(self) -> tuple[RowStats, ...]:
        return tuple(r for r in self.rows if r.noisy)

    def as_json(self) -> dict[str, object]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "by": self.by,
            "noisy_rule": {
                "release_rate_at_least": self.noisy_rate,
                "closed_at_least": self.noisy_min,
            },
            "rows": [r.as_json() for r in self.rows],
            "days": [
                {"day": d.day.isoformat(), **{a: d.counts.get(a, 0) for a in DAILY_ACTIONS}}
                for d in self.days
            ],
        }


def offset_minutes(tz: tzinfo, at: datetime) -> int:
    off = at.astimezone(tz).utcoffset() or timedelta(0)
    return int(off.total_seconds() // 60)


async def compute_stats(
    queries: StatsQueries,
    since: datetime,
    until: datetime,
    *,
    by: By = "rule",
    noisy_rate: float = NOISY_RATE,
    noisy_min: int = NOISY_MIN_CLOSED,
    tz: tzinfo = UTC,
    daily: bool = True,
) -> StatsReport:
    """The numbers of ``[since, until)``; noisy keys flagged only when ``by == "rule"``.
    The queries run side by side (each on its own connection); ``daily=False`` skips the
    per-day totals (the same for both groupings)."""
    offset = offset_minutes(tz, until)
    hold_c, dur, out_c, audit_c, day_c = await asyncio.gather(
        queries.hold_states(since, until, by),
        queries.release_durations(since, until, by),
        queries.decision_outcomes(since, until, by),
        queries.audit_hits(since, until, by),
        queries.daily_actions(since, until, offset_minutes=offset) if daily else _nothing(),
    )
    holds: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in hold_c:
        holds[c.key][c.category] += c.n
    durations: dict[str, list[float]] = defaultdict(list)
    for key, seconds in dur:
        durations[key].append(seconds)
    outcomes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in out_c:
        outcomes[c.key][c.category] += c.n
    audits: dict[str, int] = defaultdict(int)
    for c in audit_c:
        audits[c.key] += c.n
    rows = []
    for key in sorted(set(holds) | set(outcomes) | set(audits)):
        h, o = holds.get(key, {}), outcomes.get(key, {})
        row = RowStats(
            key=key,
            holds=sum(h.values()),
            released=h.get("released", 0),
            released_bcc=h.get("released_bcc", 0),
            discarded=h.get("discarded", 0),
            expired=h.get("expired", 0),
            open=h.get("held", 0) + h.get("delayed", 0),
            median_release_seconds=(
                statistics.median(durations[key]) if durations.get(key) else None
            ),
            bcc_rewrites=o.get("sent_bcc", 0),
            audit_hits=audits.get(key, 0),
            delays=o.get("delayed", 0),
            rejects=o.get("rejected", 0),
        )
        rate = row.release_rate
        noisy = by == "rule" and rate is not None and row.closed >= noisy_min and rate >= noisy_rate
        rows.append(_with_noisy(row, noisy))
    rows.sort(key=lambda r: (-r.holds, -r.audit_hits, -r.bcc_rewrites, r.key))
    per_day: dict[str, dict[str, int]] = defaultdict(dict)
    for c in day_c:
        per_day[c.key][c.category] = per_day[c.key].get(c.category, 0) + c.n
    return StatsReport(
        since=since,
        until=until,
        by=by,
        rows=tuple(rows),
        days=tuple(_fill_days(per_day, since, until, offset)) if daily else (),
        noisy_rate=noisy_rate,
        noisy_min=noisy_min,
    )


async def _nothing() -> list[Count]:
    return []


def _with_noisy(row: RowStats, noisy: bool) -> RowStats:
    if not noisy:
        return row
    fields = {f: getattr(row, f) for f in RowStats.__slots__}
    fields["noisy"] = True
    return RowStats(**fields)


def _fill_days(
    per_day: Mapping[str, Mapping[str, int]], since: datetime, until: datetime, offset: int
) -> Iterable[DayStats]:
    shift = timedelta(minutes=offset)
    first = (since.astimezone(UTC) + shift).date()
    last = (until.astimezone(UTC) - timedelta(microseconds=1) + shift).date()
    day = max(first, last - timedelta(days=MAX_DAYS - 1))
    while day <= last:
        got = per_day.get(day.isoformat(), {})
        yield DayStats(day, {a: int(got.get(a, 0)) for a in DAILY_ACTIONS})
        day += timedelta(days=1)


# ---------------------------------------------------------------------- audit rollout


@dataclass(frozen=True, slots=True)
class AuditReport:
    rule: str
    since: datetime
    until: datetime
    total: int
    action: str  # what the rule would have done (hold, bcc, ...), "" when unknown
    by_department: tuple[tuple[str, int], ...]
    answers: tuple[tuple[str, int], ...]  # answer category -> mails
    reported: int
    examples: tuple[AuditExample, ...] = field(default=())

    def as_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "total": self.total,
            "would_have": self.action,
            "by_department": dict(self.by_department),
            "answers": dict(self.answers),
            "reported": self.reported,
            "examples": [
                {
                    "decision_id": e.decision_id,
                    "at": e.at.isoformat(),
                    "department": e.department,
                    "subject": mask_identifiers(e.subject),
                    "answer": answer_key(e.outcome, e.hold_state),
                    "reported": e.reported,
                }
                for e in self.examples
            ],
        }


def answer_key(outcome: str, hold_state: str | None) -> str:
    """How a mail was actually answered: ``sent``, ``sent_bcc``, ``held:released``, ..."""
    if outcome in ("held", "delayed") and hold_state:
        return f"{outcome}:{hold_state}"
    return outcome


async def audit_report(
    queries: StatsQueries, rule: str, since: datetime, until: datetime, *, examples: int = 10
) -> AuditReport:
    depts: dict[str, int] = defaultdict(int)
    answers: dict[str, int] = defaultdict(int)
    reported = 0
    for c in await queries.audit_outcomes(rule, since, until):
        depts[c.key] += c.n
        parts = c.category.split("/")
        state = parts[1] if len(parts) > 1 and parts[1] != "reported" else None
        answers[answer_key(parts[0], state)] += c.n
        if parts[-1] == "reported":
            reported += c.n
    ex = await queries.audit_examples(rule, since, until, limit=examples)
    action = next((e.action for e in ex if e.action), "")
    return AuditReport(
        rule=rule,
        since=since,
        until=until,
        total=sum(depts.values()),
        action=action,
        by_department=tuple(sorted(depts.items(), key=lambda kv: (-kv[1], kv[0]))),
        answers=tuple(sorted(answers.items(), key=lambda kv: (-kv[1], kv[0]))),
        reported=reported,
        examples=tuple(ex),
    )


# ---------------------------------------------------------------------- words

LABELS: dict[str, tuple[str, str]] = {
    "rule": ("ルール", "rule"),
    "department": ("部署", "department"),
    "holds": ("保留", "holds"),
    "released": ("送信", "released"),
    "released_bcc": ("Bcc送信", "as Bcc"),
    "discarded": ("破棄", "discarded"),
    "expired": ("期限切れ", "expired"),
    "open": ("未処理", "open"),
    "median": ("送信までの中央値", "median to release"),
    "rate": ("送信率", "release rate"),
    "bcc_rewrites": ("Bcc変換", "Bcc rewrites"),
    "audit_hits": ("監査のみ", "audit hits"),
    "delays": ("遅延", "delays"),
    "rejects": ("拒否", "rejects"),
    "noisy": ("要見直し", "noisy"),
    "none_dept": ("(部署なし)", "(no department)"),
    "period": ("期間", "period"),
    "no_data": ("この期間の記録はありません。", "Nothing was recorded in this period."),
    "act.pass": ("通過", "passed"),
    "act.bcc": ("Bcc", "Bcc"),
    "act.hold": ("保留", "held"),
    "act.delay": ("遅延", "delayed"),
    "act.reject": ("拒否", "rejected"),
    "mails_total": (
        "判定したメール: {total} 通 ({parts})。"
        "1 通に複数のルールが該当すると、ルールごとに数えます。",
        "Mails decided: {total} ({parts}). A mail several rules matched counts for each rule.",
    ),
    "noisy_note": (
        "* 要見直し: 回答済みの保留が {min} 件以上あり、その {rate}% 以上がそのまま送信されたルール"
        "です。誤検知が多い可能性があります。",
        "* noisy: at least {min} of the rule's holds were answered and {rate}% or more of them "
        "were sent anyway; the rule probably stops mostly harmless mail.",
    ),
    # answers in the audit report
    "a.sent": ("そのまま送信", "sent as it was"),
    "a.sent_bcc": ("Bcc に変換して送信", "sent with recipients moved to Bcc"),
    "a.held": ("別のルールで保留中", "held by another rule, still open"),
    "a.held:held": ("別のルールで保留中", "held by another rule, still open"),
    "a.held:released": ("別のルールで保留 → 送信", "held by another rule, then released"),
    "a.held:released_bcc": (
        "別のルールで保留 → Bcc で送信",
        "held by another rule, then released as Bcc",
    ),
    "a.held:discarded": ("別のルールで保留 → 破棄", "held by another rule, then discarded"),
    "a.held:expired": ("別のルールで保留 → 期限切れ", "held by another rule, then expired"),
    "a.delayed": ("遅延送信", "delayed"),
    "a.delayed:delayed": ("遅延送信の待ち時間中", "delayed, still waiting"),
    "a.delayed:released": ("遅延ののち送信", "delayed, then sent"),
    "a.delayed:released_bcc": ("遅延ののち Bcc で送信", "delayed, then sent as Bcc"),
    "a.delayed:discarded": ("遅延中に取り消し", "delayed, then cancelled"),
    "a.delayed:expired": ("遅延ののち期限切れ", "delayed, then expired"),
    "a.rejected": ("拒否", "rejected"),
    "a.failed": ("送信失敗", "failed"),
    "audit.title": ("監査モードのルール {rule} の報告", "Audit-mode rule {rule}: report"),
    "audit.total": ("該当したメール", "mails it matched"),
    "audit.would": ("このルールの動作 (監査のため実行せず)", "what it would have done"),
    "audit.answers": ("実際の扱い", "how those mails were actually answered"),
    "audit.reported": ("誤送信として報告されたもの", "reported as a mistake afterwards"),
    "audit.by_dept": ("部署別", "by department"),
    "audit.examples": ("例 (件名は伏せ字処理済み)", "examples (subjects masked)"),
    "audit.none": (
        "この期間にこのルールが該当したメールはありません。",
        "The rule matched no mail in this period.",
    ),
    "audit.intro": (
        "監査モードで運用中のルール {rule} が最初に該当してから {days} 日が経ちました。"
        "このルールを有効 (enforce) にする前に、実際の動作を確認してください。",
        "The audit-mode rule {rule} first matched {days} days ago. Before you switch it to "
        "enforce, here is what it would have done and how those mails were answered.",
    ),
    "audit.howto": (
        "最新の報告: leakguard stats audit {rule}",
        "For a fresh report: leakguard stats audit {rule}",
    ),
    "audit.subject": (
        "[leakguard] 監査ルール {rule} の報告 / Audit rule report",
        "[leakguard] Audit rule report / 監査ルール {rule} の報告",
    ),
}


def label(key: str, lang: str, **fields: object) -> str:
    ja, en = LABELS.get(key, (key, key))
    text = ja if lang == "ja" else en
    return text.format(**fields) if fields else text


def answer_text(key: str, lang: str) -> str:
    return label(f"a.{key}", lang) if f"a.{key}" in LABELS else key


def duration_text(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}秒" if lang == "ja" else f"{s}s"
    if s < 3600:
        return f"{s // 60}分" if lang == "ja" else f"{s // 60}m"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}時間{m}分" if lang == "ja" else f"{h}h{m:02d}m"
    d, h = divmod(s // 3600, 24)
    return f"{d}日{h}時間" if lang == "ja" else f"{d}d{h}h"


def rate_text(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def key_text(key: str, by: str, lang: str) -> str:
    if by == "department" and not key:
        return label("none_dept", lang)
    return clean(key, 80)


def audit_report_text(report: AuditReport, lang: str, tz: tzinfo = UTC) -> str:
    """The audit report as plain text (terminal and mail)."""
    rule = clean(report.rule, 80)
    fmt = "%Y-%m-%d %H:%M"
    lines = [
        label("audit.title", lang, rule=rule),
        f"{label('period', lang)}: {report.since.astimezone(tz).strftime(fmt)} – "
        f"{report.until.astimezone(tz).strftime(fmt)}",
        "",
    ]
    if not report.total:
        lines.append(label("audit.none", lang))
        return "\n".join(lines) + "\n"
    lines.append(f"{label('audit.total', lang)}: {report.total}")
    if report.action:
        lines.append(f"{label('audit.would', lang)}: {clean(report.action, 16)}")
    lines.append(f"{label('audit.reported', lang)}: {report.reported}")
    lines += ["", f"{label('audit.answers', lang)}:"]
    cols = max(width(answer_text(k, lang)) for k, _ in report.answers)
    for k, n in report.answers:
        lines.append(f"  {pad(answer_text(k, lang), cols)}  {n:>6}")
    lines += ["", f"{label('audit.by_dept', lang)}:"]
    names = [key_text(d, "department", lang) for d, _ in report.by_department]
    cols = max(width(x) for x in names)
    for name, (_d, n) in zip(names, report.by_department, strict=True):
        lines.append(f"  {pad(name, cols)}  {n:>6}")
    if report.examples:
        lines += ["", f"{label('audit.examples', lang)}:"]
        for e in report.examples:
            lines.append(
                f"  {e.at.astimezone(tz).strftime(fmt)}  {e.decision_id}  "
                f"{key_text(e.department, 'department', lang)}  "
                f"[{answer_text(answer_key(e.outcome, e.hold_state), lang)}"
                f"{' / ' + label('audit.reported', lang) if e.reported else ''}]  "
                f"{clean(mask_identifiers(e.subject), 60)}"
            )
    return "\n".join(lines) + "\n"
