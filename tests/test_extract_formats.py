"""Text out of each attachment format, in-process (``leakguard.extract.formats.extract``).

The worker pool, budgets and crashes are tested in ``test_extract_pool.py``; here each
format's text and locations, and hostile files, are checked on the parser functions the
workers run.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from leakguard.extract.formats import Limits, extract, sniff
from leakguard.message.parse import decode_transfer_encoding, parse_message
from leakguard.types import AttachmentContent

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
LIMITS = Limits()


def attachment_bytes(example: str, index: int = 0) -> tuple[str, str, bytes]:
    msg = parse_message((EXAMPLES / example).read_bytes())
    att = msg.attachments[index]
    body = decode_transfer_encoding(msg.raw[att.body_start : att.body_end], att.transfer_encoding)
    return att.filename, att.content_type, body


def only(name: str, ctype: str, data: bytes, limits: Limits = LIMITS) -> AttachmentContent:
    out = extract(name, ctype, data, limits)
    assert len(out.contents) == 1, out.contents
    return out.contents[0]


def text_of(c: AttachmentContent) -> str:
    return "\n".join(s.text for s in c.sections)


def make_zip(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


# --------------------------------------------------------------------------- PDF


def test_pdf_request_form_text_per_page() -> None:
    name, ctype, data = attachment_bytes("attachment-request-form-pdf-ja.eml")
    assert name == "開示請求書_受付2026-0412.pdf"
    c = only(name, ctype, data)
    assert (c.kind, c.status) == ("pdf", "read")
    assert [s.location for s in c.sections] == ["page 1"]
    text = c.sections[0].text
    lines = text.split("\n")
    assert "氏名 山本\u3000花子" in lines
    assert any(line.startswith("住所 〒105-0011") for line in lines)
    assert "電話番号 090-4821-3376" in lines
    assert "生年月日 昭和58年4月12日" in lines
    assert "個人番号 4821 3065 7391" in lines


def test_pdf_masked_form_keeps_the_masks() -> None:
    c = only(*attachment_bytes("attachment-request-form-masked-pdf-ja.eml"))
    text = text_of(c)
    assert c.status == "read"
    assert "氏名 ■■\u3000■■" in text
    assert "（マスキング済）" in text
    assert "4821" not in text


def test_pdf_invoice_numbers_are_read() -> None:
    c = only(*attachment_bytes("attachment-invoice-pdf-ja.eml"))
    assert c.status == "read"
    assert "202611240387" in text_of(c)
    assert "PO-2026-110482" in text_of(c)


def test_scanned_pdf_is_unreadable_not_clean() -> None:
    c = only(*attachment_bytes("attachment-scan-pdf-ja.eml"))
    assert (c.kind, c.status) == ("pdf", "unreadable")
    assert c.sections == ()
    assert "scan" in c.detail


def _blank_pdf(pages: int) -> bytes:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(595, 842)
    buf = io.BytesIO()
    pdf.save(buf)
    pdf.close()
    return buf.getvalue()


def test_huge_page_count_pdf_is_uninspected() -> None:
    c = only("big.pdf", "application/pdf", _blank_pdf(40), Limits(max_pdf_pages=30))
    assert c.status == "uninspected"
    assert "40 pages" in c.detail


def test_pdf_without_any_text_or_image_is_unreadable() -> None:
    c = only("blank.pdf", "application/pdf", _blank_pdf(2))
    assert c.status == "unreadable"


def test_encrypted_pdf_is_a_fact() -> None:
    from reportlab.lib import pdfencrypt
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    enc = pdfencrypt.StandardEncryption("user-pw", "owner-pw", strength=128)
    c = canvas.Canvas(buf, encrypt=enc)
    c.drawString(100, 700, "secret text")
    c.showPage()
    c.save()
    got = only("locked.pdf", "application/pdf", buf.getvalue())
    assert (got.kind, got.status) == ("pdf", "encrypted")


@pytest.mark.parametrize("cut", [100, 2000, -500])
def test_truncated_pdf_is_uninspected_or_read_never_a_crash(cut: int) -> None:
    _, _, data = attachment_bytes("attachment-request-form-pdf-ja.eml")
    c = only("cut.pdf", "application/pdf", data[:cut])
    # PDFium repairs a lost trailer when the pages are intact; otherwise it is not read
    assert c.status in ("uninspected", "read")
    if c.status == "read":
        assert "山本" in text_of(c)


def test_garbage_named_pdf_is_uninspected() -> None:
    c = only("x.pdf", "application/pdf", b"this is not a pdf at all" * 10)
    assert c.status == "uninspected"


# --------------------------------------------------------------------------- Office / ODF


def test_docx_benefit_certificate_table_rows_joined_with_tabs() -> None:
    name, ctype, data = attachment_bytes("attachment-benefit-certificate-docx-ja.eml")
    assert name == "受給資格者証_写し.docx"
    c = only(name, ctype, data)
    assert (c.kind, c.status) == ("docx", "read")
    lines = text_of(c).split("\n")
    assert lines[0] == "雇用保険受給資格者証（写）"
    assert "氏名\t鈴木 一郎" in lines
    assert "被保険者番号\t1234-567890-1" in lines
    assert "振込先\t〇〇銀行 △△支店 普通 1234567" in lines


def test_xlsx_sheets_rows_tabs() -> None:
    name, ctype, data = attachment_bytes("attachment-applicants-xlsx-ja.eml")
    c = only(name, ctype, data)
    assert (c.kind, c.status) == ("xlsx", "read")
    assert [s.location for s in c.sections] == ["sheet 応募者一覧", "sheet 備考"]
    rows = c.sections[0].text.split("\n")
    assert rows[0] == "受付番号\t氏名\tフリガナ\t電話番号\tメールアドレス\t希望職種"
    assert (
        rows[1]
        == "A-0412\t高橋 美咲\tタカハシ ミサキ\t080-3321-7745\tmisaki.t@example.ne.jp\t一般事務"
    )
    assert len(rows) == 6


def _docx(document_xml: str, extra: dict[str, bytes] | None = None) -> bytes:
    members = {
        "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
        "word/document.xml": document_xml.encode("utf-8"),
    }
    members.update(extra or {})
    return make_zip(members)


_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def test_docx_text_boxes_tabs_breaks_and_deleted_text() -> None:
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><w:document {_W}><w:body>'
        "<w:p><w:r><w:t>申請者</w:t><w:tab/><w:t>田中</w:t><w:br/><w:t>二行目</w:t></w:r></w:p>"
        "<w:p><w:r><w:pict><w:txbxContent><w:p><w:r><w:t>枠内の氏名 佐藤</w:t></w:r></w:p>"
        "</w:txbxContent></w:pict></w:r><w:r><w:t>本文</w:t></w:r></w:p>"
        "<w:p><w:del><w:r><w:delText>削除した電話 03-1111-2222</w:delText></w:r></w:del></w:p>"
        "</w:body></w:document>"
    )
    footer = f"<w:ftr {_W}><w:p><w:r><w:t>受付 0412</w:t></w:r></w:p></w:ftr>".encode()
    c = only("a.docx", "application/octet-stream", _docx(xml, {"word/footer1.xml": footer}))
    assert c.status == "read"
    assert c.sections[0].text.split("\n") == [
        "申請者\t田中",
        "二行目",
        "本文",
        "枠内の氏名 佐藤",
        "削除した電話 03-1111-2222",
    ]
    assert (c.sections[1].location, c.sections[1].text) == ("footer", "受付 0412")


def test_billion_laughs_in_docx_is_uninspected() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        f"<w:document {_W}><w:body><w:p><w:r><w:t>&lol3;</w:t></w:r></w:p></w:body></w:document>"
    )
    c = only("lol.docx", "application/octet-stream", _docx(bomb))
    assert (c.kind, c.status) == ("docx", "uninspected")
    assert "hostile XML" in c.detail


def test_external_entity_in_docx_is_not_fetched() -> None:
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        f"<w:document {_W}><w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>"
    )
    c = only("x.docx", "application/octet-stream", _docx(xxe))
    assert c.status == "uninspected"
    assert "root:" not in text_of(c)


def test_pptx_slides_in_order_with_notes() -> None:
    a = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
    p = 'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"'

    def slide(*paras: str) -> bytes:
        body = "".join(f"<a:p><a:r><a:t>{t}</a:t></a:r></a:p>" for t in paras)
        return (
            f"<p:sld {p} {a}><p:cSld><p:spTree><p:sp><p:txBody>{body}</p:txBody></p:sp>"
            "</p:spTree></p:cSld></p:sld>".encode()
        )

    data = make_zip(
        {
            "[Content_Types].xml": b"<Types/>",
            "ppt/presentation.xml": b"<p/>",
            "ppt/slides/slide10.xml": slide("最後"),
            "ppt/slides/slide2.xml": slide("二枚目", "担当 山田"),
            "ppt/slides/slide1.xml": slide("表紙"),
            "ppt/notesSlides/notesSlide2.xml": slide("発表メモ"),
        }
    )
    c = only("deck.pptx", "application/octet-stream", data)
    assert c.kind == "pptx"
    assert [(s.location, s.text) for s in c.sections] == [
        ("slide 1", "表紙"),
        ("slide 2", "二枚目\n担当 山田"),
        ("notes 2", "発表メモ"),
        ("slide 10", "最後"),
    ]


_ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
)


def _odf(mimetype: str, body: str, manifest: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("mimetype", mimetype, compress_type=zipfile.ZIP_STORED)
        content = f"<office:document-content {_ODF_NS}><office:body>{body}</office:body>"
        zf.writestr("content.xml", content + "</office:document-content>")
        if manifest is not None:
            zf.writestr("META-INF/manifest.xml", manifest)
    return buf.getvalue()


def test_odt_paragraphs_tabs_spaces() -> None:
    body = (
        "<office:text><text:h>申請書</text:h>"
        "<text:p>氏名<text:tab/>高田 <text:span>真一</text:span></text:p>"
        "<text:p>電話<text:s/>045-123-4567</text:p></office:text>"
    )
    c = only(
        "a.odt",
        "application/vnd.oasis.opendocument.text",
        _odf("application/vnd.oasis.opendocument.text", body),
    )
    assert (c.kind, c.status) == ("odt", "read")
    assert c.sections[0].text == "申請書\n氏名\t高田 真一\n電話 045-123-4567"


def test_odp_pages_are_slides() -> None:
    body = (
        "<office:presentation>"
        '<draw:page draw:name="p1"><draw:frame><draw:text-box><text:p>一枚目</text:p>'
        "</draw:text-box></draw:frame></draw:page>"
        '<draw:page draw:name="p2"><draw:frame><draw:text-box><text:p>二枚目</text:p>'
        "</draw:text-box></draw:frame></draw:page></office:presentation>"
    )
    c = only("a.odp", "", _odf("application/vnd.oasis.opendocument.presentation", body))
    assert [(s.location, s.text) for s in c.sections] == [
        ("slide 1", "一枚目"),
        ("slide 2", "二枚目"),
    ]


def test_encrypted_odf_is_a_fact() -> None:
    manifest = (
        b'<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        b'<manifest:file-entry manifest:full-path="content.xml">'
        b'<manifest:encryption-data manifest:checksum-type="SHA1/1K"/></manifest:file-entry>'
        b"</manifest:manifest>"
    )
    data = _odf("application/vnd.oasis.opendocument.text", "<office:text/>", manifest)
    c = only("locked.odt", "", data)
    assert (c.kind, c.status) == ("odt", "encrypted")


def test_corrupt_docx_is_uninspected() -> None:
    _, _, data = attachment_bytes("attachment-benefit-certificate-docx-ja.eml")
    c = only("broken.docx", "application/octet-stream", data[: len(data) // 2])
    assert c.status == "uninspected"


# --------------------------------------------------------------------------- CSV and text


@pytest.mark.parametrize("codec", ["shift_jis", "iso-2022-jp", "utf-8", "euc-jp", "utf-8-sig"])
def test_csv_in_japanese_charsets_without_a_label(codec: str) -> None:
    text = (
        "受付番号,氏名,電話番号\r\n0412,山本 花子,090-4821-3376\r\n0413,高橋 美咲,080-3321-7745\r\n"
    )
    c = only("名簿.csv", "text/csv", text.encode(codec))
    assert (c.kind, c.status) == ("csv", "read")
    assert c.sections[0].text.lstrip("\ufeff").split("\n")[1] == "0412,山本 花子,090-4821-3376"


def test_text_attachment_uses_its_charset_label() -> None:
    out = extract("memo.txt", "text/plain", "連絡先 山本".encode("euc-jp"), LIMITS, "EUC-JP")
    assert out.contents[0].sections[0].text == "連絡先 山本"


# --------------------------------------------------------------------------- ZIP


class Cp932Name(zipfile.ZipInfo):
    """A member name written the way Windows' Explorer does: CP932 bytes, no UTF-8 flag."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile's hook
        return self.filename.encode("cp932"), self.flag_bits


