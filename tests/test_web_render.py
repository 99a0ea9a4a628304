"""Safe message views for the review page."""

from __future__ import annotations

import base64

from leakguard.web.render import message_view, sanitize_html


def test_html_only_mail_gets_a_text_view_and_sanitised_html() -> None:
    raw = (
        b"Subject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p>Hello <b>there</b></p><script>alert(1)</script><img src=http://t.example/p>"
    )
    v = message_view(raw)
    assert "Hello" in v.text and "alert" not in v.text
    assert "<b>there</b>" in v.html and "script" not in v.html and "src" not in v.html


def test_sanitiser_drops_links_styles_and_handlers() -> None:
    out = sanitize_html(
        '<a href="https://x.example" onclick="y()" style="position:fixed">a</a>'
        "<table><tr><td colspan=2 onmouseover=z()>c</td></tr></table>"
    )
    assert out.count("href") == 0 and "onclick" not in out and "style" not in out
    assert "onmouseover" not in out and 'colspan="2"' in out


def test_hostile_bytes_never_raise() -> None:
    for raw in (
        b"",
        b"\xff\xfe\x00" * 5000,
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n" + b"--a\r\n" * 5000,
        b"Content-Type: text/plain; charset=x-unknown\r\n\r\n\x8e\xa1",
    ):
        v = message_view(raw)
        assert isinstance(v.text, str)


def test_japanese_mail_with_cp932_extensions_is_shown_as_written() -> None:
    # ISO-2022-JP as Japanese clients send it, with a circled digit (NEC row 13, a CP932
    # extension that Python's strict iso-2022-jp codec rejects): the review page must show
    # the text as written, not mojibake or an empty view.
    kanji = "見積書を送付します".encode("iso-2022-jp")  # ESC $ B ... ESC ( B
    body = b"\x1b$B\x2d\x21" + kanji[3:] + b"\r\n"  # "①見積書を送付します"
    raw = (
        b"From: a@city.example.lg.jp\r\nTo: b@x.example\r\n"
        b"Subject: =?ISO-2022-JP?B?" + base64.b64encode("見積".encode("iso-2022-jp")) + b"?=\r\n"
        b"Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n" + body
    )
    v = message_view(raw)
    assert "①見積書を送付します" in v.text
    assert ("Subject", "見積") in v.headers
