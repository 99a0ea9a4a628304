"""Recipients and organisations: who can see whom, and who is new.

Facts: ``visible_external_recipients``, ``visible_external_organizations``,
``exposed_external_organizations`` (the same, but 0 when every visible external recipient
already took part together in a quoted message of the thread: a reply-all exposes nobody),
``external_recipients``, ``external_organizations``, ``first_time_external_recipients``,
``recipients``, ``message_size``. (``attachments`` is counted by the attachments detector.)
"""

from __future__ import annotations

from leakguard.detectors import DetectorResult
from leakguard.organization import Context
from leakguard.types import Address, Finding, Message


def is_external(addr: Address, ctx: Context) -> bool:
    """External: has a domain, is not internal, not a configured mailing list and not the
    sender's own outside mailbox (``ctx.sender_aliases``)."""
    return (
        bool(addr.domain)
        and not ctx.org.is_internal(addr)
        and not ctx.org.is_mailing_list(addr)
        and addr.key not in ctx.sender_aliases
    )


def envelope_recipients(msg: Message) -> tuple[Address, ...]:
    """The envelope recipients, or (no envelope) every header recipient."""
    if msg.envelope_rcpts:
        return msg.envelope_rcpts
    seen: set[str] = set()
    out: list[Address] = []
    for a in (*msg.to, *msg.cc, *msg.bcc):
        if a.domain and a.key not in seen:
            seen.add(a.key)
            out.append(a)
    return tuple(out)


def already_acquainted(msg: Message, visible_ext: list[Address]) -> bool:
    """True when every visible external recipient took part, together, in one quoted
    message (its From/To/Cc): a reply-all among people who have already seen each other's
    addresses exposes nobody new."""
    if len(visible_ext) < 2:
        return False
    keys = {a.key for a in visible_ext}
    for block in msg.quoted_blocks:
        if not block.participants_known:
            continue
        if keys <= {p.key for p in block.participants}:
            return True
    return False


def detect(msg: Message, ctx: Context) -> DetectorResult:
    visible_ext = [a for a in msg.visible_recipients if is_external(a, ctx)]
    visible_orgs = sorted({ctx.org.organization_of(a.domain) for a in visible_ext})
    acquainted = already_acquainted(msg, visible_ext)
    rcpts = envelope_recipients(msg)
    ext = [a for a in rcpts if is_external(a, ctx)]
    ext_orgs = sorted({ctx.org.organization_of(a.domain) for a in ext})
    findings: list[Finding] = []
    if visible_ext:
        findings.append(
            Finding(
                detector="recipients",
                fact="visible_external_recipients",
                addresses=tuple(a.addr for a in visible_ext),
                detail=f"{len(visible_ext)} external address(es) visible in To/Cc",
                evidence={"count": str(len(visible_ext))},
            )
        )
    if len(visible_orgs) >= 2:
        findings.append(
            Finding(
                detector="recipients",
                fact="visible_external_organizations",
                addresses=tuple(a.addr for a in visible_ext),
                detail=(
                    f"{len(visible_orgs)} external organisations can see each other: "
                    + ", ".join(visible_orgs)
                ),
                evidence={
                    "organizations": ", ".join(visible_orgs),
                    "already_acquainted": "yes" if acquainted else "no",
                },
            )
        )
    first_time: list[Address] = []
    if ctx.history.known:
        first_time = [a for a in ext if a.key not in ctx.history.recipients]
        if first_time:
            findings.append(
                Finding(
                    detector="recipients",
                    fact="first_time_external_recipients",
                    addresses=tuple(a.addr for a in first_time),
                    detail=f"{len(first_time)} external recipient(s) never written to before",
                )
            )
    own = sorted({a.key for a in (*rcpts, *msg.visible_recipients) if a.key in ctx.sender_aliases})
    if own:
        findings.append(
            Finding(
                detector="recipients",
                fact="own_external_addresses",
                addresses=tuple(own),
                detail=f"{len(own)} recipient(s) look like the sender's own outside mailbox",
            )
        )
    if msg.uninspected_parts:
        findings.append(
            Finding(
                detector="recipients",
                fact="uninspected_parts",
                addresses=(),
                detail=(
                    f"{msg.uninspected_parts} part(s) too large, too many or too deeply nested "
                    "to be checked"
                ),
                evidence={"defects": "; ".join(msg.defects[:5])},
            )
        )
    facts = {
        "own_external_addresses": len(own),
        "visible_external_recipients": len(visible_ext),
        "visible_external_organizations": len(visible_orgs),
        "exposed_external_organizations": 0 if acquainted else len(visible_orgs),
        "external_recipients": len(ext),
        "external_organizations": len(ext_orgs),
        "first_time_external_recipients": len(first_time),
        "recipients": len(rcpts),
        "uninspected_parts": msg.uninspected_parts,
        "message_size": msg.size,
    }
    return DetectorResult(facts=facts, findings=tuple(findings))
