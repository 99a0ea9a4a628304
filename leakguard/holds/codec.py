"""(De)serialise a ``Verdict`` and the hold's summary into ``HoldRecord.verdict_json``.

Notices and review pages are rendered later from the store alone, so everything they show
is captured here at hold time: the verdict (rules with their ja/en reasons, facts,
findings with evidence) and a ``HoldSummary`` (who the recipients were and how each was
classified, subject, first lines, attachments). Decoding is tolerant: the JSON comes from
our own store, but an older or damaged record must still render rather than crash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from leakguard.masking import mask_identifiers, redact_text
from leakguard.organization import Organization
from leakguard.types import Action, Finding, Localized, Message, RuleMatch, Verdict

FORMAT_VERSION = 1
MAX_FIRST_LINES = 8
MAX_FIRST_CHARS = 800
MAX_LIST = 500  # bound lists taken from hostile mail (recipients, attachments)


@dataclass(frozen=True, slots=True)
class RecipientInfo:
    addr: str
    display: str  # "Name <addr>" as written, for showing
    field: str  # "to", "cc", "bcc" (envelope only)
    internal: bool


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class HoldSummary:
    subject: str = ""
    from_display: str = ""
    recipients: tuple[RecipientInfo, ...] = ()
    first_lines: tuple[str, ...] = ()
    attachments: tuple[AttachmentInfo, ...] = ()
    has_html: bool = False
    sender_name: str = ""  # the sender's name from the directory (for approvers' notices)
    extra: Mapping[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- summary


def _first_lines(message: Message) -> tuple[str, ...]:
    text = ""
    for part in message.text_parts:
        if part.content_type == "text/plain" and part.text.strip():
            text = part.text
            break
    if not text:
        for part in message.text_parts:
            if part.text.strip():
                text = part.text
                break
    out: list[str] = []
    used = 0
    for line in text[: MAX_FIRST_CHARS * 4].splitlines():
        line = line.rstrip()
        if not line and not out:
            continue
        if used + len(line) > MAX_FIRST_CHARS:
            out.append(line[: max(0, MAX_FIRST_CHARS - used)] + "…")
            break
        out.append(line)
        used += len(line)
        if len(out) >= MAX_FIRST_LINES:
            break
    while out and not out[-1].strip():
        out.pop()
    # the summary is shown in notices and lists: identifiers in it keep their last 4 digits
    return tuple(mask_identifiers(x) for x in out)


def summarize(
    message: Message, rcpts: Sequence[str], org: Organization, *, sender_name: str = ""
) -> HoldSummary:
    """What the notice and page show about the held mail, captured at hold time."""
    seen: set[str] = set()
    recipients: list[RecipientInfo] = []
    for fieldname, addrs in (("to", message.to), ("cc", message.cc)):
        for a in addrs:
            if not a.domain or a.key in seen or len(recipients) >= MAX_LIST:
                continue
            seen.add(a.key)
            recipients.append(RecipientInfo(a.addr, a.display(), fieldname, org.is_internal(a)))
    for r in rcpts:
        key = r.lower()
        if key in seen or len(recipients) >= MAX_LIST:
            continue
        seen.add(key)
        recipients.append(RecipientInfo(r, r, "bcc", org.is_internal(r)))
    attachments = tuple(
        AttachmentInfo(redact_text(a.filename) or "(no name)", a.content_type, a.size)
        for a in message.attachments[:MAX_LIST]
    )
    return HoldSummary(
        subject=mask_identifiers(message.subject),
        from_display=message.from_[0].display() if message.from_ else "",
        recipients=tuple(recipients),
        first_lines=_first_lines(message),
        attachments=attachments,
        has_html=any(p.content_type == "text/html" for p in message.text_parts),
        sender_name=sender_name,
    )


def envelope_summary(
    rcpts: Sequence[str], org: Organization, *, subject: str = "", sender_name: str = ""
) -> HoldSummary:
    """The summary when reading the mail ran past its budget (issue 12): the envelope
    recipients only, marked ``incomplete`` so the notice says the mail was not summarised.
    Reads nothing of the mail's content."""
    recipients = tuple(
        RecipientInfo(r, r, "bcc", org.is_internal(r)) for r in dict.fromkeys(rcpts)
    )[:MAX_LIST]
    return HoldSummary(
        subject=subject,
        recipients=recipients,
        sender_name=sender_name,
        extra={"incomplete": "1"},
    )


# --------------------------------------------------------------------------- encode


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "detector": f.detector,
        "fact": f.fact,
        "addresses": list(f.addresses),
        "detail": f.detail,
        "evidence": {str(k): str(v) for k, v in f.evidence.items()},
    }


def _rule(r: RuleMatch) -> dict[str, Any]:
    return {
        "rule_id": r.rule_id,
        "action": str(r.action),
        "reason": {"ja": r.reason.ja, "en": r.reason.en},
        "mode": r.mode,
        "approval": r.approval,
        "delay_seconds": r.delay_seconds,
        "findings": [_finding(f) for f in r.findings],
    }


def verdict_to_dict(v: Verdict) -> dict[str, Any]:
    return {
        "action": str(v.action),
        "rules": [_rule(r) for r in v.rules],
        "audit_rules": [_rule(r) for r in v.audit_rules],
        "facts": {str(k): int(n) for k, n in v.facts.items()},
        "findings": [_finding(f) for f in v.findings],
        "offer_bcc": v.offer_bcc,
        "approval": v.approval,
        "delay_seconds": v.delay_seconds,
        "policy_version": v.policy_version,
    }


