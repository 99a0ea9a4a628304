"""Attribution-only quoting (issue 8): the quoted message's author, with address when the
client shows one, and always the name only (no date, time or verb) in findings and notices."""

from __future__ import annotations

from pathlib import Path

import pytest
from mailbuild import b_word, build

from leakguard.engine import Engine
from leakguard.explain import explain_finding
from leakguard.message.parse import parse_message
from leakguard.message.quotes import author_name
from leakguard.policy import load_policy
from leakguard.types import QuoteKind

ROOT = Path(__file__).resolve().parents[1]
ENGINE = Engine(load_policy(ROOT / "policies" / "default.yaml"))
FROM = f"{b_word('佐藤 一也')} <kazuya.sato@city.example.lg.jp>"
K = "k.kinoshita@minato-shokai.co.jp"

# (client, attribution line(s), author address or None, author name)
ATTRIBUTIONS = [
    ("gmail-ja", f"2025年2月14日(金) 17:32 木下 健二 <{K}>:", K, "木下 健二"),
    ("gmail-ja-wrapped", f"2025年2月14日(金) 17:32 木下 健二 <\n{K}>:", K, "木下 健二"),
    (
        "gmail-en",
        f"On Fri, Feb 14, 2025 at 5:32 PM Kinoshita Kenji <{K}> wrote:",
        K,
        "Kinoshita Kenji",
    ),
    ("apple-mail-ja", f"2025/02/14 17:32、木下 健二 <{K}>のメール:", K, "木下 健二"),
    ("iphone-ja", f"2025/02/14 17:32、木下 健二 <{K}>のメール:", K, "木下 健二"),
    (
        "apple-mail-en",
        f"On Feb 14, 2025, at 17:32, Kinoshita Kenji <{K}> wrote:",
        K,
        "Kinoshita Kenji",
    ),
    ("apple-names-only", "2025/02/14 17:32、木下 健二 のメッセージ:", None, "木下 健二"),
    ("thunderbird-ja", "On 2025/02/14 17:32, 木下 健二 wrote:", None, "木下 健二"),
    ("thunderbird-ja-san", "木下 健二 さんは書きました:", None, "木下 健二"),
    (
        "thunderbird-ja-date-san",
        "2025/02/14 17:32 に 木下 健二 さんは書きました:",
        None,
        "木下 健二",
    ),
    (
        "thunderbird-ja-date-addr-san",
        f"2025/02/14 17:32 に 木下 健二 <{K}> さんは書きました:",
        K,
        "木下 健二",
    ),
    ("thunderbird-ja-addr", f"2025/02/14 17:32, 木下 健二 <{K}> wrote:", K, "木下 健二"),
    ("becky", f"On Fri, 14 Feb 2025 17:32:00 +0900\n木下 健二 <{K}> wrote:", K, "木下 健二"),
    ("becky-short", "木下 健二 wrote:", None, "木下 健二"),
    (
        "outlook-mac-en",
        f'On 2/14/25, 5:32 PM, "Kinoshita Kenji" <{K}> wrote:',
        K,
        "Kinoshita Kenji",
    ),
]


def reply(attribution: str, quoted: str, to: str, charset: str, cte: str) -> bytes:
    body = f"木下様\n\nご連絡ありがとうございます。\n\n{attribution}\n" + "".join(
        f"> {line}\n" for line in quoted.splitlines()
    )
    return build(
        [("From", FROM), ("To", to), ("Subject", b_word("Re: 打ち合わせ", "iso-2022-jp"))],
        body,
        charset=charset,
        cte=cte,
    )


ENCODINGS = [("iso-2022-jp", "7bit"), ("shift_jis", "base64"), ("utf-8", "quoted-printable")]


@pytest.mark.parametrize(
    ("client", "line", "addr", "name"), ATTRIBUTIONS, ids=[a[0] for a in ATTRIBUTIONS]
)
def test_attribution_author_with_name_only(
    client: str, line: str, addr: str | None, name: str
) -> None:
    charset, cte = ENCODINGS[[a[0] for a in ATTRIBUTIONS].index(client) % len(ENCODINGS)]
    raw = reply(line, "佐藤様\n\n来週の打ち合わせの件です。", K, charset, cte)
    msg = parse_message(raw)
    blocks = [b for b in msg.quoted_blocks if b.kind == QuoteKind.ATTRIBUTION]
    assert len(blocks) == 1, (client, msg.quoted_blocks)
    blk = blocks[0]
    assert blk.author == name
    assert blk.participants_known is False
    if addr is None:
        assert blk.senders == ()
    else:
        assert [a.addr for a in blk.senders] == [addr]
        assert blk.senders[0].display_name == name
        assert [a.addr for a in blk.participants] == [addr]


