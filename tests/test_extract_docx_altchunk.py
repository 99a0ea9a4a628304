"""DOCX ``w:altChunk`` parts (HTML, MHT, text imported whole into a document) are read
(security review, issue 7): Word shows them as the document's own text, and they used to be
skipped."""

from __future__ import annotations

import io
import zipfile

from leakguard.extract.formats import Limits, extract
from leakguard.types import AttachmentContent

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
DOC = (
    f'<?xml version="1.0"?><w:document xmlns:w="{W}" xmlns:r="{R}"><w:body>'
    "<w:p><w:r><w:t>申請書</w:t></w:r></w:p>{chunks}</w:body></w:document>"
)
TABLE = (
    "<html><head><meta charset=shift_jis></head><body><p>下記のとおり</p><table>"
    "<tr><th>氏名</th><th>個人番号</th></tr>"
    "<tr><td>山田 太郎</td><td>1234 5678 9018</td></tr></table></body></html>"
)


def docx(chunks: dict[str, bytes], *, rels: bool = True) -> bytes:
    refs = "".join(f'<w:altChunk r:id="rId{i}"/>' for i in range(len(chunks)))
    rel_xml = "".join(
        f'<Relationship Id="rId{i}" Type="{R}/aFChunk" Target="{name}"/>'
        for i, name in enumerate(chunks)
    )
    members = {
        "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
        "word/document.xml": DOC.format(chunks=refs if rels else "").encode(),
    }
    if rels:
        members["word/_rels/document.xml.rels"] = (
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            f'package/2006/relationships">{rel_xml}</Relationships>'
        ).encode()
    for name, data in chunks.items():
        members[f"word/{name}"] = data
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def only(data: bytes) -> AttachmentContent:
    out = extract("申請書.docx", "application/octet-stream", data, Limits())
    assert len(out.contents) == 1, out.contents
    return out.contents[0]


def test_html_alt_chunk_is_read_with_table_cells_in_columns() -> None:
    c = only(docx({"afchunk.htm": TABLE.encode("cp932")}))
    assert c.status == "read"
    assert [s.location for s in c.sections] == ["", "afchunk.htm"]
    assert "氏名\t個人番号\n山田 太郎\t1234 5678 9018" in c.sections[1].text
    assert "下記のとおり" in c.sections[1].text


def test_alt_chunk_found_by_its_relationship_under_any_name() -> None:
    c = only(docx({"import/part1.txt": "個人番号：123456789018\r\n".encode("cp932")}))
    assert c.status == "read"
    assert "123456789018" in c.sections[1].text


def test_afchunk_part_without_a_relationship_is_read_too() -> None:
    c = only(docx({"afchunk2.htm": TABLE.encode("utf-8")}, rels=False))
    assert "1234 5678 9018" in "\n".join(s.text for s in c.sections)


def test_mht_alt_chunk_is_read() -> None:
    mht = (
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/related; boundary="b"; type="text/html"\r\n\r\n'
        "--b\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + TABLE + "\r\n--b--\r\n"
    ).encode("utf-8")
    c = only(docx({"afchunk.mht": mht}))
    assert c.status == "read"
    assert "1234 5678 9018" in c.sections[1].text


def test_alt_chunk_we_cannot_read_makes_the_document_unreadable() -> None:
    c = only(docx({"afchunk.rtf": b"{\\rtf1\\ansi secret}"}))
    assert c.status == "unreadable" and "afchunk.rtf" in c.detail
    assert c.sections[0].text == "申請書"  # what was read is kept


def test_ordinary_docx_is_unchanged() -> None:
    c = only(docx({}, rels=False))
    assert (c.status, [s.text for s in c.sections]) == ("read", ["申請書"])
