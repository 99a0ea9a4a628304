"""The incident record (issue 9): one timeline document, in Japanese or English, ready to
paste into the report to the supervising authority.

``assemble`` gathers everything the store knows about an incident (the journal row, the
hold and its transitions, the deliveries, the incident's own events and follow-ups, the
policy's rule list); ``sections`` turns it into language-specific sections that every
rendering shares: Markdown and text (``to_markdown``, ``to_text``), PDF (``to_pdf``,
reportlab with the built-in CID font ``HeiseiKakuGo-W5``, so Japanese needs no font files)
and the admin web page. Nothing here shows mail body text or a full identifier: the
journal keeps only masked findings and the redacted subject, and whatever comes from a
hold is masked again here.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from leakguard.holds import codec
from leakguard.holds.explain import zone
from leakguard.holds.model import HoldRecord, Transition
from leakguard.holds.texts import t as hold_t
from leakguard.masking import mask_identifiers, redact_text
from leakguard.officer.texts import t, trigger_words, via_words
from leakguard.organization import Organization
from leakguard.store import SqlStore
from leakguard.store.hold_deliveries import HoldDelivery, hold_deliveries
from leakguard.store.journal import FOLLOWUPS, DecisionEntry, IncidentEvent, IncidentRecord

MAX_PERSONAL = 50
MAX_RCPTS_SHOWN = 200


@dataclass(frozen=True, slots=True)
class IncidentFile:
    """Everything known about one incident (language-neutral)."""

    incident: IncidentRecord
    events: tuple[IncidentEvent, ...]
    decision: DecisionEntry | None
    hold: HoldRecord | None
    transitions: tuple[Transition, ...]
    deliveries: tuple[HoldDelivery, ...]
    internal: frozenset[str]  # recipients (lower case) that are internal
    policy_rules: tuple[str, ...] | None  # None: the policy's rule list was not available
    generated_at: datetime
    related: tuple[IncidentRecord, ...] = ()  # the other kind filed for the same mail


@dataclass(frozen=True, slots=True)
class Section:
    key: str  # summary, mail, rcpts, personal, rules, release, timeline, followups
    title: str
    fields: tuple[tuple[str, str], ...] = ()
    items: tuple[str, ...] = ()
    table: tuple[tuple[str, ...], ...] = ()  # the first row is the header


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    sections: tuple[Section, ...]
    footer: str


async def assemble(
    store: SqlStore,
    incident_id: str,
    *,
    organization: Organization | None = None,
    policy_rules: Sequence[str] | None = None,
    now: datetime,
) -> IncidentFile | None:
    j = store.journal
    inc = await j.get_incident(incident_id[:32])
    if inc is None:
        return None
    events = tuple(await j.incident_events(inc.id))
    decision = await j.get(inc.decision_id) if inc.decision_id else None
    hid = inc.hold_id or (decision.hold_id if decision is not None else None)
    hold = await store.get_hold(hid) if hid else None
    if decision is None and hold is not None:
        decision = await j.by_hold(hold.id)
    transitions = tuple(await store.timeline(hold.id)) if hold is not None else ()
    deliveries = tuple(await hold_deliveries(store, hold.id)) if hold is not None else ()
    # the other kind of incident filed for the same mail (a report and its near-miss alert)
    other = "near_miss" if inc.kind == "report" else "report"
    related: list[IncidentRecord] = []
    if decision is not None:
        found = await j.find_incident(decision_id=decision.id, kind=other)
        related += [found] if found is not None else []
    if hold is not None:
        found = await j.find_incident(hold_id=hold.id, kind=other)
        if found is not None and all(r.id != found.id for r in related):
            related.append(found)
    org = organization or Organization()
    rcpts = decision.rcpts if decision is not None else (hold.rcpts if hold is not None else ())
    internal = frozenset(r.lower() for r in rcpts if org.is_internal(r))
    return IncidentFile(
        incident=inc,
        events=events,
        decision=decision,
        hold=hold,
        transitions=transitions,
        deliveries=deliveries,
        internal=internal,
        policy_rules=tuple(policy_rules) if policy_rules is not None else None,
        generated_at=now,
        related=tuple(related),
    )


# --------------------------------------------------------------------------- sections


_ROLE = re.compile(r"\((officer|deputy|supervisor)\)$")


def _state(state: str, lang: str) -> str:
    """A hold state in words (送信済み / released)."""
    return hold_t(f"state.{state}", lang)


def _when(at: datetime | None, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z") if at is not None else "-"


def _one(text: str, limit: int = 300) -> str:
    s = " ".join(text.replace("\x00", "").split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _summary_of(f: IncidentFile) -> dict[str, Any]:
    """The masked verdict summary: the journal's, else rebuilt from the hold (masked)."""
    if f.decision is not None and f.decision.summary:
        return dict(f.decision.summary)
    if f.hold is None:
        return {}
    verdict, _ = codec.decode(f.hold.verdict_json)

    def rule(r: Any) -> dict[str, Any]:
        return {
            "id": r.rule_id,
            "action": r.action.value,
            "mode": r.mode,
            "reason": {"ja": r.reason.ja, "en": r.reason.en},
        }

    return {
        "facts": {k: v for k, v in verdict.facts.items() if v},
        "rules": [rule(r) for r in verdict.rules],
        "audit_rules": [rule(r) for r in verdict.audit_rules],
        "findings": [
            {
                "fact": x.fact,
                "detector": x.detector,
                "detail": mask_identifiers(x.detail)[:300],
                "evidence": {k: mask_identifiers(str(v))[:300] for k, v in x.evidence.items()},
            }
            for x in verdict.findings[:MAX_PERSONAL]
        ],
        "findings_total": len(verdict.findings),
    }


