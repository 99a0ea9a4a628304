"""The message parser on hard cases built inline (Japanese charsets, addresses, MIME)."""

from __future__ import annotations

import base64
import time
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from leakguard.message import parse_address_list, parse_message
from leakguard.message.charsets import decode_bytes
from leakguard.message.html import html_to_text, render_html
from leakguard.message.parse import MAX_DEPTH, MAX_PARTS
from leakguard.types import Message

# ①, 髙 (IBM kanji, NEC-selected row 92) and こんにちは in JIS X 0208 as Windows writes
# ISO-2022-JP (CP50220): Python's iso2022_jp codecs reject the first two.
JIS_CP932_EXT = b"\x1b$B-!|b$3$s$K$A$O\x1b(B"
JIS_CP932_EXT_TEXT = "①髙こんにちは"


def mail(*headers: str, body: bytes | str = b"hello\r\n", eol: bytes = b"\r\n") -> bytes:
    head = eol.join(h.encode("utf-8") for h in headers)
    data = body.encode("utf-8") if isinstance(body, str) else body
    return head + eol + eol + data


def b64w(charset: str, data: bytes) -> str:
    return f"=?{charset}?B?{base64.b64encode(data).decode()}?="


def addrs(m: Message, field: str) -> list[tuple[str, str]]:
    return [(a.display_name, a.addr) for a in getattr(m, field)]


# --------------------------------------------------------------------------- Japanese charsets


def test_iso2022jp_subject_and_body_with_cp932_extensions() -> None:
    raw = mail(
        "From: a@example.jp",
        "To: b@example.jp",
        "Subject: " + b64w("ISO-2022-JP", JIS_CP932_EXT),
        "Content-Type: text/plain; charset=ISO-2022-JP",
        "Content-Transfer-Encoding: 7bit",
        body="お疲れ様です ".encode("iso2022_jp") + JIS_CP932_EXT + b"\r\n",
    )
    m = parse_message(raw)
    assert m.subject == JIS_CP932_EXT_TEXT
    assert m.text_parts[0].text == "お疲れ様です " + JIS_CP932_EXT_TEXT + "\n"
    assert m.text_parts[0].charset == "iso-2022-jp-cp932"
    assert "=?" not in m.header("Subject")  # type: ignore[operator]


def test_iso2022jp_plain_and_halfwidth_katakana() -> None:
    body = "お世話になっております。".encode("iso2022_jp") + b"\r\n" + b"\x1b(I6@6E\x1b(B\r\n"
    raw = mail("Content-Type: text/plain; charset=iso-2022-jp", body=body)
    part = parse_message(raw).text_parts[0]
    assert part.text == "お世話になっております。\nｶﾀｶﾅ\n"
    assert part.charset == "iso-2022-jp"


def test_shift_jis_label_decodes_as_cp932() -> None:
    text = "①髙﨑様 ～ ご確認ください㈱"
    raw = mail(
        "Content-Type: text/plain; charset=Shift_JIS",
        "Content-Transfer-Encoding: 8bit",
        body=text.encode("cp932"),
    )
    part = parse_message(raw).text_parts[0]
    assert part.text == text
    assert part.charset == "cp932"


def test_euc_jp_body_including_nec_row13() -> None:
    body = "東京都千代田区".encode("euc_jp") + b" \xad\xa1"  # ① in eucJP-ms
    raw = mail("Content-Type: text/plain; charset=EUC-JP", body=base64.b64encode(body))
    raw = raw.replace(b"charset=EUC-JP", b"charset=EUC-JP\r\nContent-Transfer-Encoding: base64")
    part = parse_message(raw).text_parts[0]
    assert part.text == "東京都千代田区 ①"


def test_mislabelled_charsets_degrade_gracefully() -> None:
    # UTF-8 behind a Latin-1 label, Shift_JIS behind a UTF-8 label, 8-bit behind ISO-2022-JP.
    utf8 = mail("Content-Type: text/plain; charset=iso-8859-1", body="山田です".encode())
    sjis = mail(
        "Content-Type: text/plain; charset=utf-8", body="よろしくお願いします".encode("cp932")
    )
    jis8 = mail("Content-Type: text/plain; charset=iso-2022-jp", body="ご確認ください".encode())
    bogus = mail("Content-Type: text/plain; charset=x-no-such", body="café".encode("cp1252"))
    for raw, expected in (
        (utf8, "山田です"),
        (sjis, "よろしくお願いします"),
        (jis8, "ご確認ください"),
        (bogus, "café"),
    ):
        m = parse_message(raw)
        assert m.text_parts[0].text == expected
        assert any("part 1:" in d for d in m.defects), m.defects


