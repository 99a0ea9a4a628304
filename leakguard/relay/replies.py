"""Every SMTP reply the relay gives, in one table shared by code and tests.

Replies are single ASCII lines unless the client asked for SMTPUTF8 (``smtp_text``).
"""

from __future__ import annotations

import re

from leakguard.message.headers import find_blank_line

# -- accepted
OK = "250 2.0.0 OK"
HELD = "250 2.0.0 held {id}"
DELAYED = "250 2.0.0 held {id} (delayed send; cancel from the notice)"
RETRY_SENT = "250 2.0.0 already sent as {id} (a retry of an earlier transaction; not sent again)"
SENDER_OK = "250 2.1.0 Sender OK"
RCPT_OK = "250 2.1.5 Recipient OK"

# -- refused: who may relay
AUTH_REQUIRED = "530 5.7.0 Authentication required"
RELAY_DENIED = "550 5.7.1 Relaying denied: authenticate or send from a trusted network"
SENDER_NOT_OWNED = "553 5.7.1 Sender address <{addr}> is not yours to send as"
FROM_NOT_OWNED = "550 5.7.1 From: header address <{addr}> is not yours to send as"
FROM_NOT_OWNED_JA = "550 5.7.1 From: ヘッダーの <{addr}> はあなたが使えるアドレスではありません"
NO_FROM = "550 5.7.1 Message has no From: address"
HEADER_UNCHECKABLE = "550 5.7.1 Too many header fields to check who the mail is from; not sent"
HEADER_UNCHECKABLE_JA = (
    "550 5.7.1 ヘッダーの項目が多すぎて差出人を確認できないため、送信しませんでした"
)
NO_FROM_JA = "550 5.7.1 From: ヘッダーに送信者のアドレス (user@domain) がありません"
SENDER_HDR_NOT_OWNED = "550 5.7.1 Sender: header address <{addr}> is not yours to send as"
SENDER_HDR_NOT_OWNED_JA = (
    "550 5.7.1 Sender: ヘッダーの <{addr}> はあなたが使えるアドレスではありません"
)
FROM_NAME_ADDRESS = "550 5.7.1 The display name in From:/Sender: shows another address <{addr}>"
FROM_NAME_ADDRESS_JA = "550 5.7.1 From:/Sender: の表示名に別のアドレス <{addr}> が書かれています"

# -- refused: the message
REJECTED = "550 5.7.1 {reason}"
BAD_ADDRESS = "553 5.1.3 Bad address syntax"
BAD_ADDRESS_BYTES = "553 5.1.3 Bad address: control characters or invalid UTF-8"
NON_ASCII_ADDRESS = "553 5.6.7 Non-ASCII address needs SMTPUTF8 (RFC 6531)"
TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
NO_RCPTS = "554 5.5.1 No valid recipients"
BCC_UNSAFE = "550 5.7.1 External recipients could not be hidden from each other; put them in Bcc"
# A reply to a hold notice sent together with other recipients: the whole transaction is
# refused (nothing executed, nothing relayed), since the quoted notice holds live links.
MIXED_COMMAND = "550 5.7.1 Nothing sent: a reply to a hold notice must go to the hold address alone"
MIXED_COMMAND_JA = (
    "550 5.7.1 送信しませんでした: 保留通知への返信は、保留用アドレスだけに宛てて送ってください"
)

# -- temporary trouble on our side
LOCAL_ERROR = "451 4.3.0 Local error; please try again later"
TOO_BUSY = "421 4.7.0 Too many connections; try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down; try again later"


HEADER_AMBIGUOUS = "550 5.6.0 Message header contains a bare CR (RFC 5322); not sent"
NUL_IN_MESSAGE = "550 5.6.0 Message contains a NUL character (RFC 5322); not sent"
_HEADER_SCAN_LIMIT = 8 * 1024 * 1024


def header_section_problem(raw: bytes) -> str | None:
    """Bytes other software could read differently, as the refusal to give, else None: a bare
    CR in the header section (some clients and MTAs turn it into a line break, so they would
    see header fields nobody checked) or a NUL anywhere (forbidden; MTAs drop or keep it)."""
    if b"\x00" in raw:  # memchr: the whole message (32 MB) in milliseconds
        return NUL_IN_MESSAGE
    # bytes.find/count, not regular expressions: all hold the GIL while they run, and a regex
    # over a 7 MB header section held it (and so the event loop) for tens of milliseconds
    blank = find_blank_line(raw, 0, min(len(raw), _HEADER_SCAN_LIMIT))
    head = raw[: blank[0] if blank else _HEADER_SCAN_LIMIT]
    if head.count(b"\r") != head.count(b"\r\n"):  # a CR not followed by LF
        return HEADER_AMBIGUOUS
    return None


# control characters, DEL, and lone surrogates (invalid UTF-8 under surrogateescape)
_BAD_ADDRESS_CHAR = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def envelope_address_problem(address: str, *, smtputf8: bool) -> str | None:
    """A permanent problem with a MAIL FROM / RCPT TO address, as the 5xx reply to give at the
    command (not a 451 after DATA, which clients would retry for days), else None.

    aiosmtpd hands over invalid UTF-8 as lone surrogates (``surrogateescape``).
    """
    if _BAD_ADDRESS_CHAR.search(address) is not None:
        return BAD_ADDRESS_BYTES
    if not address.isascii() and not smtputf8:
        return NON_ASCII_ADDRESS
    return None


def ascii_text(s: str) -> str:
    """Printable ASCII for an address or word quoted in a reply line (others become ``?``)."""
    return "".join(ch if ch.isascii() and ch.isprintable() else "?" for ch in s)[:320]


def smtp_text(text: str, *, utf8: bool, fallback: str = "") -> str:
    """One reply line: CR/LF and control characters removed; non-ASCII only with SMTPUTF8.

    Without SMTPUTF8 the ``fallback`` (an English text) is used when ``text`` is not ASCII;
    as a last resort non-ASCII characters become ``?``.
    """

    def clean(s: str) -> str:
        return " ".join("".join(ch if ch.isprintable() else " " for ch in s).split())[:400]

    t = clean(text)
    if utf8 or t.isascii():
        return t
    f = clean(fallback)
    if f and f.isascii():
        return f
    return (f or t).encode("ascii", "replace").decode("ascii")
