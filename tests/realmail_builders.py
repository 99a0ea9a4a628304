"""Build mails the way real clients write them (charsets, transfer encodings, headers).

Shared by the recipients/threads tests of issue 8. Only the stdlib ``email`` package encodes,
so the bytes are what a standards-following client (or an in-house tool) sends.
"""

from __future__ import annotations

import base64
import email.utils
import quopri
from collections.abc import Sequence
from email.mime.application import MIMEApplication
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart

# (charset, body transfer encoding): Thunderbird / Becky! write ISO-2022-JP in 7bit,
# in-house tools Shift_JIS in base64, Outlook / Gmail / iPhone UTF-8 in base64 or QP.
CLIENT_ENCODINGS: tuple[tuple[str, str], ...] = (
    ("iso-2022-jp", "7bit"),
    ("shift_jis", "base64"),
    ("utf-8", "base64"),
    ("utf-8", "quoted-printable"),
)

# a 1x1 GIF: an inline signature logo
_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c000000000100010000020144003b"
)


def encoded_word(text: str, charset: str) -> str:
    """One RFC 2047 B encoded-word in exactly ``charset`` (the stdlib would turn Shift_JIS
    into ISO-2022-JP)."""
    if text.isascii():
        return text
    words = []
    for i in range(0, len(text), 12):  # short words, folded like a mail client
        data = base64.b64encode(text[i : i + 12].encode(charset)).decode("ascii")
        words.append(f"=?{charset.upper()}?B?{data}?=")
    return "\n ".join(words)


def addr(name: str, address: str, charset: str = "utf-8") -> str:
    """``=?charset?B?...?= <address>`` (or the plain address without a name)."""
    if not name:
        return address
    if name.isascii():
        return email.utils.formataddr((name, address))
    return f"{encoded_word(name, charset)} <{address}>"


def addr_list(pairs: Sequence[tuple[str, str]], charset: str = "utf-8") -> str:
    return ", ".join(addr(n, a, charset) for n, a in pairs)


def text_part(body: str, charset: str, cte: str) -> MIMENonMultipart:
    """text/plain in exactly ``charset`` and ``cte`` (7bit only for ISO-2022-JP / ASCII)."""
    # base64 carries the canonical CRLF line ends; 7bit and QP lines become CRLF on output
    data = (body.replace("\n", "\r\n") if cte == "base64" else body).encode(charset)
    part = MIMENonMultipart("text", "plain", charset=charset)
    if cte == "base64":
        payload = base64.encodebytes(data).decode("ascii")
    elif cte == "quoted-printable":
        payload = quopri.encodestring(data).decode("ascii")
    else:
        payload = data.decode("ascii")  # ISO-2022-JP is 7-bit
    part.set_payload(payload)
    part["Content-Transfer-Encoding"] = cte
    return part


def build(
    *,
    frm: str,
    to: str,
    subject: str,
    body: str,
    charset: str = "utf-8",
    cte: str = "base64",
    cc: str = "",
    pdf_name: str = "",
    inline_logo: bool = False,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A mail with a text body in ``charset``/``cte``, optionally a PDF attachment and an
    inline signature picture (``Content-Disposition: inline``)."""
    body_part = text_part(body, charset, cte)
    if pdf_name or inline_logo:
        msg: MIMEMultipart | MIMENonMultipart = MIMEMultipart("mixed" if pdf_name else "related")
        msg.attach(body_part)
        if inline_logo:
            img = MIMEImage(_GIF, "gif")
            img.add_header("Content-ID", "<image001.gif@01DA0000.00000000>")
            img.add_header("Content-Disposition", "inline", filename="image001.gif")
            msg.attach(img)
        if pdf_name:
            pdf = MIMEApplication(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", "pdf")
            pdf.add_header("Content-Disposition", "attachment", filename=("utf-8", "", pdf_name))
            msg.attach(pdf)
    else:
        msg = body_part
    msg["From"] = frm
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = encoded_word(subject, charset)
    msg["Date"] = "Mon, 17 Feb 2025 10:00:00 +0900"
    msg["Message-ID"] = email.utils.make_msgid(domain="city.example.lg.jp")
    if "MIME-Version" not in msg:
        msg["MIME-Version"] = "1.0"
    for name, value in extra_headers:
        msg[name] = value
    return msg.as_bytes().replace(b"\n", b"\r\n")  # on the wire every line ends in CRLF


# Forwarded / quoted header blocks as each client writes them.
def outlook_ja_header(frm: str, to: str, cc: str = "", subject: str = "") -> str:
    lines = [
        "",
        "-----Original Message-----",
        f"差出人: {frm}",
        "送信日時: 2025年2月14日 17:32",
        f"宛先: {to}",
    ]
    if cc:
        lines.append(f"CC: {cc}")
    lines.append(f"件名: {subject}")
    return "\n".join(lines) + "\n\n"


def gmail_ja_header(frm: str, to: str, cc: str = "", subject: str = "") -> str:
    lines = [
        "",
        "---------- Forwarded message ---------",
        f"From: {frm}",
        "Date: 2025年2月14日(金) 17:32",
        f"Subject: {subject}",
        f"To: {to}",
    ]
    if cc:
        lines.append(f"Cc: {cc}")
    return "\n".join(lines) + "\n\n"


def thunderbird_ja_header(frm: str, to: str, cc: str = "", subject: str = "") -> str:
    lines = [
        "",
        "-------- 転送メッセージ --------",
        f"件名: \t{subject}",
        "日付: \tFri, 14 Feb 2025 17:32:00 +0900",
        f"差出人: \t{frm}",
        f"宛先: \t{to}",
    ]
    if cc:
        lines.append(f"CC: \t{cc}")
    return "\n".join(lines) + "\n\n"


def apple_header(frm: str, to: str, cc: str = "", subject: str = "") -> str:
    lines = [
        "",
        "Begin forwarded message:",
        "",
        f"From: {frm}",
        f"Subject: {subject}",
        "Date: February 14, 2025 at 17:32:00 GMT+9",
        f"To: {to}",
    ]
    if cc:
        lines.append(f"Cc: {cc}")
    return "\n".join(lines) + "\n\n"


HEADER_STYLES = {
    "outlook-ja": outlook_ja_header,
    "gmail-ja": gmail_ja_header,
    "thunderbird-ja": thunderbird_ja_header,
    "apple-mail": apple_header,
}
