"""Quote / forward extraction: formats, nesting, HTML, attached messages, hostile input."""

from __future__ import annotations

import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from leakguard.message.parse import parse_message
from leakguard.message.quotes import extract_quotes, render_html_quotes
from leakguard.message.textaddr import (
    find_addresses,
    is_automated_local,
    parse_loose_address_list,
)
from leakguard.types import Message, QuotedBlock, QuoteKind, TextPart

FIXTURES = Path(__file__).parent / "fixtures" / "threads"


def plain(text: str) -> TextPart:
    return TextPart("text/plain", text, "utf-8", "1")


def html_part(html: str) -> TextPart:
    return TextPart("text/html", "", "utf-8", "2", html=html)


def blocks_of(text: str) -> tuple[QuotedBlock, ...]:
    return extract_quotes([plain(text)], [])


def keys(addrs: object) -> set[str]:
    return {a.key for a in addrs}  # type: ignore[attr-defined]


def all_addresses(blocks: tuple[QuotedBlock, ...]) -> set[str]:
    return {a.key for b in blocks for a in b.addresses}


# --------------------------------------------------------------------------- free text


def test_find_addresses_skips_urls_code_ids_and_local_names() -> None:
    text = (
        "clone https://user@host.example.com/repo and git@github.com:org/repo.git\n"
        "@property def x(): pass; mail root@localhost or admin@intranet\n"
        "References: <CAKx=abc$1@mail.gmail.com> <20240101123456.GA1234@host.example.com>\n"
        "see <1234567.1075855378110.JavaMail.evans@thyme> and image001.png@01D9ABCD.5E6F7A80\n"
        "retina icon@2x.png, Notes name Jane Doe/HOU/ECT@ECT\n"
        "連絡先はyamada@example.co.jpです / mailto:ann@b.org / bob@x.com: hi\n"
    )
    assert [a.addr for a in find_addresses(text)] == [
        "yamada@example.co.jp",
        "ann@b.org",
        "bob@x.com",
    ]


def test_find_addresses_exchange_routing_suffix_and_quotes() -> None:
    found = find_addresses("To: 'roger.ross@weil.com'; sstojic@gbmdc.com@SMTP@enronXgate")
    assert [a.addr for a in found] == ["roger.ross@weil.com", "sstojic@gbmdc.com"]


def test_loose_address_list_names() -> None:
    got = parse_loose_address_list(
        "Bessie, Berry <bessie.berry@acme.com>, suzanne@globex.corp <suzanne@globex.corp>; "
        '"Walter, Sheltan" <walter.sheltan@acme.com>, Nick [mailto:nicholas@globex.corp]'
    )
    assert [(a.display_name, a.addr) for a in got] == [
        ("Bessie, Berry", "bessie.berry@acme.com"),
        ("", "suzanne@globex.corp"),
        ("Walter, Sheltan", "walter.sheltan@acme.com"),
        ("Nick", "nicholas@globex.corp"),
    ]


# --------------------------------------------------------------------------- header blocks


def test_outlook_english_original_message() -> None:
    text = (
        "Please see below.\n\nAlice\nalice@city.example.lg.jp\n\n"
        "-----Original Message-----\n"
        "From: Carol Client <carol@other.co.jp>\n"
        "Sent: Monday, January 01, 2024 10:00 AM\n"
        "To: Alice <alice@city.example.lg.jp>\n"
        "Cc: Dave <dave@third.example.com>; Erin <erin@city.example.lg.jp>\n"
        "Subject: Quote request\n\n"
        "Body mentions frank@fourth.example.net.\n"
    )
    (b,) = blocks_of(text)
    assert b.kind == QuoteKind.HEADER_BLOCK
    assert b.location == "text part 1, line 6"
    assert keys(b.participants) == {
        "carol@other.co.jp",
        "alice@city.example.lg.jp",
        "dave@third.example.com",
        "erin@city.example.lg.jp",
    }
    assert "frank@fourth.example.net" in keys(b.addresses)
    # the sender's own signature above the quote is new text, not quoted material
    assert b.subject == "Quote request"
    assert b.parent is None