def test_zip_listing_and_members_recursively_with_cp932_names() -> None:
    inner = make_zip({"名簿.csv": "氏名,電話\n山本,090-4821-3376\n".encode("cp932")})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        # Windows' Explorer writes CP932 names without the UTF-8 flag
        zf.writestr(Cp932Name("資料/内側.zip"), inner)
        zf.writestr("readme.txt", "説明")
    out = extract("書類.zip", "application/zip", buf.getvalue(), LIMITS)
    names = [(c.name, c.kind, c.status) for c in out.contents]
    assert names == [
        ("書類.zip", "zip", "read"),
        ("書類.zip/資料/内側.zip", "zip", "read"),
        ("書類.zip/資料/内側.zip/名簿.csv", "csv", "read"),
        ("書類.zip/readme.txt", "text", "read"),
    ]
    assert out.contents[0].sections[0].location == "listing"
    assert out.contents[0].sections[0].text == "資料/内側.zip\nreadme.txt"
    assert "山本,090-4821-3376" in out.contents[2].sections[0].text


def test_encrypted_zip_is_a_fact_with_its_listing() -> None:
    _, _, data = attachment_bytes("attachment-encrypted-zip-ja.eml")
    out = extract("送付資料.zip", "application/zip", data, LIMITS)
    assert len(out.contents) == 1
    c = out.contents[0]
    assert (c.kind, c.status) == ("zip", "encrypted")
    assert c.sections[0].text == "受給資格者証_鈴木.docx\n応募者一覧.xlsx"


