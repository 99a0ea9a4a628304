"""Build the example mails with real attachments (issue 7): PDFs, DOCX, XLSX, ZIP, calendar.

Run from the repository root (needs the dev extras and a Japanese TrueType font, e.g.
Debian's ``fonts-ipafont-gothic``)::

    .venv/bin/python examples/make_attachments.py

The generated ``examples/*.eml`` are committed, so CI does not need to run this. Every
person, number and address is invented; the 12-digit My Number has a valid check digit
(computed below) so that detectors see a real-looking one. The PDFs embed the IPA Gothic
font, so their text layer is real text (a PDF reader, and PDFium, can copy it out), except
the scan, which is an image of text with no text layer at all.

Each mail is written the way its client writes mail (Outlook ja, Gmail, Thunderbird,
Becky!, Apple Mail, an in-house tool): header order, charsets, transfer encodings and the
way attachment names are encoded (RFC 2047 in ``name=``, RFC 2231 ``filename*=``).
"""

from __future__ import annotations

import base64
import datetime
import io
import struct
import sys
import textwrap
from collections.abc import Sequence
from email.header import Header
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
    "/usr/share/fonts/truetype/ipafont-gothic/ipag.ttf",
)
FIXED_DATE = (2026, 11, 24, 10, 15, 0)


def font_path() -> str:
    for p in FONT_CANDIDATES:
        if Path(p).is_file():
            return p
    sys.exit("no Japanese TrueType font: apt-get install fonts-ipafont-gothic")


def my_number_check_digit(first11: str) -> int:
    """The check digit of a My Number (個人番号), as the Cabinet Office ordinance defines it:
    P_n is the n-th digit from the right of the 11 digits, Q_n = n + 1 for n <= 6, else n - 5;
    r = sum(P_n * Q_n) mod 11; the digit is 0 when r <= 1, else 11 - r."""
    total = 0
    for n, ch in enumerate(reversed(first11), 1):
        q = n + 1 if n <= 6 else n - 5
        total += int(ch) * q
    r = total % 11
    return 0 if r <= 1 else 11 - r


MY_NUMBER_11 = "48213065739"
MY_NUMBER = MY_NUMBER_11 + str(my_number_check_digit(MY_NUMBER_11))


# --------------------------------------------------------------------------- documents


def _canvas(buf: io.BytesIO, title: str):  # type: ignore[no-untyped-def]
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(TTFont("IPAGothic", font_path()))
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    c.setTitle(title)
    c.setAuthor("")
    return c


def request_form_pdf(masked: bool) -> bytes:
    """保有個人情報開示請求書 filled in by a citizen (text layer: real text)."""
    buf = io.BytesIO()
    c = _canvas(buf, "保有個人情報開示請求書")
    c.setFont("IPAGothic", 16)
    c.drawString(170, 790, "保有個人情報開示請求書")
    c.setFont("IPAGothic", 10.5)
    c.drawString(400, 765, "令和8年11月20日")
    c.drawString(60, 740, "（宛先）みなと市長")
    if masked:
        fields = [
            ("フリガナ", "＊＊＊＊　＊＊＊＊"),
            ("氏名", "■■　■■"),
            ("住所", "〒■■■-■■■■　（マスキング済）"),
            ("電話番号", "＊＊＊-＊＊＊＊-＊＊＊＊"),
            ("生年月日", "（マスキング済）"),
            ("個人番号", "■■■■ ■■■■ ■■■■"),
        ]
    else:
        fields = [
            ("フリガナ", "ヤマモト　ハナコ"),
            ("氏名", "山本　花子"),
            ("住所", "〒105-0011　東京都みなと市芝公園三丁目4番5号　グリーンハイツ201"),
            ("電話番号", "090-4821-3376"),
            ("生年月日", "昭和58年4月12日"),
            ("個人番号", f"{MY_NUMBER[:4]} {MY_NUMBER[4:8]} {MY_NUMBER[8:]}"),
        ]
    y = 700
    c.drawString(60, y + 18, "１　請求者")
    for label, value in fields:
        c.rect(60, y - 6, 470, 22)
        c.drawString(68, y, label)
        c.drawString(160, y, value)
        y -= 22
    y -= 20
    c.drawString(60, y, "２　開示を請求する保有個人情報")
    y -= 20
    for line in (
        "令和7年度に提出した児童手当認定請求書及び添付書類一式",
        "（担当課：子ども家庭課）",
    ):
        c.drawString(80, y, line)
        y -= 16
    y -= 14
    c.drawString(60, y, "３　開示の実施方法　　写しの交付（郵送）")
    c.drawString(60, 120, "※受付番号 2026-0412　　受付者 子ども家庭課")
    c.showPage()
    c.save()
    return buf.getvalue()


