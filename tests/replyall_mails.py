"""Reply-alls as real clients write them, with attribution-only quoting (issue 8).

Each builder returns the bytes the client would submit: the sender (佐藤 一也, internal)
answers 中村 真理 (org B) with 高橋 健一 (org A) in Cc, quoting only an attribution line,
never a header block that lists who was on the quoted mail.
"""

from __future__ import annotations

import base64
import quopri

SENDER = "kazuya.sato@city.example.lg.jp"
A = "kenichi.takahashi@alpha-kensetsu.example"  # 高橋 健一, org A
B = "mari.nakamura@beta-sekkei.example"  # 中村 真理, org B (wrote the quoted mail)
C = "naoki.kobayashi@gamma-kogyo.example"  # 小林 直樹, org C (never on the thread)

FIRST_ID = "20250214091500.4f2a@city.example.lg.jp"  # the sender's first mail, via the relay
B_REPLY_ID = "CAB9x=Qm1fK2@mail.gmail.com"  # B's reply-all to it (not via the relay)


def _b64(text: str, charset: str = "utf-8") -> str:
    data = base64.b64encode(text.replace("\n", "\r\n").encode(charset)).decode()
    return "\r\n".join(data[i : i + 76] for i in range(0, len(data), 76))


def _qp(text: str) -> str:
    return quopri.encodestring(text.replace("\n", "\r\n").encode("utf-8")).decode()


def _enc(text: str) -> str:
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def _iso2022(text: str) -> str:
    return "=?ISO-2022-JP?B?" + base64.b64encode(text.encode("iso-2022-jp")).decode() + "?="


def _thread_headers(msg_id: str, extra_cc: tuple[str, ...]) -> str:
    cc = ", ".join((f"{_enc('高橋 健一')} <{A}>", *extra_cc))
    return (
        f"To: {_enc('中村 真理')} <{B}>\r\n"
        f"Cc: {cc}\r\n"
        f"Message-ID: <{msg_id}>\r\n"
        f"In-Reply-To: <{B_REPLY_ID}>\r\n"
        f"References: <{FIRST_ID}> <{B_REPLY_ID}>\r\n"
        "Date: Tue, 18 Feb 2025 10:12:00 +0900\r\n"
        "MIME-Version: 1.0\r\n"
    )


def gmail_ja(msg_id: str = "CAC5rep1y@mail.gmail.com", extra_cc: tuple[str, ...] = ()) -> bytes:
    """Gmail (Japanese UI): multipart/alternative, UTF-8 base64, gmail_quote HTML."""
    plain = (
        "中村様\n\nご確認ありがとうございます。\n修正版は金曜日までにお送りします。\n\n"
        "佐藤\n\n"
        f"2025年2月17日(月) 18:03 中村 真理 <{B}>:\n\n"
        "> 佐藤様、高橋様\n>\n> 図面を確認しました。2点コメントがあります。\n"
        "> よろしくお願いいたします。\n"
    )
    html = (
        '<div dir="ltr">中村様<div><br></div><div>ご確認ありがとうございます。<br>'
        "修正版は金曜日までにお送りします。</div><div><br></div><div>佐藤</div></div><br>"
        '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        f'2025年2月17日(月) 18:03 中村 真理 &lt;<a href="mailto:{B}">{B}</a>&gt;:<br></div>'
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
        'border-left:1px solid rgb(204,204,204);padding-left:1ex">'
        "佐藤様、高橋様<br><br>図面を確認しました。2点コメントがあります。<br>"
        "よろしくお願いいたします。</blockquote></div>"
    )
    return (
        f"From: {_enc('佐藤 一也')} <{SENDER}>\r\n"
        + _thread_headers(msg_id, extra_cc)
        + f"Subject: {_enc('Re: 図面の件')}\r\n"
        'Content-Type: multipart/alternative; boundary="000000000000a1b2c3"\r\n\r\n'
        "--000000000000a1b2c3\r\n"
        'Content-Type: text/plain; charset="UTF-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + _b64(plain)
        + "\r\n--000000000000a1b2c3\r\n"
        'Content-Type: text/html; charset="UTF-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + _b64(html)
        + "\r\n--000000000000a1b2c3--\r\n"
    ).encode("ascii")