def test_outlook_japanese_header_only_form() -> None:
    text = (
        "お世話になっております。\n\n"
        "差出人: 山田 太郎 <yamada@partner.co.jp>\n"
        "送信日時: 2024年1月10日 9:30\n"
        "宛先: 佐藤 <sato@city.example.lg.jp>\n"
        "CC: 鈴木 <suzuki@other-corp.co.jp>\n"
        "件名: 見積もりの件\n\n"
        "本文です。\n"
    )
    (b,) = blocks_of(text)
    assert b.kind == QuoteKind.HEADER_BLOCK
    assert keys(b.participants) == {
        "yamada@partner.co.jp",
        "sato@city.example.lg.jp",
        "suzuki@other-corp.co.jp",
    }
    assert b.subject == "見積もりの件"
    assert {a.display_name for a in b.participants} >= {"山田 太郎", "鈴木"}


def test_outlook_japanese_original_message_separator_fullwidth_colon() -> None:
    text = (
        "転送します。\n"
        "-----元のメッセージ-----\n"
        "差出人：取引先 <client@kaisha.co.jp>\n"
        "宛先：tanaka@city.example.lg.jp\n"
        "件名：ご連絡\n"
    )
    (b,) = blocks_of(text)
    assert keys(b.participants) == {"client@kaisha.co.jp", "tanaka@city.example.lg.jp"}


def test_thunderbird_japanese_forward() -> None:
    text = (
        "-------- 転送メッセージ --------\n"
        "件名: \t打ち合わせ\n"
        "日付: \tMon, 1 Jan 2024 10:00:00 +0900\n"
        "差出人: \t高橋 <takahashi@vendor.example.jp>\n"
        "宛先: \tito@city.example.lg.jp\n"
        "CC: \tkato@another.example.com\n\n"
        "本文\n"
    )
    (b,) = blocks_of(text)
    assert keys(b.participants) == {
        "takahashi@vendor.example.jp",
        "ito@city.example.lg.jp",
        "kato@another.example.com",
    }


def test_gmail_japanese_forward() -> None:
    text = (
        "---------- 転送されたメッセージ ---------\n"
        "送信者: 中村 <nakamura@gmail.com>\n"
        "日付: 2024年1月1日(月) 10:00\n"
        "件名: 資料\n"
        "宛先: <kobayashi@city.example.lg.jp>\n"
        "Cc: <yoshida@corp.example.co.jp>\n"
    )
    (b,) = blocks_of(text)
    assert keys(b.participants) == {
        "nakamura@gmail.com",
        "kobayashi@city.example.lg.jp",
        "yoshida@corp.example.co.jp",
    }


def test_on_behalf_of_lines_do_not_derail() -> None:
    en = (
        "-----Original Message-----\n"
        "From: Assistant <assist@client.example.com> on behalf of Boss <boss@client.example.com>\n"
        "Sent: Tuesday\nTo: me@city.example.lg.jp\nCc: other@vendor.example.org\nSubject: x\n"
    )
    (b,) = blocks_of(en)
    assert keys(b.participants) == {
        "assist@client.example.com",
        "boss@client.example.com",
        "me@city.example.lg.jp",
        "other@vendor.example.org",
    }
    ja = (
        "秘書 <hisho@client.example.co.jp> が 部長 <bucho@client.example.co.jp> の代理で送信\n"
        "送信日時: 2024年1月10日 9:30\n"
        "宛先: me@city.example.lg.jp\n"
        "CC: third@vendor.example.org\n"
        "件名: 件\n"
    )
    (b,) = blocks_of(ja)
    assert keys(b.participants) == {
        "hisho@client.example.co.jp",
        "bucho@client.example.co.jp",
        "me@city.example.lg.jp",
        "third@vendor.example.org",
    }


def test_lotus_notes_forward_with_notes_names() -> None:
    text = (
        "FYI\n"
        "---------------------- Forwarded by Phillip K Allen/HOU/ECT on 10/16/2000 "
        "01:42 PM ---------------------------\n\n\n"
        '"Buckner, Buck" <buck.buckner@honeywell.com> on 10/12/2000 01:12:21 PM\n'
        "To: Phillip K Allen/HOU/ECT@ECT, Mike\nGrigsby/HOU/ECT@ECT\n"
        "cc:  \n"
        "Subject: FW: fixed forward\n\nbody\n"
    )
    (b,) = blocks_of(text)
    assert b.kind == QuoteKind.HEADER_BLOCK
    # Notes names are not SMTP addresses: nothing is invented from them
    assert keys(b.participants) == {"buck.buckner@honeywell.com"}
    assert b.participants[0].display_name == "Buckner, Buck"


