"""The quoted-third-party check stays linear in recipients x quoted addresses (issue 12
mass fuzz: a reply of 6,100 quoted attributions to 1,600 recipients took 20-29 s, most of
it recomputing ``Address.key`` for every recipient once per quoted address)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

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


def test_recipient_keys_are_not_recomputed_per_quoted_address() -> None:
    """``Address.key`` and ``addr`` are stored when the address is made (fields, not
    properties): reading them for every recipient once per quoted address costs an
    attribute read, not a string built and lower-cased each time (the 20 s of the bomb)."""
    stored = {f.name for f in dataclasses.fields(Address)}
    assert {"key", "addr"} <= stored
    a = Address("Foo.Bar", "example.jp")
    assert (a.addr, a.key) == ("Foo.Bar@example.jp", "foo.bar@example.jp")
    assert dataclasses.replace(a, local="X").key == "x@example.jp"  # recomputed on change
    assert a == Address("Foo.Bar", "example.jp") and hash(a) == hash(
        Address("Foo.Bar", "example.jp")
    )
    engine = Engine(load_policy(ROOT / "policies" / "default.yaml"))
    decision = engine.decide(
        _bomb(), envelope_from="a@city.example.lg.jp", rcpts=["info@company01.example"]
    )
    assert decision.verdict.rule_ids  # the bomb is still found out