def test_missing_charset_is_detected() -> None:
    m = parse_message(mail("Content-Type: text/plain", body="お世話になります".encode("euc_jp")))
    assert m.text_parts[0].text == "お世話になります"
    assert m.text_parts[0].charset == "euc-jp"


def test_decode_bytes_never_raises_on_garbage() -> None:
    junk = bytes(range(256)) * 3
    for label in (None, "", "utf-8", "iso-2022-jp", "shift_jis", "euc-jp", "base64", "zlib"):
        d = decode_bytes(junk, label)
        assert isinstance(d.text, str) and d.text
    assert decode_bytes(b"\x1b$B\x1b$B$3", "iso-2022-jp").text  # broken escapes


def test_raw_8bit_headers() -> None:
    raw = (
        "From: 山田 太郎 <taro@example.co.jp>\r\nSubject: 見積書の件\r\n".encode()
        + "To: 佐藤 <sato@example.jp>\r\nCc: ".encode()
        + "鈴木 一郎 <suzuki@example.jp>".encode("cp932")
        + b"\r\n\r\nbody\r\n"
    )
    m = parse_message(raw)
    assert m.subject == "見積書の件"
    assert addrs(m, "from_") == [("山田 太郎", "taro@example.co.jp")]
    assert addrs(m, "to") == [("佐藤", "sato@example.jp")]
    assert addrs(m, "cc") == [("鈴木 一郎", "suzuki@example.jp")]
    assert any("8-bit header Cc decoded as cp932" in d for d in m.defects)


# --------------------------------------------------------------------------- addresses


def test_rfc2047_display_names() -> None:
    jis_name = "山田 太郎".encode("iso2022_jp")
    utf = "佐藤花子".encode()
    raw = mail(
        f"From: {b64w('ISO-2022-JP', jis_name)} <taro@example.co.jp>",
        # a UTF-8 name split in the middle of a character across two encoded words
        f"To: {b64w('UTF-8', utf[:4])}\r\n {b64w('UTF-8', utf[4:])} <hanako@example.jp>,"
        ' "=?utf-8?q?Doe=2C_John?=" <john@example.com>',
        "Subject: =?utf-8?q?Re=3A_=E8=A6=8B=E7=A9=8D?= =?utf-8?B?5pu4?=",
    )
    m = parse_message(raw)
    assert addrs(m, "from_") == [("山田 太郎", "taro@example.co.jp")]
    assert addrs(m, "to") == [("佐藤花子", "hanako@example.jp"), ("Doe, John", "john@example.com")]
    assert m.subject == "Re: 見積書"


def test_groups_and_undisclosed_recipients() -> None:
    m = parse_message(mail("To: undisclosed-recipients:;", "Bcc: hidden@example.com"))
    assert m.to == ()
    assert m.has_undisclosed_group
    assert addrs(m, "bcc") == [("", "hidden@example.com")]
    m2 = parse_message(mail('To: Team: a@example.com, "B" <b@example.com>;, c@example.org'))
    assert [a.addr for a in m2.to] == ["a@example.com", "b@example.com", "c@example.org"]
    assert not m2.has_undisclosed_group


def test_idn_domains_unicode_and_punycode() -> None:
    m = parse_message(mail("To: 山田 <taro@例え.jp>, Taro <TARO@XN--R8JZ45G.JP>"))
    first, second = m.to
    assert first.domain == "xn--r8jz45g.jp"
    assert first.unicode_domain == "例え.jp"
    assert second.domain == "xn--r8jz45g.jp"
    assert first.key == second.key
    assert len(m.visible_recipients) == 1