def test_notes_reply_without_separator_and_blank_lines_in_header() -> None:
    text = (
        "ok\n\nIan Trumpower\n01/07/2002 10:18 AM\n"
        "To: Roger Ross/SV/WGM/US, 'roger.ross@weil.com'\ncc:\n\nSubject:  FW: draft\n\nhi\n"
    )
    (b,) = blocks_of(text)
    assert "roger.ross@weil.com" in keys(b.participants)


def test_yahoo_one_line_header() -> None:
    text = (
        "   ----- Forwarded Message ----- From: John Doe <john.doe@acme.com>To: "
        '"bessie.berry@acme.com" <bessie.berry@acme.com>Cc: Nicholas <nicholas@globex.corp>'
        "Sent: Tuesday, November 2, 2021, 09:26:50 AM GMT+1Subject: Integer\n body\n"
    )
    (b,) = blocks_of(text)
    assert keys(b.participants) == {
        "john.doe@acme.com",
        "bessie.berry@acme.com",
        "nicholas@globex.corp",
    }


def test_thread_of_header_blocks_nests_each_older_message() -> None:
    text = (
        "top\n\n-----Original Message-----\nFrom: b@two.example.com\nSent: 2\n"
        "To: a@one.example.com\nSubject: re\n\nmiddle\n\n"
        "-----Original Message-----\nFrom: c@three.example.com\nSent: 1\n"
        "To: b@two.example.com\nSubject: orig\n\noldest\n"
    )
    b0, b1 = blocks_of(text)
    assert b0.parent is None and b1.parent == 0
    assert keys(b1.participants) == {"c@three.example.com", "b@two.example.com"}


# --------------------------------------------------------------------------- attributions and '>'


def test_gmail_attribution_wrapped_over_two_lines() -> None:
    text = (
        "That's true!\n\nOn Wed, Oct 27, 2021 at 9:31 AM John Doe <john.doe@acme.com>\n"
        "wrote:\n\n> Unicum iter ad supremum.\n> cc'd kim@else.example.org\n"
    )
    (b,) = blocks_of(text)
    assert b.kind == QuoteKind.ATTRIBUTION
    assert not b.participants_known
    assert keys(b.participants) == {"john.doe@acme.com"}
    assert keys(b.addresses) == {"john.doe@acme.com", "kim@else.example.org"}


def test_japanese_attributions() -> None:
    gmail = "了解です。\n\n2024年1月1日(月) 10:00 山田太郎 <taro@client.example.jp>:\n\n> 本文\n"
    (b,) = blocks_of(gmail)
    assert b.kind == QuoteKind.ATTRIBUTION
    assert keys(b.participants) == {"taro@client.example.jp"}
    becky = "はい\n\n山田太郎 <taro@client.example.jp> さんは書きました:\n> 本文\n"
    (b,) = blocks_of(becky)
    assert keys(b.participants) == {"taro@client.example.jp"}


def test_apple_attribution_inside_quote() -> None:
    text = "ok\n\n> On 25 Oct 2021, at 11:43, John Doe <john.doe@acme.com> wrote:\n>\n> Hi\n"
    (b,) = blocks_of(text)
    assert b.kind == QuoteKind.ATTRIBUTION
    assert keys(b.participants) == {"john.doe@acme.com"}


def test_gt_quote_depth_is_nesting() -> None:
    text = (
        "new\n"
        "> level one x1@one.example.com\n"
        ">> level two x2@two.example.com\n"
        "> > > level three x3@three.example.com\n"
        "> back to one\n"
    )
    b1, b2, b3 = blocks_of(text)
    assert [b.kind for b in (b1, b2, b3)] == [QuoteKind.GT_QUOTE] * 3
    assert (b1.parent, b2.parent, b3.parent) == (None, 0, 1)
    assert keys(b1.addresses) == {"x1@one.example.com"}
    assert keys(b3.addresses) == {"x3@three.example.com"}


