"""Build the self-contained test cases of ``policies/tests/default/`` (``leakguard policy test``).

Run from the repository root (needs the dev extras)::

    .venv/bin/python examples/make_policy_cases.py

The generated ``.eml`` files are committed; CI does not run this. Each mail carries its
expected outcome in ``X-Leakguard-Expect*`` test headers (removed before the engine
decides) and is written the way its client writes mail: Outlook (ja) in ISO-2022-JP,
Thunderbird with format=flowed, Gmail's multipart/alternative in base64, an in-house PPAP
tool in Shift_JIS, Apple Mail. Every person, number and address is invented.
"""

from __future__ import annotations

import io
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_attachments import FIXED_DATE, MY_NUMBER, b64, h

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "policies" / "tests" / "default"


def write(name: str, head: Sequence[str], body: str | bytes) -> None:
    path = CASES / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ("\r\n".join(head) + "\r\n\r\n").encode("ascii")
    data += body.encode("ascii") if isinstance(body, str) else body
    path.write_bytes(data)
    print(f"wrote {path.relative_to(ROOT)} ({len(data)} bytes)")


def jis(text: str) -> str:
    """A body in ISO-2022-JP, as Outlook (ja) writes it (7bit)."""
    return text.replace("\n", "\r\n").encode("iso-2022-jp").decode("ascii")


# --------------------------------------------------------------------------- bulk-external


def bulk_thunderbird() -> None:
    companies = [
        ("info", "hokuto-denki.co.jp"),
        ("eigyo", "kita-kogyo.co.jp"),
        ("contact", "asahi-print.jp"),
        ("sales", "umi-logistics.co.jp"),
        ("info", "kawa-foods.co.jp"),
        ("soumu", "mori-kensetsu.jp"),
        ("info", "sora-systems.co.jp"),
        ("office", "yama-shokai.co.jp"),
        ("info", "hikari-office.co.jp"),
        ("eigyo", "nishi-tsusho.co.jp"),
        ("info", "minami-kikaku.co.jp"),
    ]
    to = ",\r\n ".join(f"{u}@{d}" for u, d in companies)
    text = (
        "関係事業者の皆様\n\n"
        "平素より市政にご協力いただきありがとうございます。\n"
        "みなと市 商工振興課の山田です。\n\n"
        "来年度の入札参加資格審査の説明会を下記のとおり開催します。\n"
        "日時: 2026年12月8日(火) 14:00-15:30\n"
        "会場: 市役所本庁舎 5階 大会議室\n\n"
        "-- \n"
        "みなと市 商工振興課 山田 太郎\n"
    )
    head = [
        "X-Leakguard-Expect: bcc",
        "X-Leakguard-Expect-Rules: bulk-external",
        "X-Leakguard-Expect-Not-Rules: mixed-organizations",
        "Message-ID: <5b1c7f0e-2d4a-4c8e-9a51-0c3f1e2d4b6a@city.example.lg.jp>",
        "Date: Wed, 25 Nov 2026 09:12:44 +0900",
        "MIME-Version: 1.0",
        "User-Agent: Mozilla Thunderbird",
        "Content-Language: ja",
        f"To: {to}",
        f"From: {h('山田 太郎')} <taro.yamada@city.example.lg.jp>",
        f"Subject: {h('入札参加資格審査 説明会のご案内')}",
        "Content-Type: text/plain; charset=UTF-8; format=flowed",
        "Content-Transfer-Encoding: 8bit",
    ]
    body = text.replace("\n", "\r\n").encode("utf-8")
    write("bulk-external/seminar-invitation-thunderbird-ja.eml", head, body)


# --------------------------------------------------------------------------- personal data