def test_duplicates_and_mixed_case_are_kept_in_headers() -> None:
    m = parse_message(
        mail("To: a@example.com, A@Example.COM", "To: b@example.com", "Cc: a@example.com")
    )
    assert [a.addr for a in m.to] == ["a@example.com", "A@example.com", "b@example.com"]
    assert [a.addr for a in m.visible_recipients] == ["a@example.com", "b@example.com"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            '"Doe, John" <j@x.com>; 山田 太郎 <t.yamada@example.co.jp>',
            [("Doe, John", "j@x.com"), ("山田 太郎", "t.yamada@example.co.jp")],
        ),
        ("John Doe [mailto:j@x.com]", [("John Doe", "j@x.com")]),
        ("j@x.com (John Doe)", [("John Doe", "j@x.com")]),
        ("山田 ＜t@x.jp＞、佐藤 ＜s@x.jp＞", [("山田", "t@x.jp"), ("佐藤", "s@x.jp")]),
        ("a@x.jp；b@x.jp", [("", "a@x.jp"), ("", "b@x.jp")]),
        (
            "Doe, John <j@x.com>; Roe, Jane <r@x.com>",
            [("Doe, John", "j@x.com"), ("Roe, Jane", "r@x.com")],
        ),
        ("'Doe, John' <j@x.com>", [("Doe, John", "j@x.com")]),
        ("j@x.com <mailto:j@x.com>", [("", "j@x.com")]),
        ("<@relay.example:user@x.com>", [("", "user@x.com")]),
        ("(outer (nested)) a@b.example", [("outer (nested)", "a@b.example")]),
        ("not an address, 山田 太郎", []),
        ('"john doe"@x.com, <"a b"@y.jp>', [("", '"john doe"@x.com'), ("", '"a b"@y.jp')]),
        ("user@[192.0.2.1]", [("", "user@[192.0.2.1]")]),
    ],
)
def test_parse_address_list_informal_forms(value: str, expected: list[tuple[str, str]]) -> None:
    found, empty_group = parse_address_list(value)
    assert [(a.display_name, a.addr) for a in found] == expected
    assert not empty_group


def test_parse_address_list_hostile_input_is_bounded() -> None:
    start = time.process_time()
    found, _ = parse_address_list("(" * 50_000 + "a@b.c")
    parse_address_list('"' * 100_000)
    many, _ = parse_address_list(", ".join(f"u{i}@example.com" for i in range(20_000)))
    assert time.process_time() - start < 2.0
    assert found == []
    assert len(many) == 10_000  # MAX_ADDRESSES


# --------------------------------------------------------------------------- envelope


def test_envelope_kept_apart_from_headers() -> None:
    raw = mail("From: a@example.jp", "To: b@example.jp")
    m = parse_message(
        raw, envelope_from="a@example.jp", envelope_rcpts=["b@example.jp", "<bcc@例え.jp>"]
    )
    assert [a.addr for a in m.envelope_rcpts] == ["b@example.jp", "bcc@xn--r8jz45g.jp"]
    assert [a.addr for a in m.to] == ["b@example.jp"]
    assert m.envelope_from is not None and m.envelope_from.addr == "a@example.jp"
    bare = parse_message(raw)
    assert bare.envelope_rcpts == () and bare.envelope_from is None
    assert parse_message(raw, envelope_from="<>").envelope_from is None


def test_headers_decoded_in_order_and_raw_unchanged() -> None:
    raw = mail(
        "Received: from x\r\n\tby y",
        "Subject: =?UTF-8?B?5LiA?=",
        "X-Custom: a",
        "x-custom: b",
        "Message-ID:  <id@example.com> ",
    )
    m = parse_message(raw)
    assert m.raw is raw
    assert m.headers == (
        ("Received", "from x\tby y"),
        ("Subject", "一"),
        ("X-Custom", "a"),
        ("x-custom", "b"),
        ("Message-ID", "<id@example.com>"),
    )
    assert m.message_id == "<id@example.com>"
    assert m.header("X-CUSTOM") == "a"


# --------------------------------------------------------------------------- MIME structure


def _nested() -> bytes:
    outer = MIMEMultipart("mixed")
    outer["From"] = "Taro <taro@example.co.jp>"
    outer["To"] = "client@example.com"
    outer["Subject"] = "nested"
    alt = MIMEMultipart("alternative")
    alt.attach(MIMEText("プレーン本文", "plain", "utf-8"))
    related = MIMEMultipart("related")
    related.attach(MIMEText("<p>HTML <b>本文</b></p>", "html", "utf-8"))
    related.attach(MIMEApplication(b"\x89PNG" + b"\0" * 100, "png", Name="logo.png"))
    alt.attach(related)
    outer.attach(alt)
    pdf = MIMEApplication(b"%PDF-1.4" + bytes(range(256)) * 40, "pdf")
    pdf.add_header("Content-Disposition", "attachment", filename=("utf-8", "", "見積書.pdf"))
    outer.attach(pdf)
    return outer.as_bytes()


