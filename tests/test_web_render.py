"""Safe message views for the review page."""

from __future__ import annotations

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
