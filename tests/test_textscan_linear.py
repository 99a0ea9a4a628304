"""Long texts are searched in windows, so the GIL is handed over (issue 12 mass fuzz: a
folded header bomb in a body, 1.7 MB of ``\\tc@d.example,`` lines, was one regular
expression search of 147 ms in ``detectors.forms``, with the GIL held: an event-loop
stall in the relay; the column labels of ``detectors.personal`` took 111 ms on 4 MB).
``textscan.finditer_lines`` gives exactly what ``finditer`` gives, checked with hypothesis
on the patterns it is used with and on patterns at its limits."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leakguard.detectors import forms, personal
from leakguard.textscan import WINDOW, finditer_lines


def _spans(ms: Any) -> list[tuple[int, int, tuple[str | None, ...]]]:
    return [(m.start(), m.end(), m.groups()) for m in ms]


# patterns within the rule (matches and lookarounds stay within a line): the forms one,
# and ones with the edge cases: empty matches, ^ and $ in MULTILINE, \A, \b, lookbehind,
# a match ending with its newline
PATTERNS = [
    forms._FIELD_RE,
    personal._SECTION_LABEL_RE,
    re.compile(r"^", re.M),
    re.compile(r"$", re.M),
    re.compile(r"^$", re.M),
    re.compile(r"\Aa+"),
    re.compile(r"\bab\b|(?<=b)a"),
    re.compile(r"[^\n]*\n"),
    re.compile(r"a*"),
    re.compile(r"^[ \t]*(?P<k>氏名|name)[:：]?(?P<v>[^\n]*)$", re.M | re.I),
]
PIECES = st.sampled_from(
    ["\n", "\n\n", "a", "b", "ab", " ", "\t", ":", "氏名", "Name", "NAME: x", "1. ",
     "個人番号", "カード", "My", "Number", "口座番号 1234567",
     "【氏名】", "住所：東京都", "電話 03-1234-5678", "(カナ)", "|", "c@d.example,"]
)  # fmt: skip


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(PIECES, max_size=60).map("".join), st.integers(1, 12))
def test_the_same_matches_as_finditer(text: str, window: int) -> None:
    for pattern in PATTERNS:
        assert _spans(finditer_lines(pattern, text, window)) == _spans(pattern.finditer(text)), (
            pattern.pattern
        )


FORM_LINES = st.sampled_from(
    ["氏名:山田 太郎\n", "住所:東京都新宿区西新宿2-8-1\n", "電話番号:090-1234-5678\n",
     "生年月日:1980年1月2日\n", "メール:taro@example.jp\n", "Name: Taro Yamada\n",
     "\n", "\n\n\n\n", "\tc@d.example,\n", "x", "氏名", "性別:男\n", "年齢:44\n"]
)  # fmt: skip


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(st.one_of(FORM_LINES, FORM_LINES, FORM_LINES, PIECES), max_size=80).map("".join))
def test_find_forms_finds_what_it_found(text: str) -> None:
    # the detector over many small windows, against the detector with the old single scan
    # (find_forms reads NFKC text: ASCII colons)
    scan = forms.finditer_lines
    try:
        forms.finditer_lines = lambda p, t: scan(p, t, 16)  # type: ignore[assignment]
        new = forms.find_forms(text)
        forms.finditer_lines = lambda p, t: p.finditer(t)  # type: ignore[assignment]
        old = forms.find_forms(text)
    finally:
        forms.finditer_lines = scan  # type: ignore[assignment]
    assert new == old


class _Recording:
    """A pattern that records how much text each search may cover."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.spans: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pattern, name)

    def finditer(self, text: str, pos: int = 0, endpos: int = 2**62) -> Any:
        self.spans.append(min(endpos, len(text)) - pos)
        return self.pattern.finditer(text, pos, endpos)


def test_a_long_text_is_searched_in_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    # the fuzz case's text: a folded header bomb (with a name label, so the scan runs)
    text = "氏名: 山田\n" + "\tc@d.example,\n" * 120_000
    rec = _Recording(forms._FIELD_RE)
    monkeypatch.setattr(forms, "_FIELD_RE", rec)
    forms.find_forms(text)
    assert rec.spans, "the fields were not searched"
    # before: one search over the whole 1.7 MB text
    assert max(rec.spans) <= WINDOW + len("\tc@d.example,\n")
    assert sum(rec.spans) == len(text)


def test_column_labels_of_a_long_text_are_searched_in_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = "個人番号 氏名\n" + "1234 5678 9012\n" * 250_000 + "口座番号\n"
    rec = _Recording(personal._SECTION_LABEL_RE)
    monkeypatch.setattr(personal, "_SECTION_LABEL_RE", rec)
    lines = personal._Lines(text)
    assert lines.section_labels(len("個人番号 氏名\n") + 3) == "個人番号"
    assert max(rec.spans) <= WINDOW + len("1234 5678 9012\n")  # before: all 3.7 MB at once
    assert sum(rec.spans) == len(text)


OLD_CELL_SPLIT = re.compile(r"\s*[,\t|]\s*")
CELL_PIECES = st.sampled_from(
    [" ", "\t", ",", "|", "a", "氏名", "\u3000", "\n", "\x0b", " \t ", ", ", " |", "\t\t", "x y"]
)


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(st.lists(CELL_PIECES, max_size=30).map("".join))
def test_cells_split_as_the_old_expression(line: str) -> None:
    assert forms._split_cells(line) == OLD_CELL_SPLIT.split(line)


def test_a_long_run_of_blanks_in_a_table_line_is_linear() -> None:
    text = "氏名: 山田\n" + "a,b,c" + " " * 60_000 + "x\n"
    t0 = time.process_time()
    forms.find_forms(text)
    assert time.process_time() - t0 < 0.5  # 16 s before