def invoice_pdf() -> bytes:
    """A supplier's invoice: 12-digit invoice number, order numbers, phone: a hard negative."""
    buf = io.BytesIO()
    c = _canvas(buf, "請求書")
    c.setFont("IPAGothic", 18)
    c.drawString(250, 790, "請 求 書")
    c.setFont("IPAGothic", 10.5)
    lines = [
        (60, 750, "みなと市 総務部 契約課 御中"),
        (360, 750, "請求書番号：202611240387"),
        (360, 734, "発行日：2026年11月24日"),
        (360, 710, "株式会社サンプル商事"),
        (360, 694, "〒530-0001 大阪府大阪市北区梅田1-2-3"),
        (360, 678, "TEL 06-6345-1200"),
        (360, 662, "登録番号 T8120001098765"),
        (60, 640, "下記のとおりご請求申し上げます。"),
        (60, 616, "ご請求金額　￥1,287,000（税込）"),
        (60, 592, "品名　　　　　　　　　　　　注文番号　　　　　　数量　　単価　　　金額"),
        (60, 574, "コピー用紙 A4 5000枚　　　PO-2026-110482　　　40　　　3,250　　130,000"),
        (60, 558, "トナーカートリッジ　　　　　PO-2026-110483　　　24　　 18,500　　444,000"),
        (60, 542, "庁舎清掃業務（11月分）　　 PO-2026-110490　　　 1　　600,000　　600,000"),
        (60, 510, "小計 1,174,000　消費税（10%）113,000　合計 1,287,000"),
        (60, 480, "お振込期限：2026年12月25日"),
        (60, 464, "製品コード 4902-1234-5678 ほか、明細は別紙をご参照ください。"),
    ]
    for x, y, text in lines:
        c.drawString(x, y, text)
    c.showPage()
    c.save()
    return buf.getvalue()


def scan_pdf() -> bytes:
    """A scanner's output: one page that is an image of a filled-in form, no text layer."""
    from PIL import Image, ImageDraw, ImageFont
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    img = Image.new("L", (1240, 1754), 250)
    draw = ImageDraw.Draw(img)
    big = ImageFont.truetype(font_path(), 44)
    small = ImageFont.truetype(font_path(), 30)
    draw.text((380, 120), "住民票の写し等交付請求書", font=big, fill=20)
    y = 260
    for label, value in (
        ("氏名", "佐々木　健太"),
        ("住所", "〒105-0014 東京都みなと市芝二丁目8番1号"),
        ("生年月日", "平成2年7月30日"),
        ("電話番号", "03-5471-2093"),
    ):
        draw.rectangle((100, y - 10, 1140, y + 50), outline=40, width=2)
        draw.text((120, y), label, font=small, fill=20)
        draw.text((330, y), value, font=small, fill=30)
        y += 70
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    png = io.BytesIO()
    img.save(png, format="PNG", optimize=True)
    png.seek(0)
    c.drawImage(ImageReader(png), 0, 0, width=A4[0], height=A4[1])
    c.showPage()
    c.save()
    return buf.getvalue()


def applicants_xlsx() -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    wb.properties.creator = ""
    wb.properties.created = wb.properties.modified = datetime.datetime(2026, 11, 24, 10, 0)
    ws = wb.active
    ws.title = "応募者一覧"
    ws.append(["受付番号", "氏名", "フリガナ", "電話番号", "メールアドレス", "希望職種"])
    rows = [
        ("A-0412", "高橋 美咲", "タカハシ ミサキ", "080-3321-7745", "misaki.t@example.ne.jp"),
        ("A-0413", "伊藤 大輔", "イトウ ダイスケ", "090-6618-2034", "d-ito@example.com"),
        ("A-0414", "渡辺 彩", "ワタナベ アヤ", "070-2290-5518", "aya.w@example.jp"),
        ("A-0415", "中村 翔太", "ナカムラ ショウタ", "03-3812-4470", "shota.n@example.ne.jp"),
        ("A-0416", "小林 結衣", "コバヤシ ユイ", "080-7012-9983", "yui.k@example.org"),
    ]
    jobs = ["一般事務", "施設管理", "一般事務", "保育", "保育"]
    for r, job in zip(rows, jobs, strict=True):
        ws.append([*r, job])
    notes = wb.create_sheet("備考")
    notes.append(["面接日", "2026-12-03"])
    notes.append(["会場", "みなと市役所 本庁舎 5階 第2会議室"])
    buf = io.BytesIO()
    wb.save(buf)
    return _fixed_zip_times(buf.getvalue())