def _personal(summary: dict[str, Any], lang: str) -> list[str]:
    out: list[str] = []
    found = [
        x
        for x in summary.get("findings") or ()
        if isinstance(x, dict) and str(x.get("fact", "")).startswith("personal_data")
    ]
    for x in found[:MAX_PERSONAL]:
        ev = x.get("evidence") if isinstance(x.get("evidence"), dict) else {}
        assert isinstance(ev, dict)
        extra = "; ".join(f"{k}: {mask_identifiers(str(v))}" for k, v in list(ev.items())[:6])
        fact = str(x.get("fact", ""))
        kind = fact.split(".", 1)[1] if "." in fact else fact
        detail = mask_identifiers(str(x.get("detail", "")))
        out.append(_one(f"{kind}: {detail}" + (f" ({extra})" if extra else ""), 400))
    if len(found) > MAX_PERSONAL:
        out.append(t("rec.personal_more", lang, n=len(found) - MAX_PERSONAL))
    return out


def _reason(r: dict[str, Any], lang: str) -> str:
    reason = r.get("reason") if isinstance(r.get("reason"), dict) else {}
    assert isinstance(reason, dict)
    return str(reason.get(lang) or reason.get("en") or "")


def sections(f: IncidentFile, lang: str, timezone: str = "Asia/Tokyo") -> Document:
    tz = zone(timezone)
    inc, d, h = f.incident, f.decision, f.hold
    summary = _summary_of(f)
    out: list[Section] = []

    # -- summary
    fields = [
        (t("f.incident", lang), inc.id),
        (t("f.kind", lang), t(f"kind.{inc.kind}", lang)),
        (t("f.state", lang), t(f"state.{inc.state}", lang)),
        (t("f.reported_at", lang), _when(inc.created_at, tz)),
        (t("f.reported_by", lang), inc.reported_by),
        (t("f.via", lang), via_words(inc.via, lang)),
        (t("f.sender", lang), inc.sender or "-"),
        (t("f.department", lang), inc.department or "-"),
    ]
    if inc.note:
        if inc.kind == "near_miss":
            reasons = trigger_words(mask_identifiers(inc.note), lang)
            fields.append((t("f.triggers", lang), _one(reasons, 2000)))
        else:
            fields.append((t("f.note", lang), _one(mask_identifiers(inc.note), 2000)))
    if f.related:
        fields.append(
            (
                t("f.related", lang),
                ", ".join(f"{r.id} ({t('kind.' + r.kind, lang)})" for r in f.related),
            )
        )
    out.append(Section("summary", t("rec.s.summary", lang), fields=tuple(fields)))

    # -- the mail
    mail_fields: list[tuple[str, str]] = []
    rcpts: tuple[str, ...] = ()
    if d is not None:
        rcpts = d.rcpts
        mail_fields += [
            (t("f.sent_at", lang), _when(d.at, tz)),
            (t("f.subject", lang), _one(redact_text(d.subject))),
            (t("f.message_id", lang), _one(d.message_id, 200) or "-"),
            (t("f.relay_did", lang), f"{d.action} → {t('outcome.' + d.outcome, lang)}"),
            (t("f.rcpts", lang), t("f.rcpts_count", lang, n=len(d.rcpts), ext=d.external_rcpts)),
            (t("f.size", lang), f"{d.size:,} B"),
            (t("f.policy", lang), d.policy_version or "-"),
        ]
    if h is not None:
        if d is None:
            rcpts = h.rcpts
            mail_fields += [
                (t("f.sent_at", lang), _when(h.created_at, tz)),
                (t("f.subject", lang), _one(redact_text(h.subject))),
            ]
        mail_fields.append((t("f.hold", lang), f"{h.id} ({_state(h.state.value, lang)})"))
    out.append(
        Section(
            "mail",
            t("rec.s.mail", lang),
            fields=tuple(mail_fields),
            items=() if mail_fields else (t("rec.no_mail", lang),),
        )
    )
    shown = [
        f"{r} ({t('internal' if r.lower() in f.internal else 'external', lang)})"
        for r in rcpts[:MAX_RCPTS_SHOWN]
    ]
    if len(rcpts) > MAX_RCPTS_SHOWN:
        shown.append(f"… (+{len(rcpts) - MAX_RCPTS_SHOWN})")
    out.append(Section("rcpts", t("rec.s.rcpts", lang), items=tuple(shown) or ("-",)))

    # -- personal data
    personal = _personal(summary, lang)
    out.append(
        Section(
            "personal",
            t("rec.s.personal", lang),
            items=tuple(personal) or (t("rec.no_personal", lang),),
        )
    )

    # -- rules
    rule_items: list[str] = []
    fired_ids: set[str] = set()
    for r in summary.get("rules") or ():
        if isinstance(r, dict):
            fired_ids.add(str(r.get("id")))
            rule_items.append(
                t(
                    "rec.fired",
                    lang,
                    rule=r.get("id"),
                    action=r.get("action"),
                    reason=_reason(r, lang),
                )
            )
    for rid in inc.rules:
        if rid not in fired_ids:
            fired_ids.add(rid)
            rule_items.append(t("rec.fired_bare", lang, rule=rid))
    for r in summary.get("audit_rules") or ():
        if isinstance(r, dict):
            fired_ids.add(str(r.get("id")))
            rule_items.append(t("rec.audit", lang, rule=r.get("id")))
    if not rule_items:
        rule_items.append(t("rec.no_rules", lang))
    if f.policy_rules is None:
        rule_items.append(t("rec.silent_unknown", lang))
    else:
        silent = [r for r in f.policy_rules if r not in fired_ids]
        rule_items.append(t("rec.silent", lang, rules=", ".join(silent) or "-"))
    out.append(Section("rules", t("rec.s.rules", lang), items=tuple(rule_items)))

    # -- who released it and how
    out.append(Section("release", t("rec.s.release", lang), items=tuple(_release(f, lang, tz))))

    # -- the timeline
    rows: list[tuple[datetime, str, str, str]] = []
    if d is not None:
        rows.append(
            (
                d.at,
                t("ev.decided", lang, action=d.action, outcome=t("outcome." + d.outcome, lang)),
                d.auth_user or d.sender,
                _one(mask_identifiers(d.reply), 120),
            )
        )
    for tr in f.transitions:
        if tr.to_state is not None:
            frm = _state(tr.from_state.value, lang) if tr.from_state else "-"
            what = t("ev.hold", lang, move=f"{frm} → {_state(tr.to_state.value, lang)}")
        else:
            what = t("ev.hold_note", lang, note="")
        rows.append(
            (
                tr.at,
                what.rstrip(": "),
                f"{tr.actor} ({tr.via.value})",
                _one(mask_identifiers(tr.note), 200),  # a reporter's note may quote anything
            )
        )
    for dl in f.deliveries:
        if dl.state == "done" and dl.finished_at is not None:
            rows.append((dl.finished_at, t("ev.delivered", lang, n=len(dl.rcpts)), "leakguard", ""))
        elif dl.state == "failed":
            rows.append(
                (
                    dl.finished_at or dl.created_at,
                    t("ev.delivery_failed", lang),
                    "leakguard",
                    _one(mask_identifiers(dl.last_error), 200),
                )
            )
    for ev in f.events:
        detail = ev.detail
        if ev.kind in ("followup", "followup_undone") and ev.detail in FOLLOWUPS:
            detail = t(f"followup.{ev.detail}", lang)
        elif ev.kind == "alerted":
            detail = trigger_words(ev.detail, lang)
        elif ev.kind == "notified":
            detail = _ROLE.sub(lambda m: f"({t('role.' + m.group(1), lang)})", ev.detail)
        rows.append(
            (ev.at, t(f"ev.{ev.kind}", lang), ev.actor, _one(mask_identifiers(detail), 300))
        )
    rows.sort(key=lambda r: r[0])
    header = (
        t("rec.col.at", lang),
        t("rec.col.what", lang),
        t("rec.col.who", lang),
        t("rec.col.detail", lang),
    )
    table = (header, *((_when(at, tz), w, who, det) for at, w, who, det in rows))
    out.append(Section("timeline", t("rec.s.timeline", lang), table=table))

    # -- follow-ups
    fu: list[tuple[str, str]] = []
    for key in FOLLOWUPS:
        done = inc.followups.get(key)
        if done:
            at = done.get("at", "")
            try:
                at_text = _when(datetime.fromisoformat(at), tz)
            except ValueError:
                at_text = at
            value = t("rec.followup_done", lang, at=at_text, by=done.get("by", ""))
        else:
            value = t("rec.followup_open", lang)
        fu.append((t(f"followup.{key}", lang), value))
    out.append(Section("followups", t("rec.s.followups", lang), fields=tuple(fu)))

    return Document(
        title=t(f"rec.title.{inc.kind}", lang, id=inc.id),
        sections=tuple(out),
        footer=t("rec.generated", lang, at=_when(f.generated_at, tz)),
    )


