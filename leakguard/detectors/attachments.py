"""Attachments: how many, and which could not be read (issue 7).

Facts:

- ``attachments``: files attached to the mail (MIME parts with a file or a message inside;
  a calendar invitation's own ``text/calendar`` alternative is the invitation, not a file);
- ``encrypted_attachments``: attachments (or ZIP members) that are password-protected;
- ``unreadable_attachments``: attachments without a text layer (scans, images, legacy
  binary formats): what they show cannot be checked;
- ``external_attachments``: the attachments, when at least one recipient is external
  (0 otherwise), so a policy can scope any attachment rule to mail that leaves.

Attachments that could not be read within the budgets are counted by the parser and the
extractors in ``Message.uninspected_parts`` (the recipients detector reports that fact);
this detector adds one finding per such attachment, naming it.
"""

from __future__ import annotations

import re

from leakguard.detectors import DetectorResult
from leakguard.detectors.recipients import envelope_recipients, is_external
from leakguard.extract.formats import is_inline_decoration
from leakguard.organization import Context
from leakguard.types import Attachment, AttachmentContent, Finding, Message

_STATUS_FACT = {
    "encrypted": "encrypted_attachments",
    "unreadable": "unreadable_attachments",
    "uninspected": "uninspected_parts",
}


def _is_file(att: Attachment, raw: bytes) -> bool:
    """A file the sender attached: not a calendar invitation's own text/calendar part, not
    a body text part the parser set aside only because it was too large to read, not a
    small inline image of the HTML body (a logo in a signature)."""
    if is_inline_decoration(att, raw):
        return False
    if att.filename or att.disposition == "attachment":
        return True
    return att.content_type not in ("text/calendar", "text/plain", "text/html")


def _inside_encrypted(name: str, contents: tuple[AttachmentContent, ...]) -> bool:
    """Whether an entry sits in a container that is itself counted as encrypted."""
    return any(c.status == "encrypted" and name.startswith(c.name + "/") for c in contents)


_LONG_DIGITS_RE = re.compile(r"\d{10,}")


def mask_digits(text: str) -> str:
    """File names may carry an identifier (a My Number, a card number): runs of ten or more
    digits are shown with only their first and last four digits."""
    return _LONG_DIGITS_RE.sub(lambda m: m[0][:4] + "*" * (len(m[0]) - 8) + m[0][-4:], text)


def detect(msg: Message, ctx: Context) -> DetectorResult:
    n_files = sum(1 for a in msg.attachments if _is_file(a, msg.raw))
    external = [a.addr for a in envelope_recipients(msg) if is_external(a, ctx)]
    findings: list[Finding] = []
    counts = {"encrypted_attachments": 0, "unreadable_attachments": 0}
    for c in msg.contents:
        fact = _STATUS_FACT.get(c.status)
        if fact is None:
            continue
        # A password-protected ZIP and what is inside it are one attachment to the person
        # who sent it: an entry counts unless its container is already counted as encrypted.
        if fact in counts and not _inside_encrypted(c.name, msg.contents):
            counts[fact] += 1
        name = mask_digits(c.name)
        reason = mask_digits(c.detail[:200])
        findings.append(
            Finding(
                detector="attachments",
                fact=fact,
                addresses=(),
                detail=f"attachment {name!r} ({c.kind}) is {c.status}: {reason}"[:300],
                evidence={"attachment": name, "kind": c.kind, "status": c.status, "reason": reason},
            )
        )
    if external and n_files:
        findings.append(
            Finding(
                detector="attachments",
                fact="external_attachments",
                addresses=tuple(external),
                detail=f"{n_files} attachment(s) in a mail to external recipients",
                evidence={"count": str(n_files)},
            )
        )
    facts = {
        "attachments": n_files,
        "external_attachments": n_files if external else 0,
        **counts,
    }
    return DetectorResult(facts=facts, findings=tuple(findings))
