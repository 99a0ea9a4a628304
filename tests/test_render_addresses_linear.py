"""The review page's address markup finds what its expression found, in linear time (mass
fuzz: the expression took 1 s on a 20,000-character display name without ``@``)."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from leakguard.web.render import _ADDR, address_spans

_PIECES = st.sampled_from(
    ["a", "b.c", "@", "@@", " ", "\u3000", "\xa0", "<", ">", "(", ",", ";", ":", '"', "'",
     "[", "]", "田中", "x@y", "\t", "\n", "-", "_"]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECES, max_size=20).map("".join))
def test_same_spans_as_the_expression(text: str) -> None:
    assert address_spans(text) == [m.span() for m in _ADDR.finditer(text)]


def test_linear_on_a_long_name_without_at() -> None:
    text = "a" * 20_000 + " x@y.jp"
    t0 = time.process_time()
    for _ in range(10):
        assert address_spans(text) == [(20_001, 20_007)]
    assert (time.process_time() - t0) / 10 < 0.05