def test_forward_inside_quote_is_a_header_block_child_of_the_attribution() -> None:
    text = (
        "On Mon, Bob <bob@b.example.com> wrote:\n"
        "> see below\n"
        "> -----Original Message-----\n"
        "> From: Carol <carol@c.example.com>\n"
        "> To: bob@b.example.com\n"
        "> Subject: s\n"
        "> >> deeper dan@d.example.com\n"
    )
    attr, hdr, deep = blocks_of(text)
    assert attr.kind == QuoteKind.ATTRIBUTION and hdr.kind == QuoteKind.HEADER_BLOCK
    assert hdr.parent == 0 and deep.parent == 1
    assert keys(deep.addresses) == {"dan@d.example.com"}


def test_new_text_is_not_quoted_material() -> None:
    text = "Hi, please write to carol@other.example.com.\n\nBest,\nAlice <alice@a.example.jp>\n"
    assert blocks_of(text) == ()


def test_prose_with_colons_is_not_a_header_block() -> None:
    text = "Agenda: budget\nTo: do list\nNote: bring laptop, contact bob@x.example.com\n"
    assert blocks_of(text) == ()


# --------------------------------------------------------------------------- HTML


def test_html_gmail_quote_and_blockquote() -> None:
    html = (
        '<div dir="ltr">Thanks</div><div class="gmail_quote"><div class="gmail_attr">'
        'On Mon, Jan 1, 2024 at 10:00 AM John &lt;<a href="mailto:j@x.example.com">'
        "j@x.example.com</a>&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote">Ask <a href="mailto:kim@y.example.org">Kim</a>'
        "</blockquote></div>"
    )
    (b,) = extract_quotes([html_part(html)], [])
    assert b.kind == QuoteKind.HTML_QUOTE
    assert keys(b.participants) == {"j@x.example.com"}
    assert keys(b.addresses) == {"j@x.example.com", "kim@y.example.org"}
    assert b.location.startswith("HTML part 1")


def test_html_outlook_divrplyfwdmsg() -> None:
    html = (
        "<p>FYI</p><div id='appendonsend'></div><hr>"
        "<div id='divRplyFwdMsg'><b>From:</b> Carol &lt;carol@other.example.com&gt;<br>"
        "<b>Sent:</b> Monday<br><b>To:</b> <a href='mailto:alice@a.example.jp'>Alice</a><br>"
        "<b>Cc:</b> dave@third.example.net<br><b>Subject:</b> hi</div><div>body</div>"
    )
    (b,) = extract_quotes([html_part(html)], [])
    assert b.kind == QuoteKind.HEADER_BLOCK
    assert keys(b.participants) == {
        "carol@other.example.com",
        "alice@a.example.jp",
        "dave@third.example.net",
    }


def test_html_outlook_border_top_div_and_moz_cite() -> None:
    html = (
        "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in'>"
        "<p><b>差出人:</b> 取引先 &lt;torihiki@kaisha.example.jp&gt;<br><b>送信日時:</b> 1月1日<br>"
        "<b>宛先:</b> me@a.example.jp<br><b>件名:</b> 件</p></div><p>本文</p>"
        '<div class="moz-cite-prefix">On 1/1/24 Bob wrote:</div>'
        '<blockquote type="cite">quoted bob2@b.example.com</blockquote>'
    )
    blocks = extract_quotes([html_part(html)], [])
    assert blocks[0].kind == QuoteKind.HEADER_BLOCK
    assert "torihiki@kaisha.example.jp" in keys(blocks[0].participants)
    assert "bob2@b.example.com" in all_addresses(blocks)


def test_html_escapes_nothing_dangerous_and_survives_broken_markup() -> None:
    text = render_html_quotes("<blockquote><script>evil@x.example.com</script>a<b>b")
    assert "evil" not in text and "> ab" in text


# --------------------------------------------------------------------------- attached messages