def test_zip_bomb_by_ratio_is_uninspected() -> None:
    bomb = make_zip({"zeros.bin": b"\0" * (20 * 1024 * 1024)})
    assert len(bomb) < 100_000
    c = only("bomb.zip", "application/zip", bomb)
    assert c.status == "uninspected"
    assert "bomb" in c.detail


def test_zip_over_total_uncompressed_size_is_uninspected() -> None:
    data = make_zip({f"f{i}.txt": bytes(range(256)) * 400 for i in range(5)})
    c = only("a.zip", "application/zip", data, Limits(max_uncompressed=200_000))
    assert c.status == "uninspected"


def test_zip_with_too_many_members_is_uninspected() -> None:
    data = make_zip({f"f{i}.txt": b"x" for i in range(30)})
    c = only("many.zip", "application/zip", data, Limits(max_members=20))
    assert c.status == "uninspected"


def test_deeply_nested_zips_stop_at_the_depth_limit() -> None:
    data = b"innermost 090-1111-2222"
    name = "x.txt"
    for i in range(8):
        data = make_zip({name: data})
        name = f"level{i}.zip"
    out = extract("outer.zip", "application/zip", data, Limits(max_depth=3))
    statuses = [c.status for c in out.contents]
    assert statuses.count("uninspected") == 1
    assert len(out.contents) == 4  # outer + three levels read, the fourth not opened
    assert all("090-1111-2222" not in text_of(c) for c in out.contents)


