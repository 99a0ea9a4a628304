"""Detectors: pure functions ``Message + Context -> DetectorResult``. No I/O here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from leakguard.organization import Context
from leakguard.types import Finding, Message


@dataclass(frozen=True, slots=True)
class DetectorResult:
    facts: Mapping[str, int] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()


Detector = Callable[[Message, Context], DetectorResult]