def benefit_certificate_docx() -> bytes:
    from docx import Document

    doc = Document()
    doc.core_properties.author = ""
    doc.core_properties.created = doc.core_properties.modified = datetime.datetime(2026, 11, 24)
    doc.add_heading("雇用保険受給資格者証（写）", level=1)
    doc.add_paragraph("下記のとおり受給資格を決定しました。")
    table = doc.add_table(rows=0, cols=2)
    for label, value in (
        ("氏名", "鈴木 一郎"),
        ("生年月日", "1979年2月14日"),
        ("被保険者番号", "1234-567890-1"),
        ("受給資格決定日", "令和8年10月1日"),
        ("基本手当日額", "6,120円"),
        ("振込先", "〇〇銀行 △△支店 普通 1234567"),
    ):
        row = table.add_row().cells
        row[0].text = label
        row[1].text = value
    doc.add_paragraph("受付番号 0387　みなと公共職業安定所")
    buf = io.BytesIO()
    doc.save(buf)
    return _fixed_zip_times(buf.getvalue())


def _fixed_zip_times(data: bytes) -> bytes:
    """Rewrite a ZIP with a fixed timestamp so regenerating gives the same bytes."""
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            new = zipfile.ZipInfo(info.filename, date_time=FIXED_DATE)
            new.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(new, src.read(info))
    return out.getvalue()


def encrypted_zip() -> bytes:
    """PPAP: the DOCX and the applicant list in a password-protected ZIP (AES, as 7-Zip and
    most Japanese PPAP add-ins write it); the password goes in a second mail."""
    import pyzipper

    out = io.BytesIO()
    with pyzipper.AESZipFile(
        out, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
    ) as zf:
        zf.setpassword(b"Mn7#kq2W")
        for name, data in (
            ("受給資格者証_鈴木.docx", benefit_certificate_docx()),
            ("応募者一覧.xlsx", applicants_xlsx()),
        ):
            zf.writestr(name, data)  # non-ASCII names are written as UTF-8 (flag 0x800)
    return out.getvalue()