def outlook_en(
    msg_id: str = "TY3PR01MB1234@outlook.example", extra_cc: tuple[str, ...] = ()
) -> bytes:
    """Outlook 2013 (English): names-only quoted header, quoted-printable."""
    plain = (
        "Dear Ms. Nakamura,\n\nThank you. We will send the revised drawings by Friday.\n\n"
        "Best regards,\nKazuya Sato\n\n"
        "From: Nakamura Mari\nSent: Monday, February 17, 2025 6:03 PM\n"
        "To: Sato Kazuya; Takahashi Kenichi\nSubject: RE: Drawings\n\n"
        "Dear Mr. Sato, Mr. Takahashi,\n\nWe checked the drawings and have two comments.\n"
    )
    return (
        f"From: Sato Kazuya <{SENDER}>\r\n"
        + _thread_headers(msg_id, extra_cc)
        + "Subject: RE: Drawings\r\n"
        'Content-Type: text/plain; charset="us-ascii"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\nX-Mailer: Microsoft Outlook 15.0\r\n\r\n"
        + _qp(plain)
    ).encode("ascii")


def thunderbird_ja(
    msg_id: str = "a1b2c3d4-tb@city.example.lg.jp", extra_cc: tuple[str, ...] = ()
) -> bytes:
    """Thunderbird (Japanese): ISO-2022-JP 7bit, format=flowed, name-only attribution."""
    plain = (
        "中村様\n\nご確認ありがとうございます。\n修正版は金曜日までにお送りします。\n\n"
        "On 2025/02/17 18:03, 中村 真理 wrote:\n"
        "> 佐藤様、高橋様\n>\n> 図面を確認しました。2点コメントがあります。\n"
    )
    body = plain.replace("\n", "\r\n").encode("iso-2022-jp").decode("ascii")
    return (
        f"From: {_iso2022('佐藤 一也')} <{SENDER}>\r\n"
        + _thread_headers(msg_id, extra_cc)
        + f"Subject: {_iso2022('Re: 図面の件')}\r\n"
        "User-Agent: Mozilla Thunderbird\r\n"
        "Content-Type: text/plain; charset=ISO-2022-JP; format=flowed; delsp=yes\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n" + body
    ).encode("ascii")


def iphone_ja(
    msg_id: str = "8D4E2F10-iPhone@city.example.lg.jp", extra_cc: tuple[str, ...] = ()
) -> bytes:
    """iPhone Mail (Japanese): UTF-8 quoted-printable, 「…のメール:」 attribution."""
    plain = (
        "中村様\n\n承知しました。金曜日までにお送りします。\n\niPhoneから送信\n\n"
        f"2025/02/17 18:03、中村 真理 <{B}>のメール:\n\n"
        "> 佐藤様、高橋様\n> \n> 図面を確認しました。2点コメントがあります。\n"
    )
    return (
        f"From: {_enc('佐藤 一也')} <{SENDER}>\r\n"
        + _thread_headers(msg_id, extra_cc)
        + f"Subject: {_enc('Re: 図面の件')}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
        "X-Mailer: iPhone Mail (21D61)\r\n\r\n" + _qp(plain)
    ).encode("ascii")


def first_mail(msg_id: str = FIRST_ID) -> bytes:
    """The sender's first mail to A and B together (a new mix: held, then released)."""
    return (
        f"From: {_enc('佐藤 一也')} <{SENDER}>\r\n"
        f"To: {_enc('中村 真理')} <{B}>, {_enc('高橋 健一')} <{A}>\r\n"
        f"Subject: {_enc('図面の件')}\r\nMessage-ID: <{msg_id}>\r\n"
        "Date: Fri, 14 Feb 2025 09:15:00 +0900\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + _b64("中村様、高橋様\n\n図面をお送りします。ご確認ください。\n\n総務課 佐藤\n")
        + "\r\n"
    ).encode("ascii")


CLIENTS = {
    "gmail-ja": gmail_ja,
    "outlook-en": outlook_en,
    "thunderbird-ja": thunderbird_ja,
    "iphone-ja": iphone_ja,
}
