"""HTML alternatives of a text/plain part: analysed only when they can show something new.

A multipart/alternative HTML part normally repeats its text/plain alternative, so its quote
analysis is skipped when every address it holds is already in a block found in the plain
part (or is outside the plain part's blocks and, in the HTML, before any quote markup).
These tests pin both sides of that gate: what is skipped loses nothing, and an HTML part
that carries more than its plain alternative is still analysed in full.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from leakguard.message.parse import parse_message
from leakguard.message.textaddr import address_keys, find_addresses, parse_loose_address_list
from leakguard.types import Message, QuotedBlock

SENDER = "kazuya.sato@city.example.lg.jp"

FWD_PLAIN = (
    "山田先生\n\n下記の件、ご確認ください。\n\n佐藤\n\n"
    "差出人: 木村 健二 <kenji.kimura@kensetsu.example>\n"
    "送信日時: 2026年11月20日 14:03\n"
    "宛先: 佐藤 一也 <kazuya.sato@city.example.lg.jp>\n"
    "CC: 小林 <kobayashi@kensetsu.example>\n"
    "件名: 校舎改修工事の工程について\n\n"
    "工程表をお送りします。\n"
)
FWD_HTML = (
    "<html><body><div>山田先生</div><div><br></div><div>下記の件、ご確認ください。</div>"
    "<div><br></div><div>佐藤</div>"
    '<div id="divRplyFwdMsg"><b>差出人:</b> 木村 健二 &lt;kenji.kimura@kensetsu.example&gt;'
    "<br><b>送信日時:</b> 2026年11月20日 14:03<br>"
    '<b>宛先:</b> 佐藤 一也 &lt;<a href="mailto:kazuya.sato@city.example.lg.jp">'
    "kazuya.sato@city.example.lg.jp</a>&gt;<br>"
    "<b>CC:</b> 小林 &lt;kobayashi@kensetsu.example&gt;<br>"
    "<b>件名:</b> 校舎改修工事の工程について</div><div>工程表をお送りします。</div>"
    "</body></html>"
)
FWD_KEYS = {
    "kenji.kimura@kensetsu.example",
    "kazuya.sato@city.example.lg.jp",
    "kobayashi@kensetsu.example",
}

REPLY_PLAIN = (
    "Thanks, I will ask her.\n\n--\nKazuya Sato kazuya.sato@city.example.lg.jp\n\n"
    "On Mon, Jan 1, 2024 at 10:00 AM John <j@x.example.com> wrote:\n"
    "> Ask Kim (kim@y.example.org) about the schedule.\n"
)


def _reply_html(signature_inside_quote: bool = False) -> str:
    signature = "<div>--<br>Kazuya Sato kazuya.sato@city.example.lg.jp</div>"
    quote = (
        '<div class="gmail_quote">On Mon, Jan 1, 2024 at 10:00 AM John &lt;'
        '<a href="mailto:j@x.example.com">j@x.example.com</a>&gt; wrote:<br>'
        '<blockquote class="gmail_quote">Ask Kim (kim@y.example.org) about the schedule.'
        + (signature if signature_inside_quote else "")
        + "</blockquote></div>"
    )
    own = "<div>Thanks, I will ask her.</div>"
    return own + ("" if signature_inside_quote else signature) + quote


def _mail(plain: str | None, html: str | None, *, html_first: bool = False) -> Message:
    msg = EmailMessage()
    msg["From"] = f"Kazuya Sato <{SENDER}>"
    msg["To"] = "yamada@school.example.jp"
    msg["Subject"] = "FW: 工程について"
    if plain is not None and html is not None:
        first, second = (html, "html"), (plain, "plain")
        if not html_first:
            first, second = second, first
        msg.set_content(first[0], subtype=first[1])
        msg.add_alternative(second[0], subtype=second[1])
    elif plain is not None:
        msg.set_content(plain)
    else:
        assert html is not None
        msg.set_content(html, subtype="html")
    return parse_message(msg.as_bytes())


def _html_blocks(m: Message) -> list[QuotedBlock]:
    return [b for b in m.quoted_blocks if b.location.startswith("HTML part")]


def _addresses(blocks: object) -> set[str]:
    return {a.key for b in blocks for a in b.addresses}  # type: ignore[attr-defined]


def test_mirrored_html_alternative_is_not_analysed_and_loses_nothing() -> None:
    both = _mail(FWD_PLAIN, FWD_HTML)
    html_only = _mail(None, FWD_HTML)
    assert [p.content_type for p in both.text_parts] == ["text/plain", "text/html"]
    assert _html_blocks(both) == []
    assert _addresses(both.quoted_blocks) == FWD_KEYS
    # what the HTML analysis finds on its own is exactly what the plain blocks hold
    assert _addresses(html_only.quoted_blocks) == FWD_KEYS
    assert {a.key for b in both.quoted_blocks for a in b.participants} == {
        a.key for b in html_only.quoted_blocks for a in b.participants
    }


def test_html_alternative_with_more_than_a_truncated_plain_part_is_analysed() -> None:
    m = _mail("山田先生\n\n下記の件、ご確認ください。\n\n佐藤\n", FWD_HTML)
    blocks = _html_blocks(m)
    assert blocks, "the forwarded header block exists only in the HTML part"
    assert _addresses(blocks) == FWD_KEYS
    assert blocks[0].location.startswith("HTML part 1")


def test_html_alternative_with_one_extra_address_is_analysed() -> None:
    html = FWD_HTML.replace(
        "小林 &lt;kobayashi@kensetsu.example&gt;",
        "小林 &lt;kobayashi@kensetsu.example&gt;; 中村 &lt;nakamura&#64;other.example&gt;",
    )
    m = _mail(FWD_PLAIN, html)
    assert "nakamura@other.example" in _addresses(_html_blocks(m))
    assert "nakamura@other.example" in _addresses(m.quoted_blocks)


def test_signature_before_the_html_quote_does_not_force_analysis() -> None:
    m = _mail(REPLY_PLAIN, _reply_html())
    assert _html_blocks(m) == []
    (b,) = m.quoted_blocks
    assert b.location.startswith("text part 1")
    assert {a.key for a in b.participants} == {"j@x.example.com"}
    assert _addresses([b]) == {"j@x.example.com", "kim@y.example.org"}


def test_address_outside_plain_quotes_but_inside_an_html_quote_is_analysed() -> None:
    # the plain part shows the address in the new text; the HTML puts it inside the quote
    m = _mail(REPLY_PLAIN, _reply_html(signature_inside_quote=True))
    html_blocks = _html_blocks(m)
    assert html_blocks
    assert "kazuya.sato@city.example.lg.jp" in _addresses(html_blocks)


def test_plain_part_that_lost_the_quote_structure_keeps_the_html_analysis() -> None:
    # a plain alternative flattened without '>' markers or attribution
    plain = "Thanks, I will ask her.\n\nAsk Kim (kim@y.example.org) about the schedule.\n"
    html = (
        "<div>Thanks, I will ask her.</div><blockquote>Ask Kim (kim@y.example.org) about "
        "the schedule.</blockquote>"
    )
    m = _mail(plain, html)
    assert not [b for b in m.quoted_blocks if b.location.startswith("text part")]
    assert _addresses(_html_blocks(m)) == {"kim@y.example.org"}


def test_html_before_its_plain_alternative_is_analysed() -> None:
    m = _mail(FWD_PLAIN, FWD_HTML, html_first=True)
    assert [p.content_type for p in m.text_parts] == ["text/html", "text/plain"]
    assert _addresses(_html_blocks(m)) == FWD_KEYS


def test_html_beside_plain_in_multipart_mixed_is_analysed() -> None:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = "yamada@school.example.jp"
    msg.set_content(FWD_PLAIN)
    msg.add_attachment(FWD_HTML, subtype="html", disposition="inline")
    m = parse_message(msg.as_bytes())
    assert [p.content_type for p in m.text_parts] == ["text/plain", "text/html"]
    assert _addresses(_html_blocks(m)) == FWD_KEYS


def test_address_keys_covers_what_the_finders_report() -> None:
    text = (
        "Jane <Jane@X.Example.com>, https://user@host.example.com/repo git@github.com:o/r\n"
        "References: <CAKx=abc$1@mail.gmail.com>; 連絡先はyamada@example.co.jpです\n"
        "a..b@x.example.com icon@2x.png root@localhost 全角＠は jane＠example.org\n"
    )
    found = address_keys(text)
    assert {a.key for a in find_addresses(text)} <= found
    for line in text.splitlines():
        assert {a.key for a in parse_loose_address_list(line)} <= found
    # context filters are not applied; the token's own checks are
    assert "git@github.com" in found
    assert "jane@x.example.com" in found
    assert not {"a..b@x.example.com", "icon@2x.png", "root@localhost"} & found
    assert "user@host.example.com" not in found  # never a match start after '/'


def test_address_keys_far_apart_and_merged_windows() -> None:
    text = "x" * 5000 + " one@a.example.com " + "y " * 40 + "two@b.example.com " + "z" * 5000
    assert address_keys(text) == {"one@a.example.com", "two@b.example.com"}
    assert address_keys("no at sign here") == set()


def test_address_keys_is_linear_on_hostile_text() -> None:
    hostile = [
        "@" * 200_000,
        ("a" * 60 + "@") * 4_000,
        ("a@" + "b." * 300) * 500,
        "x" * 300_000 + "@example.com",
    ]
    for text in hostile:
        start = time.process_time()
        address_keys(text)
        assert time.process_time() - start < 1.0, text[:20]


# --------------------------------------------------------------------------- hostile HTML


def _deep_html_mail(depth: int) -> bytes:
    fwd = (
        "-----Original Message-----<br>From: Carol &lt;carol@client-b.example.com&gt;<br>"
        "Sent: Monday<br>To: kazuya.sato@city.example.lg.jp<br>Subject: terms<br><br>body"
    )
    html = "<div>" * depth + fwd + "</div>" * depth
    return (
        f"From: {SENDER}\r\nTo: bob@partner.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n" + html
    ).encode()


def test_hazardous_html_is_analysed_from_its_flat_text_not_walked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from leakguard.message import quotes

    walked: list[int] = []
    real = quotes.render_html_quotes

    def spy(html: str) -> str:
        walked.append(len(html))
        return real(html)

    monkeypatch.setattr(quotes, "render_html_quotes", spy)
    # 8,000 nested <div>s: the parser renders it flat and records why
    msg = parse_message(_deep_html_mail(8000))
    assert any("rendered without structure" in d for d in msg.defects)
    assert walked == []
    # the forwarded header block is still found in the flat text
    (blk,) = msg.quoted_blocks
    assert blk.location == "HTML part 1, line 1"
    assert {a.key for a in blk.addresses} == {
        "carol@client-b.example.com",
        "kazuya.sato@city.example.lg.jp",
    }
    # ordinary nesting is still walked for its quote markup
    shallow = parse_message(_deep_html_mail(20))
    assert not any("rendered without structure" in d for d in shallow.defects)
    assert len(walked) == 1
    assert [a.key for a in shallow.quoted_blocks[0].addresses] == [a.key for a in blk.addresses]


def test_deeply_nested_html_quote_extraction_is_fast() -> None:
    raw = _deep_html_mail(8000)
    msg = parse_message(raw)
    best = min(_timed(lambda: _reextract(msg)) for _ in range(3))
    assert best < 0.03, f"quote extraction of 8,000 nested divs took {best * 1000:.1f} ms"


def _reextract(msg: Message) -> tuple[QuotedBlock, ...]:
    from leakguard.message.quotes import extract_quotes

    return extract_quotes(msg.text_parts, msg.attached_messages)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
