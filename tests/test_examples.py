"""Every example mail gets the action the README table promises (default policy)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from leakguard.engine import Engine
from leakguard.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]
POLICY = load_policy(ROOT / "policies" / "default.yaml")
CASES = POLICY.spec.tests
ENGINE = Engine(POLICY)


def test_every_example_is_a_case_and_in_the_readme() -> None:
    table = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    files = {p.name for p in (ROOT / "examples").glob("*.eml")}
    cases = {Path(c.mail).name for c in CASES}
    assert files == cases
    rows = dict(re.findall(r"^\| \[`([^`]+)`\].*?\| \*\*(\w+)\*\* \|", table, re.M))
    assert rows == {Path(c.mail).name: c.expect for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[Path(c.mail).name for c in CASES])
def test_example_action(case) -> None:  # type: ignore[no-untyped-def]
    raw = (ROOT / "policies" / case.mail).resolve().read_bytes()
    d = ENGINE.decide(raw, envelope_from=case.sender, rcpts=case.rcpt)
    detail = [(f.fact, f.addresses, dict(f.evidence)) for f in d.verdict.findings]
    assert d.verdict.action.value == case.expect, detail
    for rule in case.rules or []:
        assert rule in d.verdict.rule_ids, detail
