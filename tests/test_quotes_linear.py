"""The author-hint search of ``message.quotes`` is linear (issue 12 mass fuzz, case 10638: a
text of 390,000 blanks on 718 lines took 2.7 s in one regular expression search, with the
GIL held, in the decision, the review page and reply reading: the quote prefix gave back
blanks that the 200-character gap also matched). Same matches as the old expression,
checked with hypothesis."""

from __future__ import annotations

import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from leakguard.message import quotes
from leakguard.message.parse import parse_message

OLD = re.compile(
    r"^[ \t]*(?:[>＞][ \t]?)*[^\n]{0,200}(?:wrote|書きました|のメール|のメッセージ|schrieb|"
    r"a écrit)[ \t]*[:：][ \t]*$|^[ \t]*(?:[>＞][ \t]?)*(?:差出人|From)[ \t]*[:：]",
    re.MULTILINE | re.IGNORECASE,
)

PIECES = st.sampled_from(
    [" ", "\t", "  ", ">", "> ", ">>", "＞", "＞ ", "\n", "x", "On Mon, Taro ", "wrote", "WROTE",
     ":", "：", "書きました", "のメール", "のメッセージ", "schrieb", "a écrit", "差出人", "From",
     "from", "Fro", "a" * 60, " " * 70, "é", "İ"]
)  # fmt: skip


def _spans(ms: object) -> list[tuple[int, int]]:
    return [m.span() for m in ms]  # type: ignore[attr-defined]


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(st.lists(PIECES, max_size=40).map("".join))
def test_same_matches_as_the_old_expression(text: str) -> None:
    assert _spans(quotes._AUTHOR_HINT_RE.finditer(text)) == _spans(OLD.finditer(text))
    assert bool(quotes._AUTHOR_HINT_RE.search(text)) == bool(OLD.search(text))


def test_lines_of_blanks_are_linear() -> None:
    text = ("\nDue to the holiday" + " " * 600) * 300 + "\n" + " " * 200_000 + "\n"
    t0 = time.process_time()
    assert quotes._AUTHOR_HINT_RE.search(text) is None
    assert time.process_time() - t0 < 0.2  # 1.7 s before


def test_the_fuzz_case_parses_quickly() -> None:
    body = (
        "Due to the holiday, traders will have to use a Custom strip." + " " * 543 + "\n"
    ) * 700 + " " * 20_000
    raw = b"From: a@b.example\r\nSubject: s\r\n\r\n" + body.encode()
    t0 = time.process_time()
    parse_message(raw)
    assert time.process_time() - t0 < 1.0  # 2.7 s on the fuzz case's 393 KB before
