"""Addresses written for people, not parsers (issue 8): full width and spam-guard spellings,
in signatures, quoted text and forwarded forms; and prose that must not become an address."""

from __future__ import annotations

from pathlib import Path

import pytest
from mailbuild import b_word, build

from leakguard.engine import Engine
from leakguard.message.parse import parse_message
from leakguard.message.textaddr import address_keys, find_addresses, spelled_addresses
from leakguard.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]
ENGINE = Engine(load_policy(ROOT / "policies" / "default.yaml"))
FROM = f"{b_word('佐藤 一也')} <kazuya.sato@city.example.lg.jp>"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｃｏ．ｊｐ", "yamada@example.co.jp"),
        ("メール：ｈａｎａｋｏ．ｓ＠ｇｍａｉｌ．ｃｏｍ", "hanako.s@gmail.com"),
        ("yamada＠example.co.jp", "yamada@example.co.jp"),
        # ISO-2022-JP turns the full-width hyphen into U+2212 MINUS SIGN
        (
            "ｋ．ｋｉｍｕｒａ＠ｍｉｎａｔｏ\u2212ｓｈｏｋａｉ．ｃｏ．ｊｐ",
            "k.kimura@minato-shokai.co.jp",
        ),
        ("yamada［at］example.co.jp", "yamada@example.co.jp"),
        ("ｙａｍａｄａ［ａｔ］ｅｘａｍｐｌｅ．ｃｏ．ｊｐ", "yamada@example.co.jp"),
        ("yamada[at]example.co.jp", "yamada@example.co.jp"),
        ("yamada(at)example.co.jp", "yamada@example.co.jp"),
        ("yamada (at) example.co.jp", "yamada@example.co.jp"),
        ("yamada [AT] example [DOT] co [DOT] jp", "yamada@example.co.jp"),
        ("yamada(at)example(dot)co(dot)jp", "yamada@example.co.jp"),
        ("yamada［アット］example.co.jp", "yamada@example.co.jp"),
        ("yamada（あっと）example.co.jp", "yamada@example.co.jp"),
        ("yamada(@)example.co.jp", "yamada@example.co.jp"),
        ("info★example.co.jp（★を@に変えてください）", "info@example.co.jp"),
        ("E-mail: taro at example.co.jp", "taro@example.co.jp"),
        ("メールアドレス：taro at example.co.jp", "taro@example.co.jp"),
        ("（taro at example.com）", "taro@example.com"),
    ],
)
def test_spelled_and_full_width_addresses(text: str, want: str) -> None:
    assert [a.addr for a in find_addresses(text)] == [want]
    if "(" not in text and "（" not in text and " at " not in text:
        assert want in address_keys(text)  # the cheap superset agrees (bracket forms)


@pytest.mark.parametrize(
    "text",
    [
        "Let's meet at home.com's office",  # a word, not a local part
        "meet at noon.com today",
        "Please contact us at support.example.com",
        "we arrived at tokyo.jp yesterday",
        "look at report.pdf and notes.docx",
        "see you at 3.30pm",
        "J.Smith at 3.30pm",
        "the meeting is at the office",
        "price at [at] level",  # no domain
        "yamada[at]example",  # no known top-level domain
        "yamada[at]report.xlsx",  # a file, not a domain
        "https://example.com/foo(at)bar.com",  # inside a URL
        "★ 重要 ★ example.co.jp のお知らせ",  # decoration, not a local part
        "ＴＥＬ：０３－１２３４－５６７８",
        # a bare " at " in running prose is a sentence, even before a real-looking address
        "please write to j.smith at example.com",
    ],
)
def test_prose_and_decoration_are_not_addresses(text: str) -> None:
    assert find_addresses(text) == []
    assert spelled_addresses(text) == []


def test_signature_with_spelled_address_in_a_forwarded_mail_is_a_third_party() -> None:
    # Outlook (ja) forward of a vendor's mail whose signature spells the address out.
    body = (
        "田中様\n\n下記、ご確認ください。\n\n"
        "-----Original Message-----\n"
        "差出人: 木村 健一\n"
        "送信日時: 2025年2月14日 17:32\n"
        "宛先: 佐藤 一也\n"
        "件名: 見積もりの件\n\n"
        "佐藤様\n\nお見積もりを添付します。\n\n"
        "--\n株式会社ミナト商会 木村 健一\n"
        "Mail: k.kimura［at］minato-shokai.co.jp\n"
        "TEL: 03-1234-5678\n"
    )
    for charset, cte in (
        ("iso-2022-jp", "7bit"),
        ("shift_jis", "base64"),
        ("utf-8", "quoted-printable"),
    ):
        raw = build(
            [("From", FROM), ("To", "tanaka@other-vendor.example"), ("Subject", "Fw")],
            body,
            charset=charset,
            cte=cte,
        )
        msg = parse_message(raw)
        addrs = {a.addr for b in msg.quoted_blocks for a in b.addresses}
        assert "k.kimura@minato-shokai.co.jp" in addrs, charset
        d = ENGINE.decide(raw)
        assert d.verdict.action.value == "hold", (charset, d.verdict.rule_ids)
        assert "forwarded-third-party" in d.verdict.rule_ids


def test_own_signature_with_spelled_address_is_not_a_finding() -> None:
    # Hard negative: the sender's own signature (not quoted) spells an internal address.
    raw = build(
        [("From", FROM), ("To", "k.kimura@sample-shoji.co.jp"), ("Subject", b_word("ご案内"))],
        "木村様\n\n資料をお送りします。\n\n--\n総務課 佐藤 一也\n"
        "E-mail: kazuya.sato［at］city.example.lg.jp\n",
        charset="iso-2022-jp",
        cte="7bit",
    )
    assert ENGINE.decide(raw).verdict.action.value == "pass"