def _release(f: IncidentFile, lang: str, tz: tzinfo) -> list[str]:
    d, h = f.decision, f.hold
    items: list[str] = []
    if h is None:
        if d is not None and d.outcome in ("sent", "sent_bcc"):
            key = "rec.direct_bcc" if d.outcome == "sent_bcc" else "rec.direct"
            items.append(t(key, lang, at=_when(d.at, tz)))
        elif d is not None:
            items.append(t("outcome." + d.outcome, lang))
        return items or ["-"]
    closing = [tr for tr in f.transitions if tr.to_state is not None and tr.from_state is not None]
    if closing:
        last = closing[-1]
        items.append(
            t(
                "rec.released",
                lang,
                at=_when(last.at, tz),
                actor=last.actor,
                via=last.via.value,
                state=_state(last.to_state.value, lang) if last.to_state else "",
            )
        )
    else:
        items.append(t("rec.still_held", lang, state=_state(h.state.value, lang)))
    for dl in f.deliveries:
        if dl.state == "done" and dl.finished_at is not None:
            items.append(t("rec.delivered", lang, at=_when(dl.finished_at, tz), n=len(dl.rcpts)))
        elif dl.state == "failed":
            items.append(
                t("rec.delivery_failed", lang, error=_one(mask_identifiers(dl.last_error), 200))
            )
        else:
            items.append(t("rec.delivery_pending", lang, n=len(dl.rcpts)))
    return items


