"""Run every detector once and merge their facts and findings."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence

from leakguard.detectors import Detector, DetectorResult
from leakguard.detectors.names import sender_aliases
from leakguard.organization import Context
from leakguard.types import Finding, Message

# Order only affects the order of findings in reports.
DETECTOR_MODULES: tuple[str, ...] = ("recipients", "threads", "names", "lookalike")


def _load(names: Sequence[str]) -> tuple[Detector, ...]:
    out: list[Detector] = []
    for name in names:
        module = importlib.import_module(f"leakguard.detectors.{name}")
        out.append(module.detect)
    return tuple(out)


_DETECTORS: tuple[Detector, ...] | None = None


def detectors() -> tuple[Detector, ...]:
    global _DETECTORS
    if _DETECTORS is None:
        _DETECTORS = _load(DETECTOR_MODULES)
    return _DETECTORS


def run_detectors(msg: Message, ctx: Context) -> tuple[dict[str, int], tuple[Finding, ...]]:
    # Who is who first: a recipient that is the sender's own outside mailbox is the sender
    # for every detector (not a colleague look-alike, not news to anyone, not an organisation).
    aliases = sender_aliases(msg, ctx)
    if aliases:
        ctx = dataclasses.replace(ctx, sender_aliases=aliases)
    facts: dict[str, int] = {}
    findings: list[Finding] = []
    for detect in detectors():
        result: DetectorResult = detect(msg, ctx)
        facts.update(result.facts)
        findings.extend(result.findings)
    return facts, tuple(findings)