def summary_to_dict(s: HoldSummary) -> dict[str, Any]:
    return {
        "subject": s.subject,
        "from_display": s.from_display,
        "recipients": [[r.addr, r.display, r.field, r.internal] for r in s.recipients],
        "first_lines": list(s.first_lines),
        "attachments": [[a.filename, a.content_type, a.size] for a in s.attachments],
        "has_html": s.has_html,
        "sender_name": s.sender_name,
        "extra": dict(s.extra),
    }


def encode(verdict: Verdict, summary: HoldSummary) -> str:
    return json.dumps(
        {
            "v": FORMAT_VERSION,
            "verdict": verdict_to_dict(verdict),
            "summary": summary_to_dict(summary),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


# --------------------------------------------------------------------------- decode


def _s(v: Any, default: str = "") -> str:
    return v if isinstance(v, str) else default


def _action(v: Any) -> Action:
    try:
        return Action(_s(v, "hold"))
    except ValueError:
        return Action.HOLD


def _finding_from(d: Any) -> Finding | None:
    if not isinstance(d, dict):
        return None
    ev = d.get("evidence")
    return Finding(
        detector=_s(d.get("detector")),
        fact=_s(d.get("fact")),
        addresses=tuple(_s(a) for a in d.get("addresses") or () if isinstance(a, str)),
        detail=_s(d.get("detail")),
        evidence={str(k): str(v) for k, v in ev.items()} if isinstance(ev, dict) else {},
    )


def _findings(items: Any) -> tuple[Finding, ...]:
    if not isinstance(items, list):
        return ()
    return tuple(f for f in (_finding_from(i) for i in items) if f is not None)


def _int_or_none(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _rule_from(d: Any) -> RuleMatch | None:
    if not isinstance(d, dict):
        return None
    reason = d.get("reason") if isinstance(d.get("reason"), dict) else {}
    assert isinstance(reason, dict)
    mode: Literal["enforce", "audit"] = "audit" if d.get("mode") == "audit" else "enforce"
    return RuleMatch(
        rule_id=_s(d.get("rule_id"), "?"),
        action=_action(d.get("action")),
        reason=Localized(ja=_s(reason.get("ja")), en=_s(reason.get("en"))),
        mode=mode,
        approval=d.get("approval") if isinstance(d.get("approval"), str) else None,
        delay_seconds=_int_or_none(d.get("delay_seconds")),
        findings=_findings(d.get("findings")),
    )


def _rules(items: Any) -> tuple[RuleMatch, ...]:
    if not isinstance(items, list):
        return ()
    return tuple(r for r in (_rule_from(i) for i in items) if r is not None)


def verdict_from_dict(d: Mapping[str, Any]) -> Verdict:
    facts = d.get("facts")
    return Verdict(
        action=_action(d.get("action")),
        rules=_rules(d.get("rules")),
        audit_rules=_rules(d.get("audit_rules")),
        facts={str(k): int(v) for k, v in facts.items() if isinstance(v, int)}
        if isinstance(facts, dict)
        else {},
        findings=_findings(d.get("findings")),
        offer_bcc=bool(d.get("offer_bcc")),
        approval=d.get("approval") if isinstance(d.get("approval"), str) else None,
        delay_seconds=_int_or_none(d.get("delay_seconds")),
        policy_version=_s(d.get("policy_version")),
    )


def summary_from_dict(d: Mapping[str, Any]) -> HoldSummary:
    recipients: list[RecipientInfo] = []
    for r in d.get("recipients") or ():
        if isinstance(r, list) and len(r) == 4:
            recipients.append(RecipientInfo(_s(r[0]), _s(r[1]), _s(r[2]), bool(r[3])))
    attachments: list[AttachmentInfo] = []
    for a in d.get("attachments") or ():
        if isinstance(a, list) and len(a) == 3:
            size = a[2] if isinstance(a[2], int) else 0
            attachments.append(AttachmentInfo(_s(a[0]), _s(a[1]), size))
    extra = d.get("extra")
    return HoldSummary(
        subject=_s(d.get("subject")),
        from_display=_s(d.get("from_display")),
        recipients=tuple(recipients),
        first_lines=tuple(_s(x) for x in d.get("first_lines") or () if isinstance(x, str)),
        attachments=tuple(attachments),
        has_html=bool(d.get("has_html")),
        sender_name=_s(d.get("sender_name")),
        extra={str(k): str(v) for k, v in extra.items()} if isinstance(extra, dict) else {},
    )


def decode(text: str) -> tuple[Verdict, HoldSummary]:
    """Verdict and summary from ``verdict_json``; a damaged record decodes to empty parts."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    v = data.get("verdict")
    s = data.get("summary")
    verdict = verdict_from_dict(v if isinstance(v, dict) else {})
    summary = summary_from_dict(s if isinstance(s, dict) else {})
    return verdict, summary


def clean_subject(subject: str, limit: int = 300) -> str:
    """A subject fit for a database column and a log line: one line, bounded, and any
    identifier in it (10+ digits) masked to its last four digits."""
    s = redact_text(" ".join(subject.replace("\x00", "").split()))
    return s if len(s) <= limit else s[: limit - 1] + "…"
