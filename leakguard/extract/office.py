"""Office Open XML (DOCX, PPTX), OpenDocument (ODT, ODP) and spreadsheets (XLSX, XLS, ODS).

XML goes through defusedxml with DTDs forbidden: a part that declares a DTD (the carrier of
billion-laughs and external-entity attacks; Office and LibreOffice never write one) is not
parsed and the file counts as uninspected. Every part is size-checked in the ZIP directory
(see ``formats.open_zip``) before it is inflated. Spreadsheets are read by calamine (Rust),
sheet by sheet, rows joined with tabs, within ``Limits.max_cells``.
"""

from __future__ import annotations

import datetime as _dt
import io
import posixpath
import re
import xml.etree.ElementTree as ET  # types only; parsing goes through defusedxml
import zipfile
from collections.abc import Callable

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from leakguard.extract.formats import (
    Encrypted,
    Limits,
    Output,
    Sections,
    Uninspected,
    Unreadable,
    dispatch,
    open_zip,
    read_member,
)
from leakguard.types import AttachmentContent

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_TEXT_NS = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_DRAW_NS = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}"
_TABLE_NS = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_MANIFEST_NS = "{urn:oasis:names:tc:opendocument:xmlns:manifest:1.0}"

_DOCX_PARTS = re.compile(r"word/(document|header\d*|footer\d*|footnotes|endnotes|comments)\.xml")
_SLIDE_RE = re.compile(r"ppt/(slides|notesSlides)/(slide|notesSlide)(\d+)\.xml")