def test_lying_member_size_is_not_inflated_past_its_declared_size() -> None:
    data = bytearray(make_zip({"a.txt": b"A" * 100_000}, compression=zipfile.ZIP_DEFLATED))
    # shrink the declared uncompressed size in the central directory (offset 24 from PK\1\2)
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (1000).to_bytes(4, "little")
    out = extract("liar.zip", "application/zip", bytes(data), LIMITS)
    member = out.contents[1]
    assert member.status == "uninspected"


# --------------------------------------------------------------------------- containers


def test_eml_as_octet_stream_yields_message_and_its_attachments() -> None:
    inner = (EXAMPLES / "attachment-request-form-pdf-ja.eml").read_bytes()
    out = extract("転送.eml", "application/octet-stream", inner, LIMITS)
    assert [m[0] for m in out.messages] == ["転送.eml"]
    assert [(c.name, c.kind, c.status) for c in out.contents] == [
        ("転送.eml", "eml", "read"),
        ("転送.eml/開示請求書_受付2026-0412.pdf", "pdf", "read"),
    ]
    head = out.contents[0].sections[0]
    assert head.location == "headers"
    assert "n-kobayashi@minato-print.co.jp" in head.text
    assert "4821 3065 7391" in text_of(out.contents[1])


def test_winmail_dat_subject_body_and_attachment() -> None:
    name, ctype, data = attachment_bytes("attachment-winmail-dat-en.eml")
    assert (name, ctype) == ("winmail.dat", "application/ms-tnef")
    out = extract(name, ctype, data, LIMITS)
    assert [(c.name, c.kind, c.status) for c in out.contents] == [
        ("winmail.dat", "tnef", "read"),
        ("winmail.dat/受付一覧.csv", "csv", "read"),
    ]
    assert out.contents[0].sections[0].text == "Subject: 窓口受付一覧の送付"
    assert "0412,山本 花子,090-4821-3376" in out.contents[1].sections[0].text
    (found,) = out.messages
    msg = parse_message(found[1])
    assert msg.subject == "窓口受付一覧の送付"