def _message(**kw: object) -> Message:
    base: dict[str, object] = {
        "raw": b"",
        "subject": "",
        "message_id": "",
        "from_": (),
        "sender_header": None,
        "reply_to": (),
        "to": (),
        "cc": (),
        "bcc": (),
        "envelope_from": None,
        "envelope_rcpts": (),
        "text_parts": (),
        "attachments": (),
        "attached_messages": (),
        "quoted_blocks": (),
        "headers": (),
    }
    base.update(kw)
    return Message(**base)  # type: ignore[arg-type]


def test_attached_message_block_and_nested_quotes() -> None:
    from leakguard.message.addresses import make_address

    inner_parts = (plain("hello\n\nOn Mon, Zed <zed@z.example.com> wrote:\n> q y@y.example.com\n"),)
    inner = _message(
        subject="inner",
        from_=(make_address("carol@c.example.com"),),
        to=(make_address("dave@d.example.com"),),
        text_parts=inner_parts,
        quoted_blocks=extract_quotes(inner_parts, []),
    )
    blocks = extract_quotes([plain("see attached")], [inner])
    att, attr = blocks
    assert att.kind == QuoteKind.ATTACHED_MESSAGE and att.location == "attached message 1"
    assert keys(att.participants) == {"carol@c.example.com", "dave@d.example.com"}
    assert {"zed@z.example.com", "y@y.example.com"} <= keys(att.addresses)
    assert att.subject == "inner"
    assert attr.parent == 0 and attr.location.startswith("attached message 1: text part 1")


def test_parse_message_attached_rfc822_and_iso2022jp() -> None:
    inner = EmailMessage()
    inner["From"] = "取引先 <client@kaisha.example.jp>"
    inner["To"] = "me@city.example.lg.jp"
    inner["Cc"] = "other@third.example.com"
    inner["Subject"] = "見積"
    inner.set_content("詳細は担当 tanto@kaisha.example.jp まで\n", charset="iso-2022-jp")
    outer = EmailMessage()
    outer["From"] = "me@city.example.lg.jp"
    outer["To"] = "partner@partner.example.co.jp"
    outer["Subject"] = "Fwd: 見積"
    outer.set_content("転送します\n", charset="iso-2022-jp")
    outer.add_attachment(inner)
    msg = parse_message(bytes(outer))
    att = [b for b in msg.quoted_blocks if b.kind == QuoteKind.ATTACHED_MESSAGE]
    assert len(att) == 1
    assert keys(att[0].participants) == {
        "client@kaisha.example.jp",
        "me@city.example.lg.jp",
        "other@third.example.com",
    }
    assert "tanto@kaisha.example.jp" in keys(att[0].addresses)


def test_parse_message_shift_jis_outlook_forward() -> None:
    body = (
        "転送します。\r\n\r\n-----Original Message-----\r\n"
        "差出人: 山田 <yamada@client.example.co.jp>\r\n送信日時: 2024年1月10日 9:30\r\n"
        "宛先: me@city.example.lg.jp\r\nCC: 鈴木 <suzuki@rival.example.com>\r\n件名: 件\r\n"
    ).encode("shift_jis")
    raw = (
        b"From: me@city.example.lg.jp\r\nTo: x@partner.example.jp\r\nSubject: fw\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=Shift_JIS\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body
    )
    msg = parse_message(raw)
    (b,) = msg.quoted_blocks
    assert keys(b.participants) == {
        "yamada@client.example.co.jp",
        "me@city.example.lg.jp",
        "suzuki@rival.example.com",
    }


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.eml")))
def test_fixture_mails_parse_and_extract(name: str) -> None:
    msg = parse_message((FIXTURES / name).read_bytes())
    assert msg.quoted_blocks, name


# --------------------------------------------------------------------------- hostile input


def _timed(parts: list[TextPart]) -> float:
    t0 = time.process_time()
    extract_quotes(parts, [])
    return time.process_time() - t0


