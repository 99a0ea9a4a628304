"""The author-hint check before quote analysis (``quotes._author_hint``) gives the same
answer as the regular expression it stands for, in linear time (issue 11: the expression
was most of the CPU of a 500 KB mail)."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from leakguard.message.quotes import _AUTHOR_HINT_RE, _author_hint

_PIECES = st.sampled_from(
    [
        "wrote", "WROTE", "Wrote:", " wrote :", "書きました：", "のメール:", "のメッセージ：",
        "schrieb:", "a écrit :", "A ÉCRIT:", "From:", "FROM :", "差出人：", "差出人 :",
        "> ", ">", "＞", " ", "\t", "\n", "\r\n", ":", "：", "x", "本文", "é", "É",
        "ſchrieb:", "İ", "ı", "a" * 150, "b" * 60, "\ud800",
    ]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECES, max_size=14).map("".join))
def test_same_answer_as_the_expression(text: str) -> None:
    assert _author_hint(text) == (_AUTHOR_HINT_RE.search(text) is not None)


def test_known_lines() -> None:
    assert _author_hint("本文\n> 2026/11/30 山田 wrote:\n> x")
    assert _author_hint("x\n差出人： 山田")
    assert not _author_hint("x\nThe mail from the office arrived\n")
    assert not _author_hint("a" * 250 + " wrote:")  # the name part is at most 200 characters


def test_linear_on_a_big_part_without_the_words() -> None:
    text = ("来年度の予算要求について、各課の取りまとめ状況を確認しています。\n" * 10000)[:300_000]
    t0 = time.process_time()
    assert not _author_hint(text)
    took = time.process_time() - t0
    t0 = time.process_time()
    assert _AUTHOR_HINT_RE.search(text) is None
    old = time.process_time() - t0
    assert took < old / 3, (took, old)