def test_nested_multipart_paths_text_and_attachments() -> None:
    raw = _nested()
    m = parse_message(raw)
    assert [(t.content_type, t.path, t.text) for t in m.text_parts] == [
        ("text/plain", "1.1", "プレーン本文"),
        ("text/html", "1.2.1", "HTML 本文"),
    ]
    assert m.text_parts[1].html == "<p>HTML <b>本文</b></p>"
    names = [(a.filename, a.content_type, a.path, a.disposition) for a in m.attachments]
    assert names == [
        ("logo.png", "application/png", "1.2.2", ""),
        ("見積書.pdf", "application/pdf", "2", "attachment"),
    ]
    # size is the encoded (base64) payload length as it stands in the raw bytes
    pdf_b64 = base64.encodebytes(b"%PDF-1.4" + bytes(range(256)) * 40)
    assert m.attachments[1].size in (len(pdf_b64), len(pdf_b64) - 1)
    assert m.defects == ()


def test_rfc2047_attachment_filename() -> None:
    name = b64w("ISO-2022-JP", "請求書.xlsx".encode("iso2022_jp"))
    body = (
        b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\n"
        b'Content-Type: application/octet-stream; name="' + name.encode() + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n"
    )
    m = parse_message(mail('Content-Type: multipart/mixed; boundary="b"', body=body))
    assert [a.filename for a in m.attachments] == ["請求書.xlsx"]
    assert m.attachments[0].size == 4


def test_html_only_mail() -> None:
    html = (
        "<html><head><style>p {color: red}</style><title>t</title></head><body>"
        "<div>山田様</div><div>いつもお世話になっております。<br>よろしくお願いします。</div>"
        "<script>alert('x')</script><table><tr><td>電話</td><td>03-1234-5678</td></tr></table>"
        '<blockquote class="gmail_quote">&gt; 以前のメール &amp; 引用</blockquote></body></html>'
    )
    raw = mail(
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        body=base64.encodebytes(html.encode()),
    )
    part = parse_message(raw).text_parts[0]
    assert part.content_type == "text/html"
    assert part.html == html
    assert part.text == (
        "山田様\nいつもお世話になっております。\nよろしくお願いします。\n"
        "電話 03-1234-5678\n> 以前のメール & 引用"
    )


def test_html_charset_from_meta_when_mime_label_missing() -> None:
    html = '<html><head><meta charset="shift_jis"></head><body>お知らせ</body></html>'
    part = parse_message(mail("Content-Type: text/html", body=html.encode("cp932"))).text_parts[0]
    assert part.text == "お知らせ"


def test_html_rendering_keeps_lines() -> None:
    assert html_to_text("a<br>b<div>c</div>d<p>e</p>") == "a\nb\nc\nd\ne"
    assert html_to_text("<pre>&gt; one\n&gt; two</pre>") == "> one\n> two"
    assert html_to_text("<div>x</div><div><br></div><div>y</div>") == "x\n\ny"
    assert html_to_text("山田\u3000太郎  <b>様</b>") == "山田\u3000太郎 様"


def test_hostile_html_is_bounded() -> None:
    for hostile in (
        "<div>" * 100_000 + "deep",
        "<a><b><i><u><s>" * 5_000 + "fmt",
        "<div " + " ".join(f"a{i}=1" for i in range(20_000)) + ">attrs",
    ):
        start = time.process_time()
        text, defect = render_html(hostile)
        assert time.process_time() - start < 1.0
        assert text.endswith(("deep", "fmt", "attrs"))
        assert "rendered without structure" in defect


def test_attached_message_with_its_own_recipients() -> None:
    inner = mail(
        "From: partner <p@partner.example>",
        "To: 顧客 <customer@client.example>, other@third.example",
        "Subject: =?UTF-8?B?5YWD44Gu5Lu25ZCN?=",
        "Content-Type: text/plain; charset=utf-8",
        body="元のメール本文".encode(),
    )
    body = (
        b"--XX\r\nContent-Type: text/plain\r\n\r\nFYI\r\n--XX\r\n"
        b"Content-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--XX--\r\n"
    )
    outer = mail(
        "From: me@example.jp",
        "To: boss@example.jp",
        'Content-Type: multipart/mixed; boundary="XX"',
        body=body,
    )
    m = parse_message(outer)
    assert [a.addr for a in m.to] == ["boss@example.jp"]
    assert len(m.attached_messages) == 1
    att = m.attached_messages[0]
    assert att.subject == "元の件名"
    assert addrs(att, "to") == [("顧客", "customer@client.example"), ("", "other@third.example")]
    assert att.text_parts[0].text == "元のメール本文"
    assert att.raw == inner
    assert [a.content_type for a in m.attachments] == ["message/rfc822"]
    assert [t.text for t in m.text_parts] == ["FYI"]  # the attached body stays with it