# --------------------------------------------------------------------------- renderings


def _md(text: str) -> str:
    """Markdown-inert text: every character Markdown or HTML could read is escaped, control
    characters are dropped, and nothing can become a heading, a table cell or a link (also
    GFM's bare ``https:`` / ``www.`` autolinks)."""
    out = []
    for ch in _printable(text.replace("\r", " ").replace("\n", " ")):
        if ch in _HTML:
            out.append(_HTML[ch])
        elif ch in "\\`*_[]|~#":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return _AUTOLINK.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], "".join(out))


_HTML = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
_AUTOLINK = re.compile(r"www\.|:(?=//)", re.IGNORECASE)  # GFM's bare-link starts
# C0/C1 controls, DEL, bidi overrides and isolates, lone surrogates, noncharacters
_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]"
)


def _printable(text: str) -> str:
    """``text`` without the characters no document should carry (a lone surrogate would
    also make reportlab's UTF-16 encoder raise in the middle of a PDF)."""
    return _UNPRINTABLE.sub("", text)


def to_markdown(doc: Document) -> str:
    lines = [f"# {_md(doc.title)}", ""]
    for s in doc.sections:
        lines += [f"## {_md(s.title)}", ""]
        for label, value in s.fields:
            lines.append(f"- **{_md(label)}**: {_md(value)}")
        for item in s.items:
            lines.append(f"- {_md(item)}")
        if s.table:
            head, *body = s.table
            lines.append("| " + " | ".join(_md(c) for c in head) + " |")
            lines.append("|" + "---|" * len(head))
            for row in body:
                lines.append("| " + " | ".join(_md(c) for c in row) + " |")
        lines.append("")
    lines.append(f"_{_md(doc.footer)}_")
    return "\n".join(lines) + "\n"