def bank_account_outlook() -> None:
    text = (
        "株式会社サンプル商事\n経理部 ご担当者様\n\n"
        "いつもお世話になっております。みなと市 会計課の佐藤です。\n"
        "過払い金の返還先として、申出人から届いた口座情報をお知らせします。\n\n"
        "口座名義: スズキ ハナコ\n"
        "銀行名: さいたま中央銀行 浦和支店\n"
        "口座種別: 普通\n"
        "口座番号: 4820193\n\n"
        "よろしくお願いいたします。\n\n"
        "--\n佐藤 一也\nみなと市 会計課\nTEL: 048-829-1234\n"
    )
    head = [
        "X-Leakguard-Expect: hold",
        "X-Leakguard-Expect-Rules: personal-identifiers",
        "X-Leakguard-Expect-Not-Rules: personal-my-number",
        f"From: {h('佐藤 一也', 'iso-2022-jp')} <kazuya.sato@city.example.lg.jp>",
        f"To: {h('経理部', 'iso-2022-jp')} <keiri@sample-shoji.co.jp>",
        f"Subject: {h('返還先口座のご連絡', 'iso-2022-jp')}",
        f"Thread-Topic: {h('返還先口座のご連絡', 'iso-2022-jp')}",
        "Thread-Index: AdtX1a2Bc3De4Ff5Gg6Hh7Ii8Jj9Kw==",
        "Date: Wed, 25 Nov 2026 01:40:10 +0000",
        "Message-ID: <TYCPR01MB8123B7F1D2C3E4F5A6@TYCPR01MB8123.jpnprd01.prod.outlook.com>",
        "Accept-Language: ja-JP, en-US",
        "Content-Language: ja-JP",
        "X-MS-Has-Attach:",
        'Content-Type: text/plain; charset="iso-2022-jp"',
        "Content-Transfer-Encoding: 7bit",
        "MIME-Version: 1.0",
    ]
    write("personal-identifiers/refund-account-outlook-ja.eml", head, jis(text))


def birth_date_gmail() -> None:
    boundary = "000000000000a1b2c3062a1d4e5f"
    text = (
        "株式会社あおぞら人材センター\n田中様\n\n"
        "お世話になっております。みなと市 人事課の大野です。\n"
        "面接日程の調整をお願いしていた方の連絡先です。\n\n"
        "生年月日: 1991年7月3日\n"
        "携帯電話: 090-4512-7788\n\n"
        "よろしくお願いいたします。\n大野\n"
    )
    html = '<div dir="ltr">' + "<br>".join(text.split("\n")) + "</div>"
    head = [
        "X-Leakguard-Expect: hold",
        "X-Leakguard-Expect-Rules: personal-birth-date",
        "MIME-Version: 1.0",
        "Date: Wed, 25 Nov 2026 11:05:31 +0900",
        "Message-ID: <CAH+7pQ4x9mZk2vR8sJ3nT5wLp0aYb6cUe1dFg2hIj3kLm4nOp@mail.gmail.com>",
        f"Subject: {h('面接候補者の連絡先')}",
        f"From: {h('大野 由紀')} <yuki.ono@city.example.lg.jp>",
        f"To: {h('田中 恵子')} <k-tanaka@aozora-jinzai.co.jp>",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    ]
    body = (
        f"--{boundary}\r\n"
        'Content-Type: text/plain; charset="UTF-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{b64(text.replace(chr(10), chr(13) + chr(10)).encode('utf-8'))}\r\n"
        f"--{boundary}\r\n"
        'Content-Type: text/html; charset="UTF-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{b64(html.encode('utf-8'))}\r\n"
        f"--{boundary}--\r\n"
    )
    write("personal-birth-date/candidate-contact-gmail-ja.eml", head, body)


def my_number_thunderbird() -> None:
    grouped = f"{MY_NUMBER[:4]} {MY_NUMBER[4:8]} {MY_NUMBER[8:]}"
    text = (
        "みなと会計事務所\n高橋様\n\n"
        "お世話になっております。みなと市 職員課の田中です。\n"
        "年末調整の扶養控除申告書の件で、扶養親族の個人番号をお送りします。\n\n"
        "扶養親族: 田中 花子 (配偶者)\n"
        f"個人番号: {grouped}\n\n"
        "よろしくお願いいたします。\n\n"
        "-- \n田中 浩\nみなと市 総務部 職員課\n"
    )
    head = [
        "X-Leakguard-Expect: hold",
        "X-Leakguard-Expect-Rules: personal-my-number",
        "X-Leakguard-Expect-Not-Rules: forwarded-third-party",
        "Message-ID: <a3f81c2e-6d4b-4e19-8c7a-2b5d9e0f1a34@city.example.lg.jp>",
        "Date: Wed, 25 Nov 2026 14:03:51 +0900",
        "MIME-Version: 1.0",
        "User-Agent: Mozilla Thunderbird",
        "Content-Language: ja",
        f"To: {h('高橋 誠', 'iso-2022-jp')} <makoto.takahashi@takahashi-zeirishi.example>",
        f"From: {h('田中 浩', 'iso-2022-jp')} <hiroshi.tanaka@city.example.lg.jp>",
        f"Subject: {h('扶養親族の個人番号について', 'iso-2022-jp')}",
        "Content-Type: text/plain; charset=ISO-2022-JP; format=flowed; delsp=yes",
        "Content-Transfer-Encoding: 7bit",
    ]
    write("personal-my-number/dependant-number-thunderbird-ja.eml", head, jis(text))