def _xml(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> ET.Element:
    data = read_member(zf, info, limits.max_xml_bytes)
    try:
        root: ET.Element = fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise Uninspected(f"hostile XML in {info.filename[:60]}: {type(exc).__name__}") from None
    return root


def document(kind: str, data: bytes, limits: Limits, secs: Sections) -> None:
    zf = open_zip(data, limits)
    with zf:
        if kind == "docx":
            _docx(zf, limits, secs)
        elif kind == "pptx":
            _pptx(zf, limits, secs)
        else:
            _odf(zf, kind, limits, secs)


_EMBEDDED_RE = re.compile(r"(word|ppt|xl)/embeddings/[^/]+")


def embedded(out: Output, name: str, data: bytes, limits: Limits, depth: int) -> None:
    """Files embedded in an Office document (a spreadsheet pasted into a letter, the workbook
    behind a chart): read like attachments, named ``letter.docx/embeddings/...``."""
    zf = open_zip(data, limits)  # already checked once: cheap, and it cannot fail differently
    with zf:
        found = [i for i in zf.infolist() if _EMBEDDED_RE.fullmatch(i.filename)]
        for info in found[: limits.max_members]:
            sub = f"{name}/embeddings/{info.filename.rsplit('/', 1)[-1]}"
            if depth >= limits.max_depth:
                out.contents.append(
                    AttachmentContent(sub, "other", "uninspected", (), "nested too deeply")
                )
                continue
            try:
                body = read_member(zf, info, limits.max_uncompressed)
            except (Uninspected, zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                out.contents.append(
                    AttachmentContent(sub, "other", "uninspected", (), type(exc).__name__)
                )
                continue
            dispatch(out, sub, "application/octet-stream", body, limits, depth + 1)


# --------------------------------------------------------------------------- DOCX


def _docx_location(part: str) -> str:
    stem = part[5:-4]  # word/<stem>.xml
    if stem == "document":
        return ""
    return re.sub(r"\d+$", "", stem)


def _docx(zf: zipfile.ZipFile, limits: Limits, secs: Sections) -> None:
    parts = [i for i in zf.infolist() if _DOCX_PARTS.fullmatch(i.filename)]
    # the body first, then headers, footers, notes and comments (in the ZIP's order)
    parts.sort(key=lambda i: i.filename != "word/document.xml")
    for info in parts:
        root = _xml(zf, info, limits)
        lines: list[str] = []
        _docx_block(root, lines)
        secs.add(_docx_location(info.filename), "\n".join(lines))
        secs.check()
    _docx_alt_chunks(zf, limits, secs)


_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_AFCHUNK_RE = re.compile(r"word/afchunk[^/]*", re.I)


def _alt_chunk_parts(zf: zipfile.ZipFile, limits: Limits) -> list[zipfile.ZipInfo]:
    """Parts imported whole into a DOCX (``w:altChunk``: HTML, MHT, plain text, RTF, another
    document), from the aFChunk relationships of any ``word/`` part and by Word's usual
    names ``word/afchunk*``."""
    names: dict[str, None] = {}
    for info in zf.infolist():
        name = info.filename
        if _AFCHUNK_RE.fullmatch(name):
            names[name] = None
        if not (name.startswith("word/_rels/") and name.endswith(".rels")):
            continue
        for rel in _xml(zf, info, limits).iter(_REL_NS + "Relationship"):
            if not rel.get("Type", "").endswith("/aFChunk") or rel.get("TargetMode"):
                continue
            target = rel.get("Target", "")
            full = target.lstrip("/") if target.startswith("/") else f"word/{target}"
            names[posixpath.normpath(full)] = None
    found: list[zipfile.ZipInfo] = []
    for name in names:
        try:
            found.append(zf.getinfo(name))
        except KeyError:
            continue
    return found[: limits.max_members]


_CELL_END_RE = re.compile(r"(</t[dh]\s*>)", re.I)
_CELL_MARK = "\u2063"  # INVISIBLE SEPARATOR: kept by the renderer, so cells can be found


def _html_text(render: Callable[[str], str], html: str) -> str:
    """Visible text of an imported HTML part with a table row's cells joined by tabs, as
    DOCX tables are (the detectors read a header row and its columns that way)."""
    text = render(_CELL_END_RE.sub(_CELL_MARK + r"\1", html.replace(_CELL_MARK, "")))
    text = re.sub(_CELL_MARK + "[ ]?", "\t", text)
    return "\n".join(line.rstrip("\t") for line in text.split("\n"))


def _docx_alt_chunks(zf: zipfile.ZipFile, limits: Limits, secs: Sections) -> None:
    from leakguard.message.charsets import decode_bytes
    from leakguard.message.html import html_to_text
    from leakguard.message.parse import parse_message

    not_read: list[str] = []
    for info in _alt_chunk_parts(zf, limits):
        data = read_member(zf, info, limits.max_xml_bytes)
        ext = info.filename.rsplit(".", 1)[-1].lower() if "." in info.filename else ""
        location = info.filename.rsplit("/", 1)[-1]
        if ext in ("htm", "html", "xhtml", "xml"):
            secs.add(location, _html_text(html_to_text, decode_bytes(data, None).text))
        elif ext in ("txt", "text"):
            secs.add(location, decode_bytes(data, None).text)
        elif ext in ("mht", "mhtml"):
            msg = parse_message(data)
            secs.add(location, "\n".join(p.text for p in msg.text_parts))
        else:
            not_read.append(location)
        secs.check()
    if not_read:
        raise Unreadable(f"imported part(s) not read: {', '.join(not_read)[:120]}")


def _docx_block(el: ET.Element, lines: list[str]) -> None:
    """Paragraphs and tables (a row's cells joined with tabs) in document order."""
    for child in el:
        tag = child.tag
        if tag == _W + "p":
            _docx_paragraph(child, lines)
        elif tag == _W + "tbl":
            for tr in child:
                if tr.tag != _W + "tr":
                    continue
                cells: list[str] = []
                for tc in tr:
                    if tc.tag == _W + "tc":
                        cell: list[str] = []
                        _docx_block(tc, cell)
                        cells.append(" ".join(c for c in cell if c.strip()))
                lines.append("\t".join(cells))
        else:
            _docx_block(child, lines)  # body, sdt/sdtContent, txbxContent, ...


def _docx_paragraph(p: ET.Element, lines: list[str]) -> None:
    buf: list[str] = []
    boxes: list[str] = []
    _docx_runs(p, buf, boxes)
    lines.append("".join(buf))
    lines.extend(boxes)


def _docx_runs(el: ET.Element, buf: list[str], boxes: list[str]) -> None:
    for c in el:
        tag = c.tag
        if tag in (_W + "t", _W + "delText"):  # deleted revisions still travel in the file
            buf.append(c.text or "")
        elif tag == _W + "tab":
            buf.append("\t")
        elif tag in (_W + "br", _W + "cr"):
            buf.append("\n")
        elif tag == _W + "txbxContent":  # a text box: its own paragraphs, after this one
            _docx_block(c, boxes)
        elif tag == _W + "instrText":
            continue  # field codes, not text
        else:
            _docx_runs(c, buf, boxes)


# --------------------------------------------------------------------------- PPTX


def _pptx(zf: zipfile.ZipFile, limits: Limits, secs: Sections) -> None:
    found: list[tuple[int, int, zipfile.ZipInfo]] = []
    for info in zf.infolist():
        m = _SLIDE_RE.fullmatch(info.filename)
        if m:
            found.append((int(m.group(3)), 0 if m.group(1) == "slides" else 1, info))
    for number, notes, info in sorted(found, key=lambda t: (t[0], t[1])):
        root = _xml(zf, info, limits)
        lines = ["".join(t.text or "" for t in p.iter(_A + "t")) for p in root.iter(_A + "p")]
        secs.add(f"{'notes' if notes else 'slide'} {number}", "\n".join(lines))
        secs.check()


# --------------------------------------------------------------------------- ODF


def _odf_encrypted(zf: zipfile.ZipFile, limits: Limits) -> bool:
    try:
        info = zf.getinfo("META-INF/manifest.xml")
    except KeyError:
        return False
    root = _xml(zf, info, limits)
    return any(True for _ in root.iter(_MANIFEST_NS + "encryption-data"))


def _odf_text(el: ET.Element, buf: list[str]) -> None:
    if el.text:
        buf.append(el.text)
    for c in el:
        tag = c.tag
        if tag == _TEXT_NS + "tab":
            buf.append("\t")
        elif tag == _TEXT_NS + "line-break":
            buf.append("\n")
        elif tag == _TEXT_NS + "s":
            buf.append(" ")
        elif tag != _TEXT_NS + "note-citation":
            _odf_text(c, buf)
        if c.tail:
            buf.append(c.tail)


def _odf_lines(el: ET.Element, lines: list[str]) -> None:
    for c in el:
        if c.tag in (_TEXT_NS + "p", _TEXT_NS + "h"):
            buf: list[str] = []
            _odf_text(c, buf)
            lines.append("".join(buf))
        elif c.tag == _TABLE_NS + "table-row":
            cells: list[str] = []
            for cell in c:
                inner: list[str] = []
                _odf_lines(cell, inner)
                cells.append(" ".join(inner))
            lines.append("\t".join(cells))
        else:
            _odf_lines(c, lines)


def _odf(zf: zipfile.ZipFile, kind: str, limits: Limits, secs: Sections) -> None:
    if _odf_encrypted(zf, limits):
        raise Encrypted("password-protected OpenDocument file")
    try:
        info = zf.getinfo("content.xml")
    except KeyError:
        raise Uninspected("OpenDocument without content.xml") from None
    root = _xml(zf, info, limits)
    if kind == "odp":
        for n, page in enumerate(root.iter(_DRAW_NS + "page"), 1):
            lines: list[str] = []
            _odf_lines(page, lines)
            secs.add(f"slide {n}", "\n".join(lines))
            secs.check()
        return
    lines = []
    _odf_lines(root, lines)
    secs.add("", "\n".join(lines))


# --------------------------------------------------------------------------- spreadsheets


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    return str(value)


def spreadsheet(data: bytes, limits: Limits, secs: Sections) -> None:
    from python_calamine import CalamineWorkbook, PasswordError

    if data.startswith(b"PK\x03\x04"):
        open_zip(data, limits).close()  # the bomb checks, before calamine inflates anything
    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except PasswordError:
        raise Encrypted("password-protected workbook") from None
    cells = 0
    for sheet_name in wb.sheet_names:
        try:
            sheet = wb.get_sheet_by_name(sheet_name)
        except PasswordError:
            raise Encrypted("password-protected workbook") from None
        size = sheet.height * sheet.width
        if cells + size > limits.max_cells:
            raise Uninspected(f"more than {limits.max_cells} cells")
        rows: list[str] = []
        for row in sheet.iter_rows():
            cells += len(row)
            line = "\t".join(_cell(v) for v in row).rstrip("\t")
            rows.append(line)
        while rows and not rows[-1]:
            rows.pop()
        secs.add(f"sheet {sheet_name}", "\n".join(rows))
        secs.check()
