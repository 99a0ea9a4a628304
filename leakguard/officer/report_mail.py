"""Reports by mail (issue 9): a mail sent or forwarded through the relay to
``incidents.report_address`` reports the mail it forwards, attaches or answers.

The relay hands such a transaction to ``handle_report_mail`` instead of deciding it (as it
does for hold reply commands); it is never relayed anywhere. The reporter is whoever the
relay accepted it from: the SMTP AUTH user, or the envelope sender of a trusted client.
The reported mail is found, in this order, by the Message-ID of an attached message
(message/rfc822), a ``Message-ID:`` line of an inline forward, the report's In-Reply-To and
References, and, failing those, the newest journal row of the reporter within the lookback
whose (redacted) subject is the forwarded subject. Only the reporter's own mail is ever
matched, so a report reveals nothing about anyone else's.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import quopri
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from typing import TYPE_CHECKING

from leakguard import budget, stepproc
from leakguard.holds.notice import NOTICE_HEADER
from leakguard.masking import mask_identifiers, redact_text
from leakguard.officer.texts import t
from leakguard.store.journal import DecisionEntry

if TYPE_CHECKING:
    from leakguard.officer.incidents import IncidentService

MAX_PARTS = 60
MAX_IDS = 20
MAX_TEXT = 200_000
_MID_LINE = re.compile(r"^[> \t]*Message-ID:[ \t]*(<[^<>\s]{1,300}>)", re.IGNORECASE | re.MULTILINE)
_MID = re.compile(r"<[^<>\s]{1,300}>")
_PREFIX = re.compile(
    r"^\s*(?:(?:fwd?|fw|re|aw|tr|wg|転送|返信|ＦＷ|ＲＥ)\s*(?:\[\d+\])?\s*[:：]\s*)+", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class ReportReading:
    """What a report mail says: candidate Message-IDs and subjects, the reporter's note."""

    automatic: bool
    message_ids: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    note: str = ""


def strip_prefixes(subject: str) -> str:
    """``Fwd: RE: 見積`` -> ``見積``."""
    return _PREFIX.sub("", subject).strip()


def _norm_subject(s: str) -> str:
    return " ".join(redact_text(strip_prefixes(s)).split()).casefold()


