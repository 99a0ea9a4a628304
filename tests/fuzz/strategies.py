"""Hypothesis strategies for hostile mail: MIME trees, headers and charsets.

Shared by the bounded CI run (``tests/fuzz/test_fuzz_steps.py``, fixed seed) and the long
run (``make fuzz``). Every mail is built from parts a real attacker would combine: broken
base64/QP, HTML bombs, long folded header sections, quote bombs, deep nesting, many
addresses, RFC 2047 and RFC 2231 pieces, NUL and control bytes, odd charsets (utf-7).
"""

from __future__ import annotations

import base64

from hypothesis import strategies as st

CHARSETS = (
    "utf-8",
    "iso-2022-jp",
    "shift_jis",
    "cp932",
    "euc-jp",
    "utf-7",
    "iso-8859-1",
    "x-unknown",
    "",
)
CTES = ("7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "")
JA_TEXT = (
    "お世話になっております。山田です。",
    "個人番号 1234 5678 9012 を記載します",
    "送信　しないでください",
    "株式会社みらい建設 採用ご担当者様",
    "〒100-0001 東京都千代田区千代田1-1 電話 03-1234-5678",
)
ADDRESSES = (
    "yamada@city.example.lg.jp",
    "info@company01.example",
    "=?UTF-8?B?5bGx55Sw?= <bob@partner.example.co.jp>",
    '"a@b.example" <c@d.example>',
    "ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｃｏ．ｊｐ",
    "undisclosed-recipients:;",
    "x@xn--r8jz45g.jp",
    "(comment) a @ b.example",
)


def _encode(text: str, charset: str) -> bytes:
    try:
        return text.encode(charset or "utf-8", "replace")
    except LookupError:
        return text.encode("utf-8", "surrogateescape")


@st.composite
def text_bodies(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(("plain", "quote_bomb", "deep_quote", "ja", "random", "many")))
    if kind == "quote_bomb":
        n = draw(st.integers(1, 3000))
        return "".join(f"{'>' * (i % 50)} On Mon, X <x{i}@y.example> wrote:\n" for i in range(n))
    if kind == "deep_quote":
        return ">" * draw(st.integers(100, 8000)) + " deep\n"
    if kind == "ja":
        return "\n".join(draw(st.lists(st.sampled_from(JA_TEXT), min_size=1, max_size=30)))
    if kind == "many":
        n = draw(st.integers(1, 2000))
        return ", ".join(f"user{i}@org{i % 97}.example" for i in range(n))
    if kind == "random":
        return draw(st.text(max_size=2000))
    return "Hello,\nplease find the report.\n-- \nTaro\n"


@st.composite
def html_bodies(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(("nested", "blockquotes", "wide", "plain", "broken")))
    n = draw(st.integers(1, 20000))
    if kind == "nested":
        return "<div>" * n + "x" + "</div>" * (n // 2)
    if kind == "blockquotes":
        return "<blockquote>" * min(n, 5000) + "送信" + "</blockquote>" * min(n, 5000)
    if kind == "wide":
        return "<table>" + "<tr><td>a@b.example</td></tr>" * min(n, 20000) + "</table>"
    if kind == "broken":
        return "<p>" + draw(st.text(max_size=500)) + "<scr<script>ipt>x</p"
    return "<p>Hello <b>world</b></p>"


@st.composite
def leaf_parts(draw: st.DrawFn) -> bytes:
    ctype = draw(
        st.sampled_from(
            ("text/plain", "text/html", "application/pdf", "message/rfc822", "text/calendar")
        )
    )
    charset = draw(st.sampled_from(CHARSETS))
    cte = draw(st.sampled_from(CTES))
    if ctype == "text/html":
        payload = _encode(draw(html_bodies()), charset)
    elif ctype == "message/rfc822":
        payload = b"From: a@b.example\r\nTo: c@d.example\r\n\r\n" + _encode(
            draw(text_bodies()), "utf-8"
        )
    elif ctype == "application/pdf":
        payload = b"%PDF-1.4\n" + draw(st.binary(max_size=3000))
    else:
        payload = _encode(draw(text_bodies()), charset)
    if cte == "base64":
        payload = base64.encodebytes(payload)
        if draw(st.booleans()):  # broken base64: junk, missing padding, cut
            payload = payload[: max(1, len(payload) - draw(st.integers(0, 7)))] + b"!*\xff"
    elif cte == "quoted-printable":
        payload = payload.replace(b"=", b"=3D")
        if draw(st.booleans()):
            payload += b"=\r\n=ZZ=4"
    name = draw(st.sampled_from(("", "a.pdf", "=?UTF-8?B?5pu46aGe?=.pdf", "x" * 300)))
    params = f'; charset="{charset}"' if charset else ""
    if draw(st.booleans()):  # RFC 2231 continuations, sometimes broken
        params += "; name*0*=utf-8''%E6%9B%B8; name*1*=%E9%A1%9E.pdf; name*5=x"
    head = f"Content-Type: {ctype}{params}\r\n"
    if cte:
        head += f"Content-Transfer-Encoding: {cte}\r\n"
    if name:
        head += f'Content-Disposition: attachment; filename="{name}"\r\n'
    return head.encode() + b"\r\n" + payload


@st.composite
def mime_trees(draw: st.DrawFn, depth: int = 0) -> bytes:
    if depth >= 3 or draw(st.integers(0, 3)) == 0:
        return draw(leaf_parts())
    boundary = f"b{depth}{draw(st.integers(0, 999))}"
    sub = draw(st.sampled_from(("mixed", "alternative", "related", "digest")))
    kids = draw(st.lists(mime_trees(depth + 1), min_size=0, max_size=4))
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + k + b"\r\n" for k in kids)
    if draw(st.booleans()):
        body += b"--" + boundary.encode() + b"--\r\n"
    return f'Content-Type: multipart/{sub}; boundary="{boundary}"\r\n\r\n'.encode() + body


@st.composite
def header_sections(draw: st.DrawFn) -> bytes:
    to = draw(st.lists(st.sampled_from(ADDRESSES), min_size=0, max_size=6))
    lines = [
        "From: Taro <yamada@city.example.lg.jp>",
        "To: " + ", ".join(to),
        "Subject: " + draw(st.sampled_from(("=?ISO-2022-JP?B?GyRCJDMkcxsoQg==?=", "re: x", ""))),
        "Message-ID: <fuzz@city.example.lg.jp>",
    ]
    extra = draw(st.sampled_from(("none", "folded_bomb", "many_fields", "control")))
    if extra == "folded_bomb":
        lines.append("Cc: a@b.example," + ",\r\n\tc@d.example" * draw(st.integers(1, 60000)))
    elif extra == "many_fields":
        lines += [f"X-F{i}: {i}" for i in range(draw(st.integers(1, 5000)))]
    elif extra == "control":
        lines.append("X-C: a\x07\x1b]0;title\x07" + "\u200b")
    return ("\r\n".join(lines) + "\r\nMIME-Version: 1.0\r\n").encode("utf-8", "surrogateescape")


@st.composite
def hostile_mails(draw: st.DrawFn) -> bytes:
    raw = draw(header_sections()) + draw(mime_trees())
    mutation = draw(st.sampled_from(("none", "flip", "truncate", "nul", "crlf")))
    if mutation == "flip" and raw:
        i = draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1 :]
    elif mutation == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif mutation == "nul":
        raw = raw.replace(b"\r\n", b"\r\n\x00", 3)
    elif mutation == "crlf":
        raw = raw.replace(b"\r\n", draw(st.sampled_from((b"\n", b"\r", b"\r\r\n"))))
    return raw
