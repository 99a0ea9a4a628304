"""The quoted-third-party check stays linear in recipients x quoted addresses (issue 12
mass fuzz: a reply of 6,100 quoted attributions to 1,600 recipients took 20-29 s, most of
it recomputing ``Address.key`` for every recipient once per quoted address)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leakguard.engine import Engine
from leakguard.policy import load_policy
from leakguard.types import Address

ROOT = Path(__file__).resolve().parents[1]
RCPTS, QUOTED = 1600, 6000


def _bomb() -> bytes:
    return (
        b"From: a@city.example.lg.jp\r\nTo: "
        + b", ".join(b"user%d@org%d.example" % (i, i % 97) for i in range(RCPTS))
        + b"\r\nSubject: s\r\n\r\n"
        + b"".join(b"> On Mon, X <x%d@y%d.example> wrote:\r\n" % (i, i % 89) for i in range(QUOTED))
    )


def test_recipient_keys_are_not_recomputed_per_quoted_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = Engine(load_policy(ROOT / "policies" / "default.yaml"))
    calls = 0
    real = Address.key

    def counting(self: Address) -> str:
        nonlocal calls
        calls += 1
        return real.fget(self)  # type: ignore[attr-defined,no-any-return]

    monkeypatch.setattr(Address, "key", property(counting))
    decision = engine.decide(
        _bomb(), envelope_from="a@city.example.lg.jp", rcpts=["info@company01.example"]
    )
    assert decision.verdict.rule_ids  # the bomb is still found out
    # recipients x quoted addresses would be 9.6 million; linear work is a few hundred thousand
    assert calls < RCPTS * QUOTED // 10, calls