def test_linear_time_on_5mb_and_100k_quote_lines() -> None:
    cases = {
        "100k > lines": "".join(f"> line {i} bob{i % 50}@example.com\n" for i in range(100_000)),
        "deep staircase": "".join(">" * (i % 60) + " x@example.com\n" for i in range(100_000)),
        "one 5MB quote prefix": ">" * 5_000_000 + " a@b.example.com",
        "5MB of @": "@" * 5_000_000,
        "5MB From lines": "From: x <x@example.com>\n" * 220_000,
        "5MB header blocks": (
            "-----Original Message-----\nFrom: a@b.example.com\nSent: x\n"
            "To: c@d.example.com\nSubject: s\n\nbody e@f.example.com\n"
        )
        * 60_000,
        "5MB attribution lines": "On Mon, Bob <bob@example.com> wrote:\n> hi\n" * 120_000,
        "5MB continuation": "To: a@b.example.com,\n" + " c@d.example.com,\n" * 280_000,
    }
    for name, text in cases.items():
        assert len(text) > 3_000_000, name
        assert _timed([plain(text)]) < 5.0, name
    html = "<blockquote>" * 20_000 + "a@b.example.com" + "</blockquote>" * 20_000
    assert _timed([html_part(html)]) < 5.0


def test_block_count_is_bounded() -> None:
    text = "".join(f"On Mon, B <b{i}@example.com> wrote:\n> x\n" for i in range(5000))
    blocks = blocks_of(text)
    assert 0 < len(blocks) <= 1000
    for b in blocks:
        assert b.parent is None or 0 <= b.parent < len(blocks)


def test_garbage_never_crashes() -> None:
    import random

    rnd = random.Random(1)
    alphabet = "><@:-_=\n \tabcFromTo差出人宛先件名wrote:＞＠\u3000\x00\ud7ff"
    for _ in range(300):
        s = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 400)))
        extract_quotes([plain(s), html_part(s)], [])


@pytest.mark.parametrize(
    "local",
    [
        "noreply",
        "No-Reply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "noreply-billing",
        "MAILER-DAEMON",
        "postmaster",
        "newsletter",
        "notifications",
        "bounce",
        "bounces+1234=alice=example.com",
        "bounce-a1b2c3",
        "owner-tech-exchange",
        "tech-exchange-request",
        "tech-exchange-owner",
        "cheatsheets-unsubscribe",
        "list-bounces",
    ],
)
def test_automated_local_parts(local: str) -> None:
    assert is_automated_local(local)


@pytest.mark.parametrize(
    "local",
    [
        "info",
        "sales",
        "support",
        "customercare",
        "it-help",
        "owner",
        "request",
        "news",
        "bouncer",
        "john.owner",
        "noreplyer.smith",
        "alice",
        "postmaster.general.office.x" + "y" * 64,
    ],
)
def test_people_and_company_contacts_are_not_automated(local: str) -> None:
    assert not is_automated_local(local)


def test_bulk_flag_and_senders_of_quoted_blocks() -> None:
    from leakguard.message.quotes import is_bulk_text
    from leakguard.message.textaddr import is_personal_address, is_role_local

    news = blocks_of(
        "fyi\n\n-----Original Message-----\nFrom: News <news@shop.example.com>\n"
        "Reply-To: desk@shop.example.com\nTo: a@b.example\nSubject: s\n\n"
        "To be removed from this list, write to list@shop.example.com\n"
    )
    assert len(news) == 1 and news[0].bulk
    assert keys(news[0].senders) == {"news@shop.example.com", "desk@shop.example.com"}
    person = blocks_of(
        "fyi\n\n-----Original Message-----\nFrom: Kenji <k.sato@shop.example.com>\n"
        "To: a@b.example\nSubject: s\n\nplease call me, x@shop.example.com\n"
    )
    assert len(person) == 1 and not person[0].bulk
    # a footer in a nested quote does not make the message quoting it bulk
    nested = blocks_of(
        "On Mon, Kenji <k.sato@shop.example.com> wrote:\n> see below\n>\n"
        ">> unsubscribe here: list@shop.example.com\n"
    )
    assert nested and not nested[0].bulk
    assert is_bulk_text("配信解除はこちら") and not is_bulk_text("see you on Monday")
    assert is_role_local("customercare") and is_automated_local("emailserver")
    assert not is_role_local("john.smith") and not is_role_local("jsmith")
    assert is_personal_address(parse_loose_address_list("John Smith <info@x.example>")[0])
    assert not is_personal_address(parse_loose_address_list("Acme Support <info@x.example>")[0])
