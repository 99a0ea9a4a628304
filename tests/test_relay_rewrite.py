"""The BCC rewrite changes only To/Cc fields, byte for byte everything else stays."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy
from email.utils import getaddresses

from leakguard.relay.rewrite import bcc_rewrite, header_end, rewrite_recipients


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
