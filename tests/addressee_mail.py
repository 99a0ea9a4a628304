"""Build mails the way real clients write them, for the addressee tests."""

from __future__ import annotations

import base64
import quopri
from collections.abc import Sequence
from email.header import Header

from leakguard.message.parse import parse_message
from leakguard.types import Message

SENDER = "ichiro.yamamoto@city.example.lg.jp"


def _addr(spec: tuple[str, str] | str, charset: str) -> str:
    if isinstance(spec, str):
        return spec
    name, addr = spec
    if not name:
        return addr
    if name.isascii():
        return f'"{name}" <{addr}>'
    hcs = "iso-2022-jp" if charset == "iso-2022-jp" else "utf-8"
    return f"{Header(name, hcs).encode()} <{addr}>"


def build(
    body: str,
    *,
    to: Sequence[tuple[str, str] | str],
    cc: Sequence[tuple[str, str] | str] = (),
    sender: tuple[str, str] = ("山本 一郎", SENDER),
    charset: str = "utf-8",
    cte: str = "base64",
    html: bool = False,
    mailer: str = "",
    subject: str = "ご連絡",
) -> bytes:
    """One mail. ``cte`` is base64, quoted-printable, 7bit or 8bit; ``html`` sends the body
    as text/html only (webmail, in-house tools)."""
    hcs = "iso-2022-jp" if charset == "iso-2022-jp" else "utf-8"
    lines = [
        f"From: {_addr(sender, charset)}",
        f"To: {', '.join(_addr(a, charset) for a in to)}",
    ]
    if cc:
        lines.append(f"Cc: {', '.join(_addr(a, charset) for a in cc)}")
    lines += [
        f"Subject: {Header(subject, hcs).encode()}",
        "Date: Mon, 17 Feb 2025 10:00:00 +0900",
        "Message-ID: <addressee-test@city.example.lg.jp>",
        "MIME-Version: 1.0",
    ]
    if mailer:
        lines.append(f"X-Mailer: {mailer}")
    if html:
        text = body.replace("\n", "<br>\n")
        body = f"<html><body><div>{text}</div></body></html>"
    ctype = "text/html" if html else "text/plain"
    lines.append(f'Content-Type: {ctype}; charset="{charset}"')
    data = body.replace("\n", "\r\n").encode(charset)
    if cte == "base64":
        payload = base64.encodebytes(data)
    elif cte == "quoted-printable":
        payload = quopri.encodestring(data)
    else:
        payload = data
    lines.append(f"Content-Transfer-Encoding: {cte}")
    head = "\r\n".join(lines).encode("ascii") + b"\r\n\r\n"
    return head + payload.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def parse(raw: bytes, rcpts: Sequence[str] | None = None) -> Message:
    if rcpts is None:
        msg = parse_message(raw, envelope_from=SENDER)
        keys = [a.addr for a in (*msg.to, *msg.cc)]
        return parse_message(raw, envelope_from=SENDER, envelope_rcpts=keys)
    return parse_message(raw, envelope_from=SENDER, envelope_rcpts=list(rcpts))