def test_date_never_shows_in_findings_and_notices() -> None:
    # Reply to an outsider quoting Kinoshita's mail that names a third party.
    quoted = "佐藤様\n\n先方の担当は 村上 (murakami@other-corp.example.co.jp) です。"
    raw = reply(ATTRIBUTIONS[0][1], quoted, "tanaka@sample-shoji.co.jp", "iso-2022-jp", "7bit")
    d = ENGINE.decide(raw)
    assert d.verdict.action.value == "hold"
    found = [f for f in d.verdict.findings if f.fact == "quoted_third_party_addresses"]
    f = next(f for f in found if f.addresses == ("murakami@other-corp.example.co.jp",))
    assert f.evidence["quoted_from"] == f"木下 健二 <{K}>"
    for f in found:
        for text in (explain_finding(f, "ja"), explain_finding(f, "en"), *f.evidence.values()):
            assert "2025" not in text and "17:32" not in text, text


def test_outlook_2010_names_only_headers_give_the_author_name() -> None:
    body = (
        "木下様\n\n承知しました。\n\n"
        "-----Original Message-----\n"
        "差出人: 木下 健二\n"
        "送信日時: 2013年2月14日 17:32\n"
        "宛先: 佐藤 一也; 田中 浩\n"
        "CC: 村上 一郎\n"
        "件名: 打ち合わせ\n\n"
        "佐藤様\n\n来週の件です。\n"
    )
    for charset, cte in ENCODINGS:
        msg = parse_message(
            build([("From", FROM), ("To", K), ("Subject", "RE")], body, charset=charset, cte=cte)
        )
        blk = msg.quoted_blocks[0]
        assert blk.kind == QuoteKind.HEADER_BLOCK
        assert blk.author == "木下 健二" and blk.senders == ()
    body_en = body.replace("差出人: 木下 健二", "From: Kinoshita, Kenji [mailto:" + K + "]")
    msg = parse_message(build([("From", FROM), ("To", K), ("Subject", "RE")], body_en))
    assert msg.quoted_blocks[0].author == "Kinoshita, Kenji"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Monica Smith", "Monica Smith"),  # "Mon" is not a weekday here
        ("Sun Li", "Sun Li"),
        ("May June", "May June"),
        ("On Sun, Feb 16, 2025 at 9:00 AM Sun Li", "Sun Li"),
        ("On Monday, February 17, 2025 10:00 AM, Taro Yamada wrote:", "Taro Yamada"),
        ("Kinoshita Kenji wrote on Feb 14, 2025:", "Kinoshita Kenji"),
        ("2025年2月17日 月曜日 10:00 山田太郎", "山田太郎"),
        ("午後5:32 木下", "木下"),
        ("2025年2月14日(金) 17:32", ""),
    ],
)
def test_author_name(text: str, name: str) -> None:
    assert author_name(text) == name


def test_reply_all_with_attribution_keeps_its_author_as_participant() -> None:
    # Hard negative: reply-all to the author and a colleague of the author.
    raw = build(
        [
            ("From", FROM),
            ("To", f"{b_word('木下 健二')} <{K}>"),
            ("Cc", "m.ueda@minato-shokai.co.jp"),
            ("Subject", "Re"),
        ],
        f"木下様\n\n承知しました。\n\n2025年2月14日(金) 17:32 木下 健二 <{K}>:\n"
        "> 佐藤様\n> 上田も同席します。\n",
        charset="iso-2022-jp",
        cte="7bit",
    )
    assert ENGINE.decide(raw).verdict.action.value == "pass"


def test_gmail_html_attribution_author() -> None:
    html = (
        '<div dir="ltr">承知しました。</div><br><div class="gmail_quote">'
        '<div dir="ltr" class="gmail_attr">2025年2月14日(金) 17:32 木下 健二 &lt;'
        f'<a href="mailto:{K}">{K}</a>&gt;:<br></div>'
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">'
        '<div dir="ltr">佐藤様<div>来週の件です。</div></div></blockquote></div>'
    )
    for charset, cte in ENCODINGS:
        raw = build(
            [("From", FROM), ("To", K), ("Subject", "Re")],
            html,
            charset=charset,
            cte=cte,
            content_type="text/html",
        )
        blocks = parse_message(raw).quoted_blocks
        assert [b.kind for b in blocks] == [QuoteKind.HTML_QUOTE]
        assert blocks[0].author == "木下 健二"
        assert [a.display() for a in blocks[0].senders] == [f"木下 健二 <{K}>"]


def test_lotus_notes_from_name_is_the_author() -> None:
    body = (
        "Thanks.\n\n-----Original Message-----\n"
        "From: Jane Doe/HOU/ECT@ECT\n"
        "Sent: Monday, January 7, 2002 10:18 AM\n"
        "To: tana.jones@partner.example.com\n"
        "Subject: ISDA\n\nSee attached.\n"
    )
    msg = parse_message(build([("From", FROM), ("To", K), ("Subject", "Fw")], body))
    assert [b.author for b in msg.quoted_blocks] == ["Jane Doe"]