def test_base64_encoded_attached_message_and_rfc822_headers() -> None:
    inner = mail("From: x@a.example", "To: y@b.example", "Subject: inner")
    body = (
        b"--Q\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(inner)
        + b"--Q\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"From: z@c.example\r\nTo: w@d.example\r\n"
        b"--Q--\r\n"
    )
    m = parse_message(mail('Content-Type: multipart/report; boundary="Q"', body=body))
    assert [x.subject for x in m.attached_messages] == ["inner", ""]
    assert [a.addr for a in m.attached_messages[1].to] == ["w@d.example"]


@pytest.mark.parametrize("eol", [b"\n", b"\r"])
def test_lf_and_cr_only_line_endings(eol: bytes) -> None:
    def build(e: bytes) -> bytes:
        body = e.join(
            [
                b"--b",
                b"Content-Type: text/plain; charset=utf-8",
                b"",
                "一行目".encode(),
                "二行目".encode(),
                b"--b",
                b"Content-Type: application/pdf",
                b"Content-Transfer-Encoding: base64",
                b"",
                b"QUJD",
                b"--b--",
                b"",
            ]
        )
        return mail(
            "From: a@x.example",
            "To: b@y.example",
            "Subject: =?UTF-8?B?5Lu25ZCN?=",
            "Content-Type: multipart/mixed;",
            ' boundary="b"',  # a folded header line
            body=body,
            eol=e,
        )

    raw = build(eol)
    assert (b"\n" in raw) == (eol == b"\n") and (b"\r" in raw) == (eol == b"\r")
    crlf = parse_message(build(b"\r\n"))
    other = parse_message(raw)
    for m in (crlf, other):
        assert m.subject == "件名"
        assert [a.addr for a in m.to] == ["b@y.example"]
        assert [t.text for t in m.text_parts] == ["一行目\n二行目"]
        assert [(a.content_type, a.size) for a in m.attachments] == [("application/pdf", 4)]
        assert m.defects == ()


def test_deep_multipart_nesting_is_bounded() -> None:
    depth = 500
    opens = b"".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode()
        for i in range(depth)
    )
    raw = b"From: a@x.example\r\n" + opens + b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    start = time.process_time()
    m = parse_message(raw)
    assert time.process_time() - start < 1.0
    assert any(f"deeper than {MAX_DEPTH}" in d for d in m.defects)
    assert not any(d.startswith("internal-error") for d in m.defects)


def test_deep_attached_message_nesting_is_bounded() -> None:
    raw = b"Subject: leaf\r\n\r\nleaf\r\n"
    for i in range(200):
        raw = f"Subject: level {i}\r\nContent-Type: message/rfc822\r\n\r\n".encode() + raw
    m = parse_message(raw)
    levels = 0
    cur = m
    while cur.attached_messages:
        cur = cur.attached_messages[0]
        levels += 1
    assert levels == MAX_DEPTH
    assert any("not parsed" in d for d in cur.defects)


