"""Run every detector once and merge their facts and findings."""

from __future__ import annotations

import dataclasses

from leakguard.detectors import (
    Detector,
    DetectorResult,
    addressee,
    attachments,
    lookalike,
    names,
    personal,
    recipients,
    threads,
)
from leakguard.organization import Context
from leakguard.types import Finding, Message

# Order only affects the order of findings in reports.
DETECTORS: tuple[Detector, ...] = (
    recipients.detect,
    threads.detect,
    names.detect,
    lookalike.detect,
    attachments.detect,
    personal.detect,
    addressee.detect,
)


def run_detectors(msg: Message, ctx: Context) -> tuple[dict[str, int], tuple[Finding, ...]]:
    # Who is who first: a recipient that is the sender's own outside mailbox is the sender
    # for every detector (not a colleague look-alike, not news to anyone, not an organisation).
    aliases = names.sender_aliases(msg, ctx)
    if aliases:
        ctx = dataclasses.replace(ctx, sender_aliases=aliases)
    facts: dict[str, int] = {}
    findings: list[Finding] = []
    for detect in DETECTORS:
        result: DetectorResult = detect(msg, ctx)
        # Several detectors may count towards one fact (addressee mismatches come from
        # greetings and from a form's data subject): counts add up.
        for name, value in result.facts.items():
            facts[name] = facts.get(name, 0) + value
        findings.extend(result.findings)
    return facts, tuple(findings)