# --------------------------------------------------------------------------- attachments


def _zip_fixed(members: Sequence[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, date_time=FIXED_DATE), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def ppap_zip_shiftjis() -> None:
    import pyzipper

    out = io.BytesIO()
    with pyzipper.AESZipFile(
        out, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
    ) as zf:
        zf.setpassword(b"Qp4!vz8R")
        zf.writestr(
            "見積依頼書.txt",  # AES salts are random: regenerating changes the bytes anyway
            "見積依頼書\r\n件名: 庁舎清掃業務\r\n期間: 2027年4月1日から1年間\r\n".encode(),
        )
    boundary = "=_NextPart_000_0519_20261125"
    text = (
        "株式会社みらい建設\r\n木村様\r\n\r\n"
        "【自動送信】添付ファイルはパスワード付きZIPで送信しました。\r\n"
        "パスワードは別メールでお知らせします。\r\n\r\nみなと市 契約課\r\n"
    )
    fname = "見積依頼_20261125.zip"
    head = [
        "X-Leakguard-Expect: delay",
        "X-Leakguard-Expect-Rules: unreadable-attachment",
        "X-Leakguard-Expect-Not-Rules: uninspected-content",
        f"From: {h('佐藤 一也', 'shift_jis')} <kazuya.sato@city.example.lg.jp>",
        "To: kenji.kimura@mirai-kensetsu.co.jp",
        f"Subject: {h('【暗号化】見積依頼', 'shift_jis')}",
        "Date: Wed, 25 Nov 2026 13:20:00 +0900",
        "Message-ID: <ppap.20261125132000.0519@mailgw.city.example.lg.jp>",
        "X-Mailer: MailGuard-Zip 3.2 (in-house)",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
    ]
    body = (
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=Shift_JIS\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{b64(text.encode('shift_jis'))}\r\n"
        f"--{boundary}\r\n"
        f'Content-Type: application/x-zip-compressed; name="{h(fname, "shift_jis")}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="{h(fname, "shift_jis")}"\r\n\r\n'
        f"{b64(out.getvalue())}\r\n"
        f"--{boundary}--\r\n"
    )
    write("unreadable-attachment/ppap-zip-inhouse-ja.eml", head, body)


def zip_bomb_thunderbird() -> None:
    """A ZIP whose member inflates 1000:1 (a decompression bomb): not read, so held."""
    data = _zip_fixed([("access_log_2026-11.txt", b"\0" * (4 * 1024 * 1024))])
    boundary = "------------8Xq1Zr5TnW0bLk3YcV7mJd2F"
    text = (
        "Hello Mr. Clark,\r\n\r\nAs requested, the server logs of November are attached.\r\n\r\n"
        "Best regards,\r\nEmily\r\n"
    )
    head = [
        "X-Leakguard-Expect: hold",
        "X-Leakguard-Expect-Rules: uninspected-content",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
        "Message-ID: <7d2e9c41-5b3a-4f8e-b1c2-8e4f0a6d3c21@city.example.lg.jp>",
        "Date: Wed, 25 Nov 2026 15:44:02 +0900",
        "MIME-Version: 1.0",
        "User-Agent: Mozilla Thunderbird",
        "Content-Language: en-US",
        "To: support@cloud-hosting.example",
        "From: Emily Clark <emily.clark@city.example.lg.jp>",
        "Subject: Server logs (November)",
    ]
    body = (
        "This is a multi-part message in MIME format.\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n"
        f"{text}\r\n"
        f"--{boundary}\r\n"
        'Content-Type: application/zip; name="logs-2026-11.zip"\r\n'
        'Content-Disposition: attachment; filename="logs-2026-11.zip"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{b64(data)}\r\n\r\n"
        f"--{boundary}--\r\n"
    )
    write("uninspected-content/zip-bomb-thunderbird-en.eml", head, body)


def agenda_pdf() -> bytes:
    """A one-page meeting agenda: a harmless PDF with a real text layer (Helvetica)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=True)
    c.setTitle("Agenda")
    c.setFont("Helvetica-Bold", 16)
    c.drawString(72, 770, "Joint meeting on the school renovation - agenda")
    c.setFont("Helvetica", 11)
    for i, line in enumerate(
        (
            "1. Progress of the work (October - November)",
            "2. Schedule of the gymnasium roof repair",
            "3. Safety measures during the winter holidays",
            "4. Next meeting",
        )
    ):
        c.drawString(72, 730 - 20 * i, line)
    c.showPage()
    c.save()
    return buf.getvalue()


def agenda_pdf_apple() -> None:
    boundary = "Apple-Mail=_9A1B2C3D-4E5F-4061-8273-94A5B6C7D8E9"
    text = (
        "Dear Mr. Kimura,\r\n\r\nPlease find attached the agenda for our meeting on "
        "December 3.\r\n\r\nKind regards,\r\nEmily Clark\r\nInternational Relations, "
        "Minato City\r\n"
    )
    head = [
        "X-Leakguard-Expect: pass",
        "X-Leakguard-Expect-Not-Rules: unreadable-attachment, uninspected-content,",
        " unmasked-personal-form",
        "From: Emily Clark <emily.clark@city.example.lg.jp>",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
        "Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3776.700.51\\))",
        "Subject: Agenda for December 3",
        "Date: Wed, 25 Nov 2026 16:02:19 +0900",
        "Message-Id: <F1E2D3C4-B5A6-4978-8695-A4B3C2D1E0F9@city.example.lg.jp>",
        "To: Kenji Kimura <kenji.kimura@mirai-kensetsu.co.jp>",
        "X-Mailer: Apple Mail (2.3776.700.51)",
    ]
    body = (
        f"\r\n--{boundary}\r\n"
        "Content-Transfer-Encoding: 7bit\r\n"
        "Content-Type: text/plain;\r\n\tcharset=us-ascii\r\n\r\n"
        f"{text}\r\n"
        f"--{boundary}\r\n"
        "Content-Disposition: attachment;\r\n\tfilename=agenda-2026-12-03.pdf\r\n"
        "Content-Type: application/pdf;\r\n\tx-unix-mode=0644;\r\n"
        '\tname="agenda-2026-12-03.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{b64(agenda_pdf())}\r\n"
        f"--{boundary}--\r\n"
    )
    write("pass/agenda-pdf-one-to-one-apple-en.eml", head, body)


def shared_mailbox_gmail() -> None:
    """A 1:1 answer sent from a shared desk address; the envelope comes from test headers."""
    text = (
        "Dear Ms. Park,\r\n\r\nThank you for your inquiry. The exhibition hall is open "
        "from 9:00 to 17:00,\r\nclosed on Mondays. Admission is free.\r\n\r\n"
        "International Relations Desk\r\nMinato City\r\n"
    )
    head = [
        "X-Leakguard-Expect: pass",
        "X-Leakguard-Sender: kokusai@city.example.lg.jp",
        "X-Leakguard-Rcpt: jiyeon.park@hanmail.example",
        "X-Leakguard-Expect-Not-Rules: forward-to-own-mailbox, similar-to-colleague",
        "MIME-Version: 1.0",
        "Date: Wed, 25 Nov 2026 10:21:07 +0900",
        "Message-ID: <CAF9sK2p7Wq1xYz3bNc4mRt5vUw6LhJ8gDe0aBf1Hi2jKl3mNo@mail.gmail.com>",
        "Subject: Re: Opening hours of the exhibition hall",
        "From: International Relations Desk <kokusai@city.example.lg.jp>",
        "To: Jiyeon Park <jiyeon.park@hanmail.example>",
        'Content-Type: text/plain; charset="UTF-8"',
    ]
    write("pass/shared-desk-reply-gmail-en.eml", head, text)


def main() -> None:
    bulk_thunderbird()
    bank_account_outlook()
    birth_date_gmail()
    my_number_thunderbird()
    ppap_zip_shiftjis()
    zip_bomb_thunderbird()
    agenda_pdf_apple()
    shared_mailbox_gmail()


if __name__ == "__main__":
    main()