def to_text(doc: Document) -> str:
    lines = [doc.title, "=" * min(60, len(doc.title) * 2), ""]
    for s in doc.sections:
        lines += [s.title, "-" * min(60, len(s.title) * 2)]
        for label, value in s.fields:
            lines.append(f"  {label}: {value}")
        for item in s.items:
            lines.append(f"  - {item}")
        if s.table:
            for row in s.table[1:]:
                lines.append("  " + "  ".join(c for c in row if c))
        lines.append("")
    lines.append(doc.footer)
    return "\n".join(lines) + "\n"


PDF_FONT = "HeiseiKakuGo-W5"


def to_pdf(doc: Document) -> bytes:
    """An A4 PDF with a real text layer (CPU work: call off the event loop)."""
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if PDF_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(PDF_FONT))
    base = ParagraphStyle("base", fontName=PDF_FONT, fontSize=9.5, leading=14, wordWrap="CJK")
    small = ParagraphStyle("small", parent=base, fontSize=8, leading=11)
    h1 = ParagraphStyle("h1", parent=base, fontSize=16, leading=22, spaceAfter=6)
    h2 = ParagraphStyle("h2", parent=base, fontSize=12, leading=17, spaceBefore=8, spaceAfter=3)

    def p(text: str, style: ParagraphStyle = base) -> Paragraph:
        # plain text only: reportlab reads <img>, <a>, <font>, entities as markup
        return Paragraph(escape(_printable(text)), style)

    story: list[Any] = [p(doc.title, h1)]
    width = A4[0] - 36 * mm
    for s in doc.sections:
        story.append(p(s.title, h2))
        if s.fields:
            rows = [[p(label, small), p(value)] for label, value in s.fields]
            tbl = Table(rows, colWidths=[38 * mm, width - 38 * mm])
            tbl.setStyle(
                TableStyle(
                    [
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.grey),
                    ]
                )
            )
            story.append(tbl)
        for item in s.items:
            story.append(p("• " + item))
        if s.table:
            rows = [[p(c, small) for c in row] for row in s.table]
            tbl = Table(
                rows,
                colWidths=[34 * mm, 46 * mm, 42 * mm, width - 122 * mm],
                repeatRows=1,
            )
            tbl.setStyle(
                TableStyle(
                    [
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                    ]
                )
            )
            story.append(tbl)
    story += [Spacer(1, 6 * mm), p(doc.footer, small)]
    buf = io.BytesIO()
    SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=_printable(doc.title),
        author="leakguard",
    ).build(story)
    return buf.getvalue()
