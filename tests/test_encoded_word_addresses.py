"""Addresses hidden inside RFC 2047 encoded words (issue 8): what every client displays.

PHP ``mb_encode_mimeheader``, Perl ``Encode`` MIME-Header, Python ``email.header`` and
in-house tools encode ``名前 <addr>`` (and the commas between several) into encoded words.
The parser, the engine (default policy) and the Bcc rewrite must all see those recipients.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mailbuild import (
    attach_message,
    b_word,
    build,
    perl_encode_mime_header,
    php_mb_encode_mimeheader,
    python_header,
    q_word,
)

from leakguard.engine import Engine
from leakguard.message.addresses import hidden_by_encoded_words, parse_address_list
from leakguard.message.parse import parse_message
from leakguard.message.rewrite import rewrite_recipients
from leakguard.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]
ENGINE = Engine(load_policy(ROOT / "policies" / "default.yaml"))
SENDER = "kazuya.sato@city.example.lg.jp"
FROM = f"{b_word('佐藤 一也')} <{SENDER}>"

COMPANIES = [
    (f"株式会社サンプル{i:02d} ご担当者様", f"info@company{i:02d}.example") for i in range(1, 42)
]


def internal(addr: str) -> bool:
    return addr.lower().endswith("@city.example.lg.jp")


def joined(people: list[tuple[str, str]]) -> str:
    return ", ".join(f"{name} <{addr}>" for name, addr in people)


# Each encoder writes the whole "name <addr>, name <addr>" list into encoded words.
ENCODERS = {
    "php-iso2022jp": lambda s: php_mb_encode_mimeheader(s, "ISO-2022-JP"),
    "php-utf8": lambda s: php_mb_encode_mimeheader(s, "UTF-8", chunk=20),
    "php-shiftjis": lambda s: php_mb_encode_mimeheader(s, "Shift_JIS", chunk=16),
    "perl-utf8": perl_encode_mime_header,
    "python-iso2022jp": lambda s: python_header(s, "iso-2022-jp"),
    "python-utf8": lambda s: python_header(s, "utf-8"),
    "one-word-per-address-q": lambda s: ",\r\n ".join(q_word(p) for p in s.split(", ")),
    "one-word-per-address-b-sjis": lambda s: ", ".join(
        b_word(p, "shift_jis") for p in s.split(", ")
    ),
}


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_parser_reads_addresses_inside_encoded_words(encoder: str) -> None:
    people = COMPANIES[:5]
    value = ENCODERS[encoder](joined(people))
    assert "@" not in value.replace("=40", "") or encoder.endswith("-q")
    addrs, _ = parse_address_list(value)
    assert [a.addr for a in addrs] == [a for _, a in people]
    assert [a.display_name for a in addrs] == [n for n, _ in people]


def test_plain_encoded_names_unchanged_and_nothing_invented() -> None:
    # The ordinary form: only the name is encoded. Nothing is hidden, nothing changes.
    value = (
        f"{b_word('山田 太郎', 'iso-2022-jp')} <t.yamada@a.example.co.jp>, "
        f"{q_word('Doe, John')} <j@b.example>"
    )
    assert hidden_by_encoded_words(value) is None
    addrs, _ = parse_address_list(value)
    assert [(a.addr, a.display_name) for a in addrs] == [
        ("t.yamada@a.example.co.jp", "山田 太郎"),
        ("j@b.example", "Doe, John"),
    ]
    # A name written with a full-width at sign is a name, not a second address.
    value = f"{b_word('山田＠営業部')} <yamada@a.example.co.jp>"
    assert [a.addr for a in parse_address_list(value)[0]] == ["yamada@a.example.co.jp"]
    # Encoded text that is no address at all
    assert parse_address_list(b_word("お客様各位"))[0] == []
    assert parse_address_list(b_word("undisclosed-recipients:;"))[1] is False


def test_mixed_plain_and_hidden_addresses_keep_order_once_each() -> None:
    value = "Plain <plain@x.example>, " + b_word(
        "隠れた 人 <hidden@y.example>, plain@x.example", "iso-2022-jp"
    )
    addrs, _ = parse_address_list(value)
    assert [a.addr for a in addrs] == ["plain@x.example", "hidden@y.example"]


def test_hostile_encoded_words_are_bounded() -> None:
    # A huge encoded list does not crash and is capped like any other list.
    value = b_word(", ".join(f"u{i}@d{i}.example" for i in range(3000)))
    addrs, _ = parse_address_list(value)
    assert len(addrs) == 3000
    # Broken base64, unterminated angle, stray quotes: no exception
    for v in ("=?UTF-8?B?!!!?=", b_word('"unterminated <a@b.example'), b_word("<<<@@@>>>")):
        parse_address_list(v)


def _bulk_mail(encoder: str, charset: str, cte: str) -> bytes:
    to = ENCODERS[encoder](joined(COMPANIES))
    body = "各位\n\n来月の説明会のご案内です。\n\n総務課 佐藤\n"
    return build(
        [
            ("From", FROM),
            ("To", to),
            ("Subject", b_word("説明会のご案内", "iso-2022-jp")),
            ("Date", "Mon, 17 Feb 2025 10:00:00 +0900"),
            ("Message-ID", "<inhouse-0001@city.example.lg.jp>"),
            ("X-Mailer", "PHP/8.1 InHouseMailer"),
        ],
        body,
        charset=charset,
        cte=cte,
    )


@pytest.mark.parametrize(
    ("encoder", "charset", "cte"),
    [
        ("php-iso2022jp", "iso-2022-jp", "7bit"),
        ("php-shiftjis", "shift_jis", "base64"),
        ("perl-utf8", "utf-8", "quoted-printable"),
        ("python-iso2022jp", "iso-2022-jp", "7bit"),
        ("one-word-per-address-q", "utf-8", "base64"),
    ],
)
def test_41_company_mailing_from_in_house_tool_is_bcc_and_rewritten(
    encoder: str, charset: str, cte: str
) -> None:
    raw = _bulk_mail(encoder, charset, cte)
    msg = parse_message(raw)
    assert len(msg.to) == 41
    d = ENGINE.decide(raw)
    assert d.verdict.action.value == "bcc", d.verdict.rule_ids
    assert "bulk-external" in d.verdict.rule_ids
    assert d.verdict.facts["visible_external_recipients"] == 41
    res = rewrite_recipients(raw, internal)
    assert len(res.removed) == 41 and res.visible == ()
    after = parse_message(res.raw)
    assert after.to == () and after.cc == ()
    assert b"To: undisclosed-recipients:;" in res.raw
    # nothing but To changed: the body and the other headers are byte-identical
    assert res.raw.split(b"\r\n\r\n", 1)[1] == raw.split(b"\r\n\r\n", 1)[1]
    assert ENGINE.decide(res.raw, rcpts=[a for _, a in COMPANIES]).verdict.action.value == "pass"


def test_rewrite_keeps_internal_addresses_hidden_in_the_same_word() -> None:
    value = php_mb_encode_mimeheader(
        "田中 <hiroshi.tanaka@city.example.lg.jp>, 外部 <x@partner.example.co.jp>", "UTF-8", 15
    )
    raw = build([("From", FROM), ("Cc", value), ("To", "a@city.example.lg.jp")], "本文\n")
    res = rewrite_recipients(raw, internal)
    assert res.removed == ("x@partner.example.co.jp",) and res.visible == ()
    after = parse_message(res.raw)
    assert [a.addr for a in after.cc] == ["hiroshi.tanaka@city.example.lg.jp"]
    assert after.cc[0].display_name == "田中"


def test_quoted_and_attached_headers_with_encoded_word_addresses() -> None:
    # A forwarded message whose From/To were written by an in-house tool, attached as
    # message/rfc822 and also pasted inline with its raw header lines.
    inner = build(
        [
            ("From", b_word("市民 花子 <hanako.citizen@gmail.com>", "iso-2022-jp")),
            ("To", b_word("広報 <kouhou@city.example.lg.jp>", "iso-2022-jp")),
            ("Subject", b_word("ご相談", "iso-2022-jp")),
        ],
        "よろしくお願いします。\n",
        charset="iso-2022-jp",
        cte="7bit",
    )
    raw = attach_message(
        [("From", FROM), ("To", "tanaka@contractor.example"), ("Subject", "Fwd")],
        "転送します。",
        inner,
    )
    msg = parse_message(raw)
    att = msg.attached_messages[0]
    assert [a.addr for a in att.from_] == ["hanako.citizen@gmail.com"]
    assert att.from_[0].display_name == "市民 花子"
    blk = msg.quoted_blocks[0]
    assert "hanako.citizen@gmail.com" in {a.addr for a in blk.participants}
    d = ENGINE.decide(raw)
    assert d.verdict.action.value == "hold"
    assert "forwarded-third-party" in d.verdict.rule_ids

    pasted = build(
        [("From", FROM), ("To", "tanaka@contractor.example"), ("Subject", "Fw")],
        "ご確認ください。\n\n-----Original Message-----\n"
        f"From: {b_word('市民 花子 <hanako.citizen@gmail.com>')}\n"
        "Sent: Monday, February 17, 2025 10:00 AM\n"
        f"To: {b_word('広報 <kouhou@city.example.lg.jp>')}\n"
        "Subject: ご相談\n\nよろしくお願いします。\n",
    )
    msg = parse_message(pasted)
    assert msg.quoted_blocks
    blk = msg.quoted_blocks[0]
    assert "hanako.citizen@gmail.com" in {a.addr for a in blk.participants}
    assert blk.author == "市民 花子"
    assert ENGINE.decide(pasted).verdict.action.value == "hold"


def test_ordinary_reply_with_encoded_names_is_not_held() -> None:
    # Hard negative: the everyday Thunderbird/Outlook form (names encoded, addresses plain).
    raw = build(
        [
            ("From", FROM),
            ("To", f"{python_header('木村 健一')} <k.kimura@sample-shoji.co.jp>"),
            ("Cc", f"{b_word('佐藤 次郎', 'shift_jis')} <j.sato@city.example.lg.jp>"),
            ("Subject", b_word("Re: 見積もりの件", "iso-2022-jp")),
        ],
        "木村様\n\nお世話になっております。\n",
        charset="iso-2022-jp",
        cte="7bit",
    )
    assert ENGINE.decide(raw).verdict.action.value == "pass"


def test_rewrite_of_a_sloppy_q_word_with_literal_commas_and_at_signs() -> None:
    # Some tools leave ',' and '@' unencoded inside a Q word: the field cannot be split by
    # its commas, so what stays is written back from the parse, and nothing external stays.
    raw = (
        b"From: kazuya.sato@city.example.lg.jp\r\n"
        b"To: =?UTF-8?Q?A_<a@x.example>,_B_<b@y.example>,_C_<c@city.example.lg.jp>?=\r\n"
        b"Cc: =?ISO-2022-JP?B?GyRCOzNFRBsoQiA8c0BiLmV4YW1wbGU+?= <s@b.example>\r\n"
        b"Subject: x\r\n\r\nbody\r\n"
    )
    res = rewrite_recipients(raw, internal)
    assert set(res.removed) == {"a@x.example", "b@y.example", "s@b.example"}
    assert res.visible == ()
    after = parse_message(res.raw)
    assert [a.addr for a in after.to] == ["c@city.example.lg.jp"] and after.cc == ()
    assert b"?=" not in res.raw.split(b"\r\n\r\n", 1)[0].split(b"To:", 1)[1].split(b"\r\n")[0]