def test_too_many_parts_is_bounded() -> None:
    body = (
        b"".join(b"--p\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(5000))
        + b"--p--\r\n"
    )
    m = parse_message(mail('Content-Type: multipart/mixed; boundary="p"', body=body))
    assert len(m.text_parts) < MAX_PARTS
    assert any(f"more than {MAX_PARTS}" in d for d in m.defects)


def test_large_attachment_is_not_decoded_and_parse_is_fast() -> None:
    payload = base64.encodebytes(bytes(range(256)) * 15_000).replace(b"\n", b"\r\n")  # ~5 MB
    body = (
        b"--z\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n--z\r\n"
        b"Content-Type: application/zip\r\nContent-Disposition: attachment; filename=a.zip\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + payload + b"--z--\r\n"
    )
    raw = mail("To: x@example.com", 'Content-Type: multipart/mixed; boundary="z"', body=body)
    assert len(raw) > 5_000_000
    parse_message(raw)
    start = time.process_time()
    m = parse_message(raw)
    elapsed = time.process_time() - start
    assert m.attachments[0].size == len(payload) - 2  # the CRLF before the delimiter excluded
    assert m.attachments[0].filename == "a.zip"
    assert elapsed < 0.05, elapsed


def test_broken_input_never_raises() -> None:
    samples = [
        b"",
        b"\r\n\r\n",
        b"no headers at all",
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
        b'Content-Type: multipart/mixed; boundary="q"\r\n\r\n'
        b"--q\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@=\r\n",
        b"Content-Type: text/plain; charset*=utf-8''%E3%81%82\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=E3=81=\r\n=82=ZZ\r\n",
        b"Subject: =?utf-8?B?broken base64?= =?x-unknown?Q?=FF?=\r\n\r\n",
        b'To: <<<>>>,,,;;;:::"\r\n\r\n',
        b" leading continuation\r\nFrom a@b Sat Jan 1\r\n\r\n",
        bytes(range(256)) * 20,
    ]
    for raw in samples:
        m = parse_message(raw)
        assert isinstance(m, Message)
        assert not any(d.startswith("internal-error") for d in m.defects), (raw[:40], m.defects)


# --------------------------------------------------------------------------- header sections that
# other software reads differently must not hide recipients from the checks


def test_bare_cr_does_not_end_a_crlf_header_section_and_counts_as_uninspected() -> None:
    to = ", ".join(f"u{i}@c{i}.example" for i in range(12))
    raw = ("From: a@city.example.lg.jp\r\nSubject: x\r\r" + f"To: {to}\r\n\r\nbody\r\n").encode()
    msg = parse_message(raw)
    # The MTA keeps "\r\rTo: ..." inside the Subject line; a mail client may show a To line.
    assert msg.to == ()
    assert msg.uninspected_parts == 1
    assert any("bare CR" in d for d in msg.defects)


def test_header_fields_beyond_the_limit_count_as_uninspected() -> None:
    to = ", ".join(f"u{i}@c{i}.example" for i in range(12))
    raw = (
        "From: a@city.example.lg.jp\r\n" + "X-Pad: y\r\n" * 2100 + f"To: {to}\r\n\r\nbody\r\n"
    ).encode()
    msg = parse_message(raw)
    assert msg.to == ()
    assert msg.uninspected_parts == 1


def test_cr_only_files_still_parse() -> None:
    msg = parse_message(b"From: a@x.example\rTo: b@y.example\rSubject: mac\r\rbody line\r")
    assert [a.addr for a in msg.to] == ["b@y.example"]
    assert msg.subject == "mac"
    assert msg.uninspected_parts == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a(b)@ext.example", ["a@ext.example"]),
        ("Boss <a(c)@ext.example>", ["a@ext.example"]),
        ("a@(x)ext.example", ["a@ext.example"]),
        ("a @ ext.example, c@d.example", ["a@ext.example", "c@d.example"]),
        ("John (Sales) Doe <j@x.example>", ["j@x.example"]),
        ("j@x.com (John Doe)", ["j@x.com"]),
        ("a@b.example c@d.example", ["a@b.example", "c@d.example"]),
    ],
)
def test_comments_and_spaces_inside_an_address_do_not_hide_it(
    value: str, expected: list[str]
) -> None:
    # RFC 5322 allows CFWS between the atoms of an addr-spec; mail clients display the
    # address, so the checks (and the Bcc rewrite, which uses the same parser) must see it.
    addrs, _ = parse_address_list(value)
    assert [a.addr for a in addrs] == expected


def test_format_flowed_is_undone() -> None:
    """RFC 3676 (Thunderbird, Apple Mail): a number or address wrapped at a soft break is
    read whole; quote depths never join; DelSp=yes deletes the soft break's space."""
    tb = (
        b"From: a@city.example.lg.jp\r\nTo: b@x.example\r\nSubject: s\r\n"
        b"Content-Type: text/plain; charset=UTF-8; format=flowed\r\n\r\n"
        + "個人番号 1234 5678 \r\n9018 です\r\n".encode()
        + b"> quoted line that \r\n> continues\r\nnot joined\r\n-- \r\nsig\r\n"
    )
    text = parse_message(tb).text_parts[0].text
    assert "個人番号 1234 5678 9018 です" in text
    assert "> quoted line that continues" in text
    assert "\nnot joined\n-- \nsig" in text
    apple = (
        b"From: a@city.example.lg.jp\r\nTo: b@x.example\r\nSubject: s\r\n"
        b"Content-Type: text/plain; charset=UTF-8; format=flowed; delsp=yes\r\n\r\n"
        b"yamada@exam \r\nple.co.jp\r\n"
    )
    assert "yamada@example.co.jp" in parse_message(apple).text_parts[0].text
    fixed = apple.replace(b"; format=flowed; delsp=yes", b"")
    assert "yamada@example.co.jp" not in parse_message(fixed).text_parts[0].text
