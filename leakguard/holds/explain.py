"""The explanation of one hold, shared by the notice (text and HTML) and the review page.

Built from the store alone (``HoldRecord`` + its ``verdict_json``): reasons in plain words,
every recipient marked internal / external with the evidence that concerns it, the
third-party addresses found in the quoted thread and where, subject, first lines (links
defanged so that no mail client makes them clickable), attachments, time left.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leakguard.durations import format_duration
from leakguard.explain import explain_finding
from leakguard.holds.codec import decode
from leakguard.holds.model import HoldRecord
from leakguard.holds.texts import t
from leakguard.masking import redact_text
from leakguard.types import Finding, Verdict

_URL_SCHEME = re.compile(r"h(tt)ps?(?::|&#58;)//", re.IGNORECASE)
_OTHER_SCHEME = re.compile(
    r"\b(?:ftp|file|javascript|data|vbscript|mailto)(:|&#58;)", re.IGNORECASE
)
_WWW = re.compile(r"\bwww(\.)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def _ascii_fold(ch: str) -> str:
    """The one ASCII character ``ch`` stands for under NFKC (full-width ``ｈ``, ``：``,
    ``／``, small ``﹕``...), else ``ch`` itself: a same-length view for finding links."""
    if ch.isascii():
        return ch
    n = unicodedata.normalize("NFKC", ch)
    return n if len(n) == 1 and n.isascii() else ch


def defang(text: str) -> str:
    """Make links in hostile text non-clickable: ``http://`` -> ``hxxp://``, ``mailto:``
    (and ``javascript:``, ``data:``...) -> ``mailto[:]``, ``www.`` -> ``www[.]``, also when
    written in full-width or other compatibility forms (``ｈｔｔｐ：／／``)."""
    view = text if text.isascii() else "".join(_ascii_fold(c) for c in text)
    edits: list[tuple[int, int, str]] = []
    edits.extend((m.start(1), m.end(1), "xx") for m in _URL_SCHEME.finditer(view))
    edits.extend((m.start(1), m.end(1), "[:]") for m in _OTHER_SCHEME.finditer(view))
    edits.extend((m.start(1), m.end(1), "[.]") for m in _WWW.finditer(view))
    if not edits:
        return text
    out: list[str] = []
    pos = 0
    for start, end, repl in sorted(edits):
        if start < pos:  # overlapping edit (cannot happen with these patterns): skip it
            continue
        out.append(text[pos:start])
        out.append(repl)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def clean_line(text: str, limit: int = 300) -> str:
    """One line of display text: control and bidi-override characters removed, bounded."""
    text = _CONTROL.sub("", text.replace("\r", " ").replace("\n", " ").replace("\t", " "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(at: datetime, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


@dataclass(frozen=True, slots=True)
class Reason:
    rule_id: str
    text: str
    # what was found and where, masked (personal data: kind, masked value, location)
    details: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RecipientView:
    addr: str
    display: str
    field: str  # localized To/Cc/Bcc
    internal: bool
    kind: str  # localized internal/external
    notes: tuple[str, ...]
    flagged: bool  # something other than internal/external was found about it


@dataclass(frozen=True, slots=True)
class ThirdPartyView:
    addr: str
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AttachmentView:
    filename: str
    size: str


@dataclass(frozen=True, slots=True)
class Explanation:
    lang: str
    hold_id: str
    action: str  # "hold" or "delay"
    state: str
    state_text: str
    subject: str
    from_display: str
    sender: str  # the sender as shown to approvers (name <addr>)
    reasons: tuple[Reason, ...]
    recipients: tuple[RecipientView, ...]
    third_parties: tuple[ThirdPartyView, ...]
    first_lines: tuple[str, ...]
    attachments: tuple[AttachmentView, ...]
    expires_in: str
    expires_at: str
    due_in: str
    due_at: str
    offer_bcc: bool
    approvers: tuple[str, ...]
    needs_confirm: bool  # third party or lookalike found: release asks twice
    created_at: str
    # reading the mail for the summary ran past its budget (issue 12): the notice says so
    incomplete: bool = False


_MAX_DETAILS = 20  # items listed under one reason


def _ev(f: Finding, *keys: str) -> str:
    for k in keys:
        v = f.evidence.get(k)
        if v:
            return clean_line(str(v), 200)
    return ""


def _notes_for(
    findings: tuple[Finding, ...], lang: str
) -> tuple[dict[str, list[str]], dict[str, list[str]], set[str]]:
    """(notes per recipient key, notes per third-party key, flagged keys)."""
    per_rcpt: dict[str, list[str]] = {}
    per_third: dict[str, list[str]] = {}
    flagged: set[str] = set()
    seen: set[tuple[str, str]] = set()

    def add(target: dict[str, list[str]], addr: str, note: str) -> None:
        key = addr.lower()
        if (key, note) in seen or not note:
            return
        seen.add((key, note))
        target.setdefault(key, []).append(note)

    for f in findings[:500]:
        for addr in f.addresses[:200]:
            key = addr.lower()
            if f.fact == "quoted_third_party_addresses":
                where = (_ev(f, "location_ja") if lang == "ja" else "") or _ev(f, "location") or "?"
                add(per_third, addr, t("mark.third_party", lang, location=where))
                news_to = _ev(f, "news_to")
                if news_to:
                    add(per_third, addr, t("mark.news_to", lang, news_to=news_to))
                quoted_from = _ev(f, "quoted_from")
                if quoted_from:
                    add(per_third, addr, t("mark.quoted_from", lang, who=quoted_from))
                flagged.add(key)
            elif f.fact == "name_similar_recipients":
                name = _ev(f, "similar_name")
                target = _ev(f, "similar_to", "resembles", "person") or "?"
                who = f"{name} <{target}>" if name and name != target else target
                contact = f.evidence.get("source") == "contacts"
                add(
                    per_rcpt,
                    addr,
                    t("mark.similar_contact" if contact else "mark.similar", lang, similar_to=who),
                )
                flagged.add(key)
            elif f.fact == "lookalike_domains":
                like = _ev(f, "resembles", "similar_to", "target") or "?"
                add(per_rcpt, addr, t("mark.lookalike", lang, resembles=like))
                flagged.add(key)
            elif f.fact == "first_time_external_recipients":
                add(per_rcpt, addr, t("mark.first_time", lang))
            elif f.fact in ("visible_external_recipients", "visible_external_organizations"):
                continue  # the recipient is already marked external; the reason says the rest
            else:
                add(per_rcpt, addr, clean_line(explain_finding(f, lang), 200))
    return per_rcpt, per_third, flagged


def _all_findings(verdict: Verdict) -> tuple[Finding, ...]:
    out: list[Finding] = list(verdict.findings)
    for r in verdict.rules:
        out.extend(f for f in r.findings if f not in out)
    return tuple(out)


def explain(hold: HoldRecord, *, lang: str, now: datetime, timezone: str = "UTC") -> Explanation:
    verdict, summary = decode(hold.verdict_json)
    tz = zone(timezone)
    findings = _all_findings(verdict)
    per_rcpt, per_third, flagged = _notes_for(findings, lang)

    reasons: list[Reason] = []
    for r in verdict.rules:
        text = r.reason.get(lang) or r.reason.en or r.reason.ja or r.rule_id
        details = tuple(
            clean_line(explain_finding(f, lang), 300)
            for f in r.findings[:_MAX_DETAILS]
            if f.detector == "personal"
        )
        reasons.append(Reason(r.rule_id, clean_line(text, 500), details))

    recipients: list[RecipientView] = []
    known: set[str] = set()
    for info in summary.recipients:
        key = info.addr.lower()
        known.add(key)
        recipients.append(
            RecipientView(
                addr=clean_line(info.addr),
                display=clean_line(info.display),
                field=t(f"mark.{info.field}", lang) if info.field in ("to", "cc", "bcc") else "",
                internal=info.internal,
                kind=t("mark.internal" if info.internal else "mark.external", lang),
                notes=tuple(per_rcpt.get(key, ())),
                flagged=key in flagged,
            )
        )
    for rc in hold.rcpts:
        if rc.lower() not in known:  # summary missing (old record): envelope at least
            known.add(rc.lower())
            recipients.append(
                RecipientView(
                    clean_line(rc),
                    clean_line(rc),
                    t("mark.bcc", lang),
                    False,
                    t("mark.external", lang),
                    tuple(per_rcpt.get(rc.lower(), ())),
                    rc.lower() in flagged,
                )
            )
    third = tuple(ThirdPartyView(clean_line(a), tuple(n)) for a, n in per_third.items())

    lookalike_or_third = bool(third) or any(
        f.fact in ("lookalike_domains", "quoted_third_party_addresses") for f in findings
    )
    sender = summary.sender_name
    sender = f"{sender} <{hold.mail_from}>" if sender else hold.mail_from or (hold.auth_user or "")
    due_in = due_at = ""
    if hold.due_at is not None:
        due_in = format_duration(int((hold.due_at - now).total_seconds()), lang)
        due_at = local_time(hold.due_at, tz)
    return Explanation(
        lang=lang,
        hold_id=hold.id,
        action=hold.action,
        state=str(hold.state),
        state_text=t(f"state.{hold.state}", lang),
        subject=clean_line(redact_text(summary.subject or hold.subject)),
        from_display=clean_line(summary.from_display or hold.mail_from),
        sender=clean_line(sender),
        reasons=tuple(reasons),
        recipients=tuple(recipients),
        third_parties=third,
        first_lines=tuple(defang(clean_line(redact_text(x), 400)) for x in summary.first_lines),
        attachments=tuple(
            # a file name is mail content too: numbers masked, links defanged
            AttachmentView(defang(clean_line(redact_text(a.filename), 200)), human_size(a.size))
            for a in summary.attachments
        ),
        expires_in=format_duration(int((hold.expires_at - now).total_seconds()), lang),
        expires_at=local_time(hold.expires_at, tz),
        due_in=due_in,
        due_at=due_at,
        offer_bcc=hold.offer_bcc,
        approvers=tuple(clean_line(a) for a in hold.approvers),
        needs_confirm=lookalike_or_third,
        created_at=local_time(hold.created_at, tz),
        incomplete=summary.extra.get("incomplete") == "1",
    )
