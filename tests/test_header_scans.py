"""Issue 12: header-section scans use bytes.find/count, not regular expressions (a regex
holds the GIL for its whole pass: tens of milliseconds on a 7 MB header section, during
which the event loop cannot run even though the scan is in a worker thread). The results
are those of the regular expressions they replace."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from leakguard.message.headers import find_blank_line, parse_header_block
from leakguard.relay import replies

_BYTES = st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"a", b" ", b":", b"\x00"]), max_size=40)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(_BYTES, st.integers(min_value=0, max_value=5), st.integers(min_value=0, max_value=5))
def test_find_blank_line_is_the_regex(parts: list[bytes], lo: int, cut: int) -> None:
    buf = b"".join(parts)
    start = min(lo, len(buf))
    end = max(start, len(buf) - cut)
    m = re.compile(rb"\r?\n\r?\n").search(buf, start, end)
    assert find_blank_line(buf, start, end) == ((m.start(), m.end()) if m else None)


def _old_header_section_problem(raw: bytes) -> str | None:
    if b"\x00" in raw:
        return replies.NUL_IN_MESSAGE
    m = re.search(rb"\r?\n\r?\n", raw)
    head = raw[: m.start() if m else len(raw)]
    if re.search(rb"\r(?!\n)", head) is not None:
        return replies.HEADER_AMBIGUOUS
    return None


@settings(max_examples=600, deadline=None, derandomize=True)
@given(_BYTES)
def test_header_section_problem_is_unchanged(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    assert replies.header_section_problem(raw) == _old_header_section_problem(raw)


def test_known_forms() -> None:
    ok = b"From: a@b.example\r\nSubject: x\r\n\r\nbody\rwith bare CR in the body\r\n"
    assert replies.header_section_problem(ok) is None
    bad = b"X-A: a\rFrom: <boss@b.example>\r\nFrom: <a@b.example>\r\n\r\nhi\r\n"
    assert replies.header_section_problem(bad) == replies.HEADER_AMBIGUOUS
    assert replies.header_section_problem(ok + b"\x00") == replies.NUL_IN_MESSAGE
    folded = (
        b"From: a@b.example\r\nTo: x@c.example,\r\n"
        + b"\ty@d.example,\r\n" * 250_000
        + b"\tz@e.example\r\nSubject: s\r\n\r\nhi\r\n"
    )
    assert replies.header_section_problem(folded) is None
    hb = parse_header_block(folded)
    assert hb.get("Subject") == "s"
    lf = b"From: a@b.example\nSubject: lf\n\nbody\n"
    assert parse_header_block(lf).get("Subject") == "lf"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_BYTES, st.integers(min_value=0, max_value=5), st.integers(min_value=1, max_value=4))
def test_find_blank_line_in_small_windows_is_the_regex(
    parts: list[bytes], lo: int, window: int
) -> None:
    import leakguard.message.headers as headers

    buf = b"".join(parts)
    start = min(lo, len(buf))
    m = re.compile(rb"\r?\n\r?\n").search(buf, start)
    saved = headers._BLANK_WINDOW
    headers._BLANK_WINDOW = window
    try:
        assert find_blank_line(buf, start) == ((m.start(), m.end()) if m else None)
    finally:
        headers._BLANK_WINDOW = saved