def calendar_ics() -> bytes:
    lines = [
        "BEGIN:VCALENDAR",
        "METHOD:REQUEST",
        "PRODID:Microsoft Exchange Server 2010",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        'ORGANIZER;CN="佐藤 一也":mailto:kazuya.sato@city.example.lg.jp',
        *(
            f'ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN="{cn}":mailto:{addr}'
            for cn, addr in (
                ("田中 恵子", "k-tanaka@aozora-jinzai.co.jp"),
                ("木村 健二", "kenji.kimura@mirai-kensetsu.co.jp"),
                ("岡田 真理", "okada@hikari-sekkei.co.jp"),
            )
        ),
        "ATTENDEE;ROLE=OPT-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=kobayashi@city.example.lg.jp:mailto:kobayashi@city.example.lg.jp",
        "DESCRIPTION;LANGUAGE=ja-JP:関係各社の皆様\\n\\n庁舎改修工事の第3回調整会議を下記のとおり開催します。\\n"
        "資料は当日配布します。\\n\\nみなと市 総務部 営繕課 佐藤",
        "UID:040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5DC01000000000000000010000000",
        "SUMMARY;LANGUAGE=ja-JP:庁舎改修工事 第3回調整会議",
        "DTSTART;TZID=Tokyo Standard Time:20261203T140000",
        "DTEND;TZID=Tokyo Standard Time:20261203T153000",
        "LOCATION;LANGUAGE=ja-JP:みなと市役所 本庁舎 5階 第2会議室",
        "SEQUENCE:0",
        "DTSTAMP:20261124T011500Z",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    folded = []
    for line in lines:
        raw = line.encode("utf-8")
        while len(raw) > 74:  # fold at 75 octets without splitting a UTF-8 sequence
            cut = 74
            while raw[cut] & 0xC0 == 0x80:
                cut -= 1
            folded.append(raw[:cut])
            raw = b" " + raw[cut:]
        folded.append(raw)
    return b"\r\n".join(folded) + b"\r\n"


def winmail_dat() -> bytes:
    """A TNEF stream as Outlook writes it when it sends "Rich Text" to the internet: the
    subject and plain body as TNEF attributes, and one attached CSV (Shift_JIS)."""

    def attr(level: int, ident: int, atype: int, data: bytes) -> bytes:
        tag = (atype << 16) | ident
        checksum = sum(data) & 0xFFFF
        return struct.pack("<BII", level, tag, len(data)) + data + struct.pack("<H", checksum)

    msg, att = 1, 2
    csv = "受付番号,氏名,電話番号\r\n0412,山本 花子,090-4821-3376\r\n".encode("cp932")
    parts = [
        attr(msg, 0x9006, 0x0008, struct.pack("<I", 0x00010000)),  # attTnefVersion
        attr(msg, 0x9007, 0x0006, struct.pack("<II", 932, 0)),  # attOemCodepage
        attr(msg, 0x8008, 0x0007, b"IPM.Note\x00"),  # attMessageClass
        attr(msg, 0x8004, 0x0001, "窓口受付一覧の送付\x00".encode("cp932")),  # attSubject
        attr(msg, 0x800C, 0x0002, "関係各位\r\n\r\n本日の窓口受付一覧を送付します。\r\n".encode("cp932")),  # noqa: E501
        attr(att, 0x9002, 0x0006, struct.pack("<IIIIHH", 1, 0xFFFFFFFF, 0, 0, 0, 0)),
        attr(att, 0x8010, 0x0001, "受付一覧.csv\x00".encode("cp932")),  # attAttachTitle
        attr(att, 0x800F, 0x0006, csv),  # attAttachData
    ]
    return struct.pack("<IH", 0x223E9F78, 0x1234) + b"".join(parts)


# --------------------------------------------------------------------------- mails


def b64(data: bytes) -> str:
    return "\r\n".join(textwrap.wrap(base64.b64encode(data).decode("ascii"), 76))


def h(text: str, charset: str = "utf-8") -> str:
    return Header(text, charset).encode()


def rfc2231(name: str) -> str:
    return "UTF-8''" + quote(name.encode("utf-8"))


def write(name: str, head: Sequence[str], body: str) -> None:
    data = ("\r\n".join(head) + "\r\n\r\n" + body).encode("utf-8")
    (HERE / name).write_bytes(data)
    print(f"wrote examples/{name} ({len(data)} bytes)")


def outlook_pdf_mail(name: str, pdf: bytes, masked: bool) -> None:
    boundary = "_004_TYCPR01MB8123A6E0C1B2D3E4F5A6B7C8D9E0TYCPR01MB8123jpnp_"
    fname = "開示請求書_受付2026-0412" + ("_マスキング済" if masked else "") + ".pdf"
    text = (
        "株式会社みなと印刷\r\n文書管理部 小林様\r\n\r\nいつもお世話になっております。\r\n"
        "みなと市 子ども家庭課の佐藤です。\r\n\r\n"
        "開示請求のあった文書の写しの作成をお願いいたします。\r\n"
        "請求書を添付しますのでご確認ください。\r\n\r\n"
        "--\r\nみなと市 子ども家庭課 佐藤 一也\r\nTEL 03-3578-2111（内線 2345）\r\n"
    )
    body_bytes = text.encode("iso-2022-jp")
    head = [
        f"From: {h('佐藤 一也', 'iso-2022-jp')} <kazuya.sato@city.example.lg.jp>",
        f"To: {h('小林 直樹', 'iso-2022-jp')} <n-kobayashi@minato-print.co.jp>",
        f"Subject: {h('開示請求書の送付（受付2026-0412）', 'iso-2022-jp')}",
        "Thread-Topic: =?iso-2022-jp?B?GyRCM1s8KCRKJDckSUYpJWIkTBsoQg==?=",
        "Thread-Index: AdtW3g8Fq2b7m9XKQ0a5Yq0u1v2w3A==",
        "Date: Tue, 24 Nov 2026 01:15:00 +0000",
        "Message-ID: <TYCPR01MB8123A6E0C1B2D3E4F5@TYCPR01MB8123.jpnprd01.prod.outlook.com>",
        "Accept-Language: ja-JP, en-US",
        "Content-Language: ja-JP",
        "X-MS-Has-Attach: yes",
        "X-MS-TNEF-Correlator:",
        f'Content-Type: multipart/mixed;\r\n\tboundary="{boundary}"',
        "MIME-Version: 1.0",
    ]
    encoded_name = h(fname, "iso-2022-jp")
    body = (
        f"--{boundary}\r\n"
        'Content-Type: text/plain; charset="iso-2022-jp"\r\n'
        "Content-Transfer-Encoding: 7bit\r\n\r\n"
        f"{body_bytes.decode('ascii')}\r\n"
        f"--{boundary}\r\n"
        f'Content-Type: application/pdf; name="{encoded_name}"\r\n'
        f'Content-Description: {encoded_name}\r\n'
        f'Content-Disposition: attachment; filename="{encoded_name}"; size={len(pdf)};\r\n'
        '\tcreation-date="Tue, 24 Nov 2026 01:14:32 GMT";\r\n'
        '\tmodification-date="Tue, 24 Nov 2026 01:14:32 GMT"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{b64(pdf)}\r\n"
        f"--{boundary}--\r\n"
    )
    write(name, head, body)


def gmail_xlsx_mail() -> None:
    boundary = "0000000000004f3b2a062a1c9e7d"
    fname = "応募者一覧_2026年11月.xlsx"
    text = (
        "株式会社あおぞら人材センター\r\n田中様\r\n\r\nお世話になっております。\r\n"
        "12月の面接対象者の一覧をお送りします。\r\nよろしくお願いいたします。\r\n\r\n"
        "みなと市 人事課 伊藤\r\n"
    )
    head = [
        "MIME-Version: 1.0",
        "Date: Tue, 24 Nov 2026 11:02:41 +0900",
        "Message-ID: <CAHx7Q2kzP0vM4d9wLr3GJ+Yt1Q@mail.gmail.com>",
        f"Subject: {h('応募者一覧の送付')}",
        f"From: {h('伊藤 陽子')} <yoko.ito@city.example.lg.jp>",
        f"To: {h('田中 恵子')} <k-tanaka@aozora-jinzai.co.jp>",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
    ]
    sheet = applicants_xlsx()
    body = (
        f"--{boundary}\r\n"
        'Content-Type: text/plain; charset="UTF-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{b64(text.encode('utf-8'))}\r\n"
        f"--{boundary}\r\n"
        "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet; \r\n"
        f'\tname="{h(fname)}"\r\n'
        f'Content-Disposition: attachment; \r\n\tfilename="{h(fname)}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "X-Attachment-Id: f_m3w8k2p10\r\n"
        "Content-ID: <f_m3w8k2p10>\r\n\r\n"
        f"{b64(sheet)}\r\n"
        f"--{boundary}--\r\n"
    )
    write("attachment-applicants-xlsx-ja.eml", head, body)


def thunderbird_docx_mail() -> None:
    boundary = "------------8E3vQj7NhYc2bTp0xLk5aR1W"
    fname = "受給資格者証_写し.docx"
    text = (
        "鈴木様\r\n\r\nみなと公共職業安定所の山口です。\r\n"
        "ご依頼のありました受給資格者証の写しをお送りします。\r\n\r\n山口\r\n"
    )
    head = [
        'Content-Type: multipart/mixed; boundary="' + boundary + '"',
        "Message-ID: <5b1e2c3d-4f60-4a7b-9c8d-0e1f2a3b4c5d@city.example.lg.jp>",
        "Date: Tue, 24 Nov 2026 13:40:12 +0900",
        "MIME-Version: 1.0",
        "User-Agent: Mozilla Thunderbird",
        "Content-Language: ja",
        f"To: {h('鈴木 一郎')} <ichiro.suzuki1979@gmail.com>",
        f"From: {h('山口 聡')} <s-yamaguchi@city.example.lg.jp>",
        f"Subject: {h('受給資格者証の写しの送付')}",
    ]
    doc = benefit_certificate_docx()
    body = (
        "This is a multi-part message in MIME format.\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"{text}\r\n"
        f"--{boundary}\r\n"
        "Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document;"
        f"\r\n name*={rfc2231(fname)}\r\n"
        f"Content-Disposition: attachment; filename*={rfc2231(fname)}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{b64(doc)}\r\n\r\n"
        f"--{boundary}--\r\n"
    )
    write("attachment-benefit-certificate-docx-ja.eml", head, body)


def becky_scan_mail() -> None:
    boundary = "----_001_Becky_20261124150203_4A2F"
    text = "小林様\r\n\r\n窓口で受け付けた請求書をスキャンしてお送りします。\r\n\r\n市民課 中島\r\n"
    head = [
        "Date: Tue, 24 Nov 2026 15:02:03 +0900",
        f"From: {h('中島 明美', 'iso-2022-jp')} <a-nakajima@city.example.lg.jp>",
        "To: n-kobayashi@minato-print.co.jp",
        f"Subject: {h('スキャンデータ送付', 'iso-2022-jp')}",
        "Message-Id: <20261124150203.4A2F.A1B2C3D4@city.example.lg.jp>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
        "Content-Transfer-Encoding: 7bit",
        "X-Mailer: Becky! ver. 2.81.04 [ja]",
    ]
    scan = scan_pdf()
    body = (
        f"--{boundary}\r\n"
        'Content-Type: text/plain; charset="ISO-2022-JP"\r\n'
        "Content-Transfer-Encoding: 7bit\r\n\r\n"
        f"{text.encode('iso-2022-jp').decode('ascii')}\r\n"
        f"--{boundary}\r\n"
        'Content-Type: application/pdf; name="scan_20261124_150112.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="scan_20261124_150112.pdf"\r\n\r\n'
        f"{b64(scan)}\r\n\r\n"
        f"--{boundary}--\r\n"
    )
    write("attachment-scan-pdf-ja.eml", head, body)


def inhouse_ppap_mail() -> None:
    boundary = "=_NextPart_000_0412_20261124"
    text = (
        "株式会社あおぞら人材センター\r\n田中様\r\n\r\n"
        "【自動送信】添付ファイルはパスワード付きZIPで送信しました。\r\n"
        "パスワードは別メールでお知らせします。\r\n\r\nみなと市 人事課\r\n"
    )
    fname = "送付資料_20261124.zip"
    head = [
        "Return-Path: <yoko.ito@city.example.lg.jp>",
        f"From: {h('伊藤 陽子', 'shift_jis')} <yoko.ito@city.example.lg.jp>",
        "To: k-tanaka@aozora-jinzai.co.jp",
        f"Subject: {h('【暗号化】送付資料', 'shift_jis')}",
        "Date: Tue, 24 Nov 2026 16:20:00 +0900",
        "Message-ID: <ppap.20261124162000.0412@mailgw.city.example.lg.jp>",
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
        f"{b64(encrypted_zip())}\r\n"
        f"--{boundary}--\r\n"
    )
    write("attachment-encrypted-zip-ja.eml", head, body)


def apple_invoice_mail() -> None:
    import quopri

    boundary = "Apple-Mail=_6C1F2E3D-4B5A-4978-8D6E-5F4A3B2C1D0E"
    text = (
        "みなと市 契約課\r\nご担当者様\r\n\r\n11月分の請求書をお送りします。\r\n"
        "請求書番号 202611240387、注文番号 PO-2026-110482 ほか2件です。\r\n\r\n"
        "株式会社サンプル商事 経理部\r\nTEL 06-6345-1200\r\n"
    )
    head = [
        f"From: {h('サンプル商事 経理部')} <keiri@sample-shoji.co.jp>",
        'Content-Type: multipart/mixed;\r\n\tboundary="' + boundary + '"',
        "Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3826.300.87.4.3\\))",
        f"Subject: {h('請求書送付のご案内（2026年11月分）')}",
        "Date: Tue, 24 Nov 2026 09:12:44 +0900",
        "Message-Id: <8A3C2E1F-0B9D-4C7E-A6F5-1D2E3F4A5B6C@sample-shoji.co.jp>",
        "To: keiyaku@city.example.lg.jp",
        "X-Mailer: Apple Mail (2.3826.300.87.4.3)",
    ]
    qp = quopri.encodestring(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    body = (
        f"\r\n--{boundary}\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "Content-Type: text/plain;\r\n\tcharset=utf-8\r\n\r\n"
        f"{qp}\r\n"
        f"--{boundary}\r\n"
        "Content-Disposition: attachment;\r\n"
        f"\tfilename*={rfc2231('請求書_202611240387.pdf')}\r\n"
        "Content-Type: application/pdf;\r\n"
        f'\tx-unix-mode=0644;\r\n\tname="{h("請求書_202611240387.pdf")}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{b64(invoice_pdf())}\r\n"
        f"--{boundary}--\r\n"
    )
    write("attachment-invoice-pdf-ja.eml", head, body)


def outlook_calendar_mail() -> None:
    boundary = "_000_TYCPR01MB9876C0D1E2F3A4B5C6D7TYCPR01MB9876jpnp_"
    text = (
        "関係各社の皆様\r\n\r\n庁舎改修工事の第3回調整会議を下記のとおり開催します。\r\n"
        "日時：2026年12月3日（木）14:00～15:30\r\n場所：みなと市役所 本庁舎 5階 第2会議室\r\n\r\n"
        "みなと市 総務部 営繕課 佐藤\r\n"
    )
    head = [
        f"From: {h('佐藤 一也')} <kazuya.sato@city.example.lg.jp>",
        "To: kobayashi@city.example.lg.jp",
        f"Subject: {h('庁舎改修工事 第3回調整会議')}",
        "Thread-Topic: =?utf-8?B?5bqB6IiO5pS55L+u5bel5LqLIOesrDPlm57oqr/mlbTkvJrorbA=?=",
        "Date: Tue, 24 Nov 2026 01:15:00 +0000",
        "Message-ID: <TYCPR01MB9876C0D1E2F3A4B5@TYCPR01MB9876.jpnprd01.prod.outlook.com>",
        "Accept-Language: ja-JP, en-US",
        "Content-Language: ja-JP",
        "X-MS-Has-Attach:",
        f'Content-Type: multipart/alternative;\r\n\tboundary="{boundary}"',
        "MIME-Version: 1.0",
    ]
    body = (
        f"--{boundary}\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{b64(text.encode('utf-8'))}\r\n\r\n"
        f"--{boundary}\r\n"
        'Content-Type: text/calendar; charset="utf-8"; method=REQUEST\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{b64(calendar_ics())}\r\n\r\n"
        f"--{boundary}--\r\n"
    )
    write("calendar-invite-ja.eml", head, body)


def outlook_winmail_mail() -> None:
    boundary = "_002_TYCPR01MB4455A1B2C3D4E5F6A7B8TYCPR01MB4455jpnp_"
    head = [
        "From: Kazuya Sato <kazuya.sato@city.example.lg.jp>",
        "To: Naoki Kobayashi <n-kobayashi@minato-print.co.jp>",
        "Subject: Counter reception list",
        "Date: Tue, 24 Nov 2026 02:30:00 +0000",
        "Message-ID: <TYCPR01MB4455A1B2C3D4E5F6@TYCPR01MB4455.jpnprd01.prod.outlook.com>",
        "Content-Language: en-US",
        "X-MS-Has-Attach: yes",
        "X-MS-TNEF-Correlator: <TYCPR01MB4455A1B2C3D4E5F6@TYCPR01MB4455.jpnprd01.prod.outlook.com>",
        f'Content-Type: multipart/mixed;\r\n\tboundary="{boundary}"',
        "MIME-Version: 1.0",
    ]
    body = (
        f"--{boundary}\r\n"
        'Content-Type: text/plain; charset="us-ascii"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Please find the list attached.\r\n\r\n"
        f"--{boundary}\r\n"
        'Content-Type: application/ms-tnef; name="winmail.dat"\r\n'
        'Content-Disposition: attachment; filename="winmail.dat"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{b64(winmail_dat())}\r\n"
        f"--{boundary}--\r\n"
    )
    write("attachment-winmail-dat-en.eml", head, body)


def main() -> None:
    outlook_pdf_mail("attachment-request-form-pdf-ja.eml", request_form_pdf(False), False)
    outlook_pdf_mail("attachment-request-form-masked-pdf-ja.eml", request_form_pdf(True), True)
    gmail_xlsx_mail()
    thunderbird_docx_mail()
    becky_scan_mail()
    inhouse_ppap_mail()
    apple_invoice_mail()
    outlook_calendar_mail()
    outlook_winmail_mail()
    print(f"My Number used: {MY_NUMBER[:4]} **** {MY_NUMBER[8:]} (check digit valid)")


if __name__ == "__main__":
    main()