def test_calendar_attendees_and_description() -> None:
    msg = parse_message((EXAMPLES / "calendar-invite-ja.eml").read_bytes())
    (att,) = msg.attachments
    assert att.content_type == "text/calendar"
    body = decode_transfer_encoding(msg.raw[att.body_start : att.body_end], att.transfer_encoding)
    out = extract("invite", att.content_type, body, LIMITS, att.charset)
    assert [a for a, _ in out.attendees] == [
        "kazuya.sato@city.example.lg.jp",
        "k-tanaka@aozora-jinzai.co.jp",
        "kenji.kimura@mirai-kensetsu.co.jp",
        "okada@hikari-sekkei.co.jp",
        "kobayashi@city.example.lg.jp",
    ]
    assert dict(out.attendees)["k-tanaka@aozora-jinzai.co.jp"] == "田中 恵子"
    (c,) = out.contents
    assert (c.kind, c.status, c.sections[0].location) == ("ics", "read", "event 1")
    assert c.sections[0].text.startswith("庁舎改修工事 第3回調整会議\nみなと市役所")


def test_broken_calendar_and_tnef_are_uninspected() -> None:
    assert only("a.ics", "text/calendar", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n\xff").status in (
        "uninspected",
        "read",
    )
    tnef = only("winmail.dat", "application/ms-tnef", b"\x78\x9f\x3e\x22\x00\x00" + b"\x01" * 40)
    assert tnef.status == "uninspected"


# --------------------------------------------------------------------------- others


def test_image_is_unreadable_and_audio_skipped() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 50
    assert only("photo.png", "image/png", png).status == "unreadable"
    assert only("voice.m4a", "audio/mp4", b"\0" * 50).status == "skipped"
    assert only("a.bin", "application/octet-stream", b"\x01\x02\x03").status == "unreadable"


def test_legacy_ole_document_is_unreadable() -> None:
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600
    c = only("old.doc", "application/msword", data)
    assert c.status == "unreadable"


def test_password_protected_office_file_is_encrypted() -> None:
    # Office writes a password-protected DOCX/XLSX as an OLE file with an EncryptedPackage
    data = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600 + "EncryptedPackage".encode("utf-16-le")
    )
    c = only("給与.xlsx", "application/octet-stream", data)
    assert (c.kind, c.status) == ("xlsx", "encrypted")


def test_sniff_prefers_content_over_name() -> None:
    pdf = _blank_pdf(1)
    assert sniff("report.docx", "application/octet-stream", pdf) == "pdf"
    assert sniff("data", "application/octet-stream", make_zip({"word/document.xml": b""})) == "docx"
    assert sniff("winmail.dat", "application/octet-stream", b"\x78\x9f\x3e\x22rest") == "tnef"


def test_text_limit_makes_the_attachment_uninspected_but_keeps_what_was_read() -> None:
    c = only("long.txt", "text/plain", ("あ" * 5000).encode(), Limits(max_chars=1000))
    assert c.status == "uninspected"
    assert len(text_of(c)) == 1000


# --------------------------------------------------------------------------- Outlook .msg


