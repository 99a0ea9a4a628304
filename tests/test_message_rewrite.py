"""The BCC rewrite changes only To/Cc fields, byte for byte everything else stays."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy
from email.utils import getaddresses

import pytest

from leakguard.message.addresses import parse_address_list
from leakguard.message.headers import parse_header_block
from leakguard.message.rewrite import (
    bcc_rewrite,
    header_end,
    rewrite_recipients,
    visible_external,
)


def internal(addr: str) -> bool:
    return addr.lower().rpartition("@")[2] in ("city.example.lg.jp", "soumu.city.example.lg.jp")


HEAD_BEFORE = (
    b"Received: from pc1 (pc1.city.example.lg.jp [10.0.0.5])\r\n"
    b"\tby mx; Tue, 1 Apr 2025 09:00:00 +0900\r\n"
    b"From: =?UTF-8?B?5L2Q6Jek?= <kazuya.sato@city.example.lg.jp>\r\n"
)
HEAD_AFTER = (
    b"Subject: =?ISO-2022-JP?B?GyRCOG45UTtxTkEbKEI=?=\r\n"
    b"Message-ID: <abc@city.example.lg.jp>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
)
BODY = (
    b"\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
    b"\r\nTo: not-a-header@partner.example.co.jp in the body\r\n\xe3\x81\x82 trailing space \r\n"
    b"--b1--\r\n"
)


def make(to: bytes, cc: bytes | None = None) -> bytes:
    return HEAD_BEFORE + to + (cc or b"") + HEAD_AFTER + BODY


def test_external_removed_internal_kept_rest_byte_identical() -> None:
    raw = make(
        b"To: =?UTF-8?B?55Sw5Lit?= <hiroshi.tanaka@city.example.lg.jp>,\r\n"
        b' "Smith, John" <john@partner.example.co.jp>, bob@other.example.com\r\n',
        b"Cc: (comment) carol@soumu.city.example.lg.jp, Dave <dave@partner.example.co.jp>\r\n",
    )
    res = rewrite_recipients(raw, internal)
    assert set(res.removed) == {
        "john@partner.example.co.jp",
        "bob@other.example.com",
        "dave@partner.example.co.jp",
    }
    out = res.raw
    assert out.startswith(HEAD_BEFORE)
    assert out.endswith(HEAD_AFTER + BODY)
    middle = out[len(HEAD_BEFORE) : len(out) - len(HEAD_AFTER + BODY)]
    assert middle == (
        b"To: =?UTF-8?B?55Sw5Lit?= <hiroshi.tanaka@city.example.lg.jp>\r\n"
        b"Cc: (comment) carol@soumu.city.example.lg.jp\r\n"
    )
    msg = message_from_bytes(out, policy=default_policy)
    assert str(msg["To"]) == "田中 <hiroshi.tanaka@city.example.lg.jp>"


def test_emptied_to_becomes_undisclosed_and_cc_removed() -> None:
    raw = make(
        b"To: a@partner.example.co.jp, b@other.example.com\r\n", b"Cc: c@third.example.net\r\n"
    )
    out = bcc_rewrite(raw, internal)
    assert out == HEAD_BEFORE + b"To: undisclosed-recipients:;\r\n" + HEAD_AFTER + BODY


def test_nothing_external_is_unchanged_identity() -> None:
    raw = make(b"To: hiroshi.tanaka@city.example.lg.jp\r\n")
    res = rewrite_recipients(raw, internal)
    assert res.raw is raw and not res.changed


def test_group_syntax_and_quoted_commas() -> None:
    raw = make(
        b"To: Team: x@partner.example.co.jp, y@city.example.lg.jp;, "
        b'"Doe, Jane (Sales)" <jane@partner.example.co.jp>\r\n'
    )
    res = rewrite_recipients(raw, internal)
    assert set(res.removed) == {"x@partner.example.co.jp", "jane@partner.example.co.jp"}
    to = res.raw.split(b"\r\n")[3]
    assert to == b"To: Team: y@city.example.lg.jp;"
    addrs = [a for _n, a in getaddresses([to.decode()[3:]])]
    assert addrs == ["y@city.example.lg.jp"]


def test_many_kept_addresses_fold_and_parse_back() -> None:
    kept = [f"user{i}@city.example.lg.jp" for i in range(12)]
    ext = [f"ext{i}@company{i}.example" for i in range(12)]
    mixed = [a for pair in zip(kept, ext, strict=True) for a in pair]
    raw = make(b"To: " + ", ".join(mixed).encode() + b"\r\n")
    out = bcc_rewrite(raw, internal)
    head = out[: header_end(out)]
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    msg = message_from_bytes(out, policy=default_policy)
    assert [a.addr_spec for a in msg["To"].addresses] == kept
    assert out.endswith(HEAD_AFTER + BODY)


def test_record_header_and_lf_only_messages() -> None:
    raw = b"From: a@city.example.lg.jp\nTo: x@partner.example.co.jp, y@city.example.lg.jp\n\nbody\n"
    res = rewrite_recipients(raw, internal, record_header="X-Leakguard-Bcc")
    assert res.raw == (
        b"X-Leakguard-Bcc: moved 1 external recipient from To/Cc to Bcc\n"
        b"From: a@city.example.lg.jp\nTo: y@city.example.lg.jp\n\nbody\n"
    )


def test_utf8_headers_and_8bit_bytes_preserved() -> None:
    raw = (
        "To: 佐藤 <sato@city.example.lg.jp>, 山田 <yamada@partner.example.co.jp>\r\n"
        "Subject: 見積\r\n\r\n本文\r\n"
    ).encode()
    out = bcc_rewrite(raw, internal)
    assert out == "To: 佐藤 <sato@city.example.lg.jp>\r\nSubject: 見積\r\n\r\n本文\r\n".encode()
    bad = b"To: \xff\xfe <x@partner.example.co.jp>, y@city.example.lg.jp\r\nX: \xff\r\n\r\n\xff"
    out = bcc_rewrite(bad, internal)
    assert out == b"To: y@city.example.lg.jp\r\nX: \xff\r\n\r\n\xff"


def test_hostile_input_does_not_crash() -> None:
    for raw in (
        b"",
        b"To:",
        b"To: <<<<,,,;;;:::\r\n\r\n",
        b'To: "unterminated, x@y.example\r\n',
        b"To: (((((" * 1000 + b"\r\n\r\n",
        b"\r\n\r\nTo: x@partner.example.co.jp",
    ):
        out = bcc_rewrite(raw, internal)
        assert isinstance(out, bytes)
    # a To after the header section is body text and untouched
    raw = b"\r\n\r\nTo: x@partner.example.co.jp"
    assert bcc_rewrite(raw, internal) == raw


# ---------------------------------------------------------------- one parser, fail closed
# The detectors read To/Cc with ``parse_address_list``; whatever they see as external must be
# gone after the rewrite, and every byte outside To/Cc must stay.

INT = "y@city.example.lg.jp"


def _to_values(out: bytes) -> list[str]:
    hb = parse_header_block(out)
    return [*hb.get_all("To"), *hb.get_all("Cc")]


def _internal_left(out: bytes) -> set[str]:
    keys: set[str] = set()
    for v in _to_values(out):
        keys |= {a.key for a in parse_address_list(v)[0] if internal(a.addr)}
    return keys


def _assert_hidden(raw: bytes, out: bytes) -> None:
    assert visible_external(raw, internal), "the case must have a visible external address"
    assert visible_external(out, internal) == []
    assert out.startswith(HEAD_BEFORE)
    assert out.endswith(HEAD_AFTER + BODY)


def test_space_separated_addresses_are_removed() -> None:
    ext = " ".join(f"u{i}@c{i}.example" for i in range(12))
    raw = make(f"To: {ext} {INT}\r\n".encode())
    res = rewrite_recipients(raw, internal)
    _assert_hidden(raw, res.raw)
    assert len(res.removed) == 12 and res.visible == ()
    assert _internal_left(res.raw) == {INT}
    raw = make(f"To: {ext}\r\n".encode())
    out = bcc_rewrite(raw, internal)
    assert out == HEAD_BEFORE + b"To: undisclosed-recipients:;\r\n" + HEAD_AFTER + BODY


def test_huge_field_is_rebuilt_not_left_alone() -> None:
    ext = ", ".join(f"someone{i}@partner{i % 50}.example.co.jp" for i in range(12_000))
    value = f"To: {INT}, Hanako <h@soumu.city.example.lg.jp>,\r\n {ext}\r\n".encode()
    assert len(value) > 256 * 1024
    raw = make(value)
    res = rewrite_recipients(raw, internal)
    _assert_hidden(raw, res.raw)
    assert len(res.removed) >= 9_998 and res.visible == ()
    assert _internal_left(res.raw) == {INT, "h@soumu.city.example.lg.jp"}
    assert len(res.raw) < len(raw) - 256 * 1024


@pytest.mark.parametrize(
    "field",
    [
        'To: "a, b" <x@partner.example.co.jp>, y@city.example.lg.jp',
        "To: x@partner.example.co.jp (comment, with comma), y@city.example.lg.jp",
        "To: (lead, comment) x@partner.example.co.jp, (c) y@city.example.lg.jp",
        "To: <@route.example:x@partner.example.co.jp>, y@city.example.lg.jp",
        "To: x@partner.example.co.jp; y@city.example.lg.jp",  # Outlook separator
        "To: 'Doe, John' <x@partner.example.co.jp>; y@city.example.lg.jp",
        "To: grp: x@partner.example.co.jp, y@city.example.lg.jp;, w@other.example",
        "To: grp: x@partner.example.co.jp w@other.example;, y@city.example.lg.jp",
        "To: =?utf-8?q?Ext_=3Cx=40partner=2Eexample=2Eco=2Ejp=3E?= <x@partner.example.co.jp>,"
        " =?UTF-8?B?55Sw5Lit?= <y@city.example.lg.jp>",
        "To: x@partner.example.co.jp,, y@city.example.lg.jp",
        "To: x@partner.example.co.jp\r\n\t, y@city.example.lg.jp",
        "To: Name <x@partner.example.co.jp",
        "To: x@PARTNER.example.co.jp.",
        "To: x@ｐａｒｔｎｅｒ.example, y@city.example.lg.jp",
        "To: x@partner.example.co.jp\r\nTo: z@other.example",
        "TO : x@partner.example.co.jp",
        "To: <x@partner.example.co.jp>(c)<z@other.example>",
        "To: Boss <x@partner.example.co.jp> <y@city.example.lg.jp>",
        'To: "a" b <x@partner.example.co.jp>, y@city.example.lg.jp',
        "To: y@city.example.lg.jp\rx@partner.example.co.jp",  # bare CR is not a line break
        "To: 山田 ＜x@partner.example.co.jp＞、佐藤 ＜y@city.example.lg.jp＞",
        "To: Partner [mailto:x@partner.example.co.jp], y@city.example.lg.jp",
        "Cc: x@partner.example.co.jp\r\nTo: y@city.example.lg.jp",
        "To: y@city.example.lg.jp\r\nCc: a@b.example c@d.example y@city.example.lg.jp",
    ],
)
def test_odd_syntax_leaves_no_external_visible(field: str) -> None:
    raw = make(field.encode() + b"\r\n")
    before = _internal_left(raw)
    res = rewrite_recipients(raw, internal)
    _assert_hidden(raw, res.raw)
    assert res.visible == () and res.changed
    assert _internal_left(res.raw) == before  # internal recipients stay visible


def test_splitter_disagreement_falls_back_to_internal_only() -> None:
    # An unindented continuation line: the header parser joins it to To, the field splitter
    # does not, so the item rewrite misses it; the re-parse notices and every To/Cc is
    # rebuilt from its internal addresses, which ends the join.
    raw = b"To: y@city.example.lg.jp;\r\nb=x@partner.example.co.jp\r\nSubject: s\r\n\r\nbody\r\n"
    assert visible_external(raw, internal) == ["b=x@partner.example.co.jp"]
    res = rewrite_recipients(raw, internal)
    assert res.visible == () and visible_external(res.raw, internal) == []
    assert res.raw.startswith(b"To: y@city.example.lg.jp\r\n")
    assert res.raw.endswith(b"\r\nb=x@partner.example.co.jp\r\nSubject: s\r\n\r\nbody\r\n")