def _text_of(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return ""
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload[:MAX_TEXT].decode(charset, "replace")
    except LookupError:
        return payload[:MAX_TEXT].decode("utf-8", "replace")


def read_report(raw: bytes) -> ReportReading:
    """Read a report mail (hostile input: bounded; call off the event loop)."""
    msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    auto = (msg.get("Auto-Submitted") or "").strip().lower()
    prec = (msg.get("Precedence") or "").strip().lower()
    if (auto and not auto.startswith("no")) or msg.get(NOTICE_HEADER) is not None:
        return ReportReading(automatic=True)
    if prec in ("bulk", "junk", "list", "auto_reply"):
        return ReportReading(automatic=True)
    ids: list[str] = []
    subjects: list[str] = []
    note = ""
    for i, part in enumerate(msg.walk()):
        if i >= MAX_PARTS:
            break
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            for m in _attached(part):
                if isinstance(m, Message):
                    mid = _MID.search(str(m.get("Message-ID") or ""))
                    if mid:
                        ids.append(mid.group(0))
                    if m.get("Subject"):
                        subjects.append(_decoded(str(m.get("Subject"))))
        elif ctype == "text/plain" and part.get_content_disposition() != "attachment":
            text = _text_of(part)
            ids += [m.group(1) for m in _MID_LINE.finditer(text)][:MAX_IDS]
            if not note:
                note = _first_lines(text)
    for h in ("In-Reply-To", "References"):
        found = _MID.findall(str(msg.get(h) or ""))
        ids += list(reversed(found))[:MAX_IDS]
    if msg.get("Subject"):
        subjects.append(_decoded(str(msg.get("Subject"))))
    return ReportReading(
        automatic=False,
        message_ids=tuple(dict.fromkeys(ids))[:MAX_IDS],
        subjects=tuple(dict.fromkeys(s for s in subjects if strip_prefixes(s)))[:5],
        note=note,
    )


def _attached(part: Message) -> list[Message]:
    """The messages a message/rfc822 part carries. Some clients (and swaks) send it
    base64 or quoted-printable encoded, which RFC 2046 forbids and the parser does not
    undo: the headers of such a message are read from the decoded bytes."""
    inner = part.get_payload()
    msgs = [
        m for m in (inner if isinstance(inner, list) else [inner])[:5] if isinstance(m, Message)
    ]
    cte = str(part.get("Content-Transfer-Encoding") or "").strip().lower()
    if cte not in ("base64", "quoted-printable") or len(msgs) != 1 or msgs[0].keys():
        return msgs
    body = msgs[0].get_payload()
    if not isinstance(body, str):
        return msgs
    data = body[: MAX_TEXT * 2].encode("ascii", "replace")
    try:
        raw = base64.b64decode(data) if cte == "base64" else quopri.decodestring(data)
    except (binascii.Error, ValueError):
        return msgs
    return [BytesParser(policy=email.policy.default).parsebytes(raw[:MAX_TEXT], headersonly=True)]


def _decoded(value: str) -> str:
    from email.header import decode_header, make_header

    if any("\udc80" <= c <= "\udcff" for c in value):  # raw UTF-8 (SMTPUTF8) header bytes
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    try:
        return str(make_header(decode_header(value)))[:1000]
    except Exception:
        return value[:1000]


def _first_lines(text: str) -> str:
    """The reporter's own words above a quote or forward, masked and bounded."""
    out: list[str] = []
    for line in text[:4000].splitlines():
        s = line.strip()
        if s.startswith(">") or s.lower().startswith(("-----", "from:", "差出人:", "message-id:")):
            break
        if s:
            out.append(s)
        if len(out) >= 6:
            break
    return mask_identifiers(" ".join(out))[:500]


async def find_reported(
    service: IncidentService, reading: ReportReading, identities: frozenset[str]
) -> DecisionEntry | None:
    """The reporter's own journal row the report names (see the module docstring)."""
    j = service.store.journal

    def own(d: DecisionEntry) -> bool:
        return bool({d.sender.lower(), (d.auth_user or "").lower()} & identities)

    def best(rows: list[DecisionEntry]) -> DecisionEntry | None:
        # newest first; a copy that went out beats one that was held or refused (the same
        # mail sent again after a hold, say): what went out is what is being reported
        mine = [d for d in rows if own(d)]
        sent = [d for d in mine if d.outcome in ("sent", "sent_bcc")]
        pick = sent or mine
        return pick[0] if pick else None

    for mid in reading.message_ids:
        core = mid.strip("<>")
        for candidate in (f"<{core}>", core):
            found = best(await j.find(message_id=candidate, limit=50))
            if found is not None:
                return found
    wanted = {_norm_subject(s) for s in reading.subjects} - {""}
    if not wanted:
        return None
    since = service.now() - service.lookback
    for who in sorted(identities):
        rows = await j.find(sender=who, since=since, limit=500)
        found = best([d for d in rows if _norm_subject(d.subject) in wanted])
        if found is not None:
            return found
    return None


async def handle_report_mail(
    service: IncidentService, *, raw: bytes, mail_from: str, auth_user: str | None
) -> str:
    """File the report a mail makes and answer the reporter; the SMTP reply line."""
    try:  # hostile input: a worker process of the report step, within its budget (issue 12)
        reading = await stepproc.report_mail(raw)
    except budget.BudgetExceeded:  # fail closed: nothing found, the reporter is told so
        reading = ReportReading(automatic=False)
    if reading.automatic or not mail_from:
        service.log.info("incident.report_mail", result="ignored", mail_from=mail_from)
        return "250 2.0.0 Automatic message ignored"
    identity = (auth_user or mail_from).strip()
    identities = frozenset(x.strip().lower() for x in (mail_from, auth_user or "") if x.strip())
    found = await find_reported(service, reading, identities)
    lang = service.lang_for(identity)
    if found is None:
        service.log.info(
            "incident.report_mail",
            result="not_found",
            mail_from=mail_from,
            auth_user=auth_user,
            ids=len(reading.message_ids),
        )
        await _answer(service, mail_from, "subj.not_found", "mail.not_found", lang, {})
        return "250 2.0.0 Report not matched, see the reply mail"
    from leakguard.officer.incidents import ReportRefused

    # The reporter as the mail knows them: the AUTH user, or else the envelope sender the
    # relay let them use (a shared mailbox they may send as).
    own = {found.sender.lower(), (found.auth_user or "").lower()}
    actor = next((x for x in (auth_user, mail_from) if x and x.strip().lower() in own), identity)
    try:
        incident = await service.report(
            decision_id=found.id, actor=actor, via="reply", note=reading.note
        )
    except ReportRefused as exc:
        service.log.info("incident.report_mail", result=exc.code, mail_from=mail_from)
        await _answer(service, mail_from, "subj.not_found", f"mail.{exc.code}", lang, {})
        return "250 2.0.0 Report refused, see the reply mail"
    service.log.info(
        "incident.report_mail",
        result="filed",
        incident_id=incident.id,
        decision_id=found.id,
        mail_from=mail_from,
        auth_user=auth_user,
    )
    await _answer(service, mail_from, "subj.confirm", "mail.confirm", lang, {"id": incident.id})
    return f"250 2.0.0 Report received as {incident.id}"


async def _answer(
    service: IncidentService, to: str, subject: str, body: str, lang: str, fields: dict[str, str]
) -> None:
    """A short confirmation in the reporter's language, then the other one; queued."""
    from leakguard.officer.incidents import _plain_mail

    other = "en" if lang == "ja" else "ja"
    text = "\n".join(
        [
            t(body, lang, **fields),
            "",
            "-" * 40,
            "",
            t(body, other, **fields),
            "",
            "--",
            t("mail.auto", lang),
            "",
        ]
    )
    raw = _plain_mail(
        service.notice_from, to, t(subject, lang, **fields), text, lang, "report_result"
    )
    await service.store.enqueue_delivery(raw, service.notice_from, [to], kind="notice")