def outlook_msg(**extra: object) -> bytes:
    from cfb import msg_file

    _, _, pdf = attachment_bytes("attachment-request-form-pdf-ja.eml")
    fields: dict[str, object] = {
        "subject": "申請書の件",
        "body": "山田様\r\n申請書を添付します。\r\n",
        "sender": ("佐藤 一也", "kazuya.sato@city.example.lg.jp"),
        "recipients": [
            ("山田 太郎", "yamada@mirai-kensetsu.co.jp", 1),
            ("田中 恵子", "k-tanaka@aozora-jinzai.co.jp", 2),
        ],
        "attachments": [
            ("開示請求書.pdf", pdf),  # over 4 KiB: regular sectors, not the mini stream
            (
                "元のメール.msg",
                {
                    "subject": "ご相談",
                    "body": "元の本文",
                    "sender": ("木村 健二", "kimura@hikari-sekkei.co.jp"),
                    "recipients": [("佐藤", "kazuya.sato@city.example.lg.jp", 1)],
                    "attachments": [
                        ("名簿.csv", "氏名,電話\n山本,090-4821-3376\n".encode("cp932"))
                    ],
                },
            ),
        ],
    }
    fields.update(extra)
    return msg_file(**fields)


def test_outlook_msg_headers_body_attachments_and_embedded_message() -> None:
    out = extract("転送.msg", "application/vnd.ms-outlook", outlook_msg(), LIMITS)
    assert [(c.name, c.kind, c.status) for c in out.contents] == [
        ("転送.msg", "msg", "read"),
        ("転送.msg/開示請求書.pdf", "pdf", "read"),
        ("転送.msg/元のメール.msg", "msg", "read"),
        ("転送.msg/元のメール.msg/名簿.csv", "csv", "read"),
    ]
    head = out.contents[0].sections[0].text.split("\n")
    assert head[:3] == [
        "From: 佐藤 一也 <kazuya.sato@city.example.lg.jp>",
        "To: 山田 太郎 <yamada@mirai-kensetsu.co.jp>",
        "Cc: 田中 恵子 <k-tanaka@aozora-jinzai.co.jp>",
    ]
    assert out.contents[0].sections[1].text == "山田様\n申請書を添付します。\n"
    assert "個人番号 4821 3065 7391" in text_of(out.contents[1])
    assert [name for name, _ in out.messages] == ["転送.msg", "転送.msg/元のメール.msg"]
    outer = parse_message(out.messages[0][1])
    assert [a.addr for a in outer.cc] == ["k-tanaka@aozora-jinzai.co.jp"]
    assert outer.subject == "申請書の件"


def test_outlook_msg_keeps_its_transport_headers() -> None:
    headers = (
        "Received: from mx.example (mx.example [192.0.2.1])\r\n"
        "From: =?ISO-2022-JP?B?GyRCTFpCPBsoQg==?= <kimura@hikari-sekkei.co.jp>\r\n"
        "To: kazuya.sato@city.example.lg.jp,\r\n\tother@third-party.example\r\n"
        "Subject: re\r\nContent-Type: multipart/mixed; boundary=zzz\r\n"
    )
    out = extract("受信.msg", "", outlook_msg(transport_headers=headers), LIMITS)
    msg = parse_message(out.messages[0][1])
    assert [a.addr for a in msg.to] == [
        "kazuya.sato@city.example.lg.jp",
        "other@third-party.example",
    ]
    assert msg.from_[0].display_name == "木村"
    assert msg.text_parts[0].text.startswith("山田様")  # our body, not the old multipart


def test_broken_msg_is_uninspected() -> None:
    data = outlook_msg()
    c = extract("x.msg", "", data[:3000], LIMITS).contents[0]
    assert (c.kind, c.status) == ("msg", "uninspected")


def test_spreadsheet_embedded_in_a_docx_is_read() -> None:
    _, _, sheet = attachment_bytes("attachment-applicants-xlsx-ja.eml")
    xml = (
        f"<w:document {_W}><w:body><w:p><w:r><w:t>別添の一覧</w:t></w:r></w:p>"
        "</w:body></w:document>"
    )
    data = _docx(xml, {"word/embeddings/Microsoft_Excel_Worksheet.xlsx": sheet})
    out = extract("案内.docx", "application/octet-stream", data, LIMITS)
    assert [(c.name, c.kind, c.status) for c in out.contents] == [
        ("案内.docx", "docx", "read"),
        ("案内.docx/embeddings/Microsoft_Excel_Worksheet.xlsx", "xlsx", "read"),
    ]
    assert "080-3321-7745" in text_of(out.contents[1])
