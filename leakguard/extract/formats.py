"""What an attachment carries, as text: the dispatcher and the simple formats.

This module runs inside the extraction worker processes (``leakguard.extract.pool``), never
in the relay's process: every parser here reads hostile bytes. Each function works within
``Limits`` (pages, members, sizes, nesting, characters) and reports what it could not read
through the exceptions below, which the dispatcher turns into an ``AttachmentContent``
status. Any other exception from a parser (a corrupt or truncated file) makes the attachment
"uninspected": it was not read, and the policy must not take it for clean.

Office and ODF live in :mod:`leakguard.extract.office`, mail containers and calendars in
:mod:`leakguard.extract.mail`.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

from leakguard.message.charsets import decode_bytes
from leakguard.types import Attachment, AttachmentContent, TextSection

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
TNEF_MAGIC = b"\x78\x9f\x3e\x22"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_MSG_STREAM = "__substg1.0_".encode("utf-16-le")
_IMAGE_EXT = frozenset(
    ("jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "heic", "heif", "webp", "jfif")
)
_TEXT_EXT = frozenset(("txt", "log", "md", "json", "xml", "html", "htm", "tsv"))
_SHEET_EXT = frozenset(("xlsx", "xlsm", "xls", "xlsb", "ods"))
_MEDIA_PREFIXES = ("audio/", "video/")
# magic numbers of image formats: only these make an "image" (a CSV labelled image/png is not)
_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"\x00\x00\x01\x00",  # ICO (a favicon pasted with a link)
)
GZIP_MAGIC = b"\x1f\x8b"
_SIGNATURE_TYPES = frozenset(
    (
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
        "application/pgp-signature",
    )
)
_SEVENZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
_RAR_MAGIC = b"Rar!\x1a\x07"
_LZH_RE = re.compile(rb"-(lh[0-9a-z]|lz[s45]|pm[0-2s])-")
_TEXT_SNIFF_BYTES = 8192
# header fields a saved mail (an .eml, or a message sent without its extension) starts with
_MAIL_HEADER_RE = re.compile(rb"[!-9;-~]{1,76}[ \t]*:")
_MAIL_KEY_RE = re.compile(rb"(?:from|to|subject|received|message-id)[ \t]*:", re.I)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of the work done on one attachment (see ``ExtractConfig`` for meanings)."""

    max_pdf_pages: int = 300
    max_depth: int = 3
    max_members: int = 500
    max_uncompressed: int = 200 * 1024 * 1024
    max_ratio: int = 200
    max_cells: int = 1_000_000
    max_chars: int = 4_000_000
    max_xml_bytes: int = 64 * 1024 * 1024  # one XML part of an Office/ODF file
    # mail found in one attachment (.eml, .msg, winmail.dat, in ZIPs) and sent back to the
    # relay, which parses each one: their number and total size (more: uninspected)
    max_messages: int = 20
    max_message_bytes: int = 8 * 1024 * 1024


class Uninspected(Exception):
    """The attachment was not (fully) read: a bound was reached or the file is broken."""


class Encrypted(Exception):
    """Password-protected: its text cannot be read, and that is a fact for the policy."""


class Unreadable(Exception):
    """No text to read: a scan without a text layer, an image, a legacy binary format."""


@dataclass(slots=True)
class Output:
    """Everything read from one attachment of the mail (containers add several entries)."""

    contents: list[AttachmentContent] = field(default_factory=list)
    # mail found inside containers (.eml, Outlook .msg, winmail.dat) as RFC 5322 bytes,
    # with the display name of where it was found
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    # (address, display name) of calendar ATTENDEE / ORGANIZER entries
    attendees: list[tuple[str, str]] = field(default_factory=list)
    # UID of each calendar event (updates of one meeting share it)
    uids: list[str] = field(default_factory=list)
    # characters still allowed for the whole attachment, members of containers included
    chars_left: int = 0


def add_message(out: Output, name: str, raw: bytes, limits: Limits) -> None:
    """Keep a mail found in a container for the relay, within ``Limits.max_messages`` and
    ``max_message_bytes`` (the relay parses each one; a ZIP of hundreds of .eml files must
    not cost it hundreds of MiB): over them, the container's entry is uninspected."""
    if len(out.messages) >= limits.max_messages:
        raise Uninspected(f"more than {limits.max_messages} mails in one attachment")
    if sum(len(m) for _n, m in out.messages) + len(raw) > limits.max_message_bytes:
        raise Uninspected(f"mail in one attachment over {limits.max_message_bytes} bytes")
    out.messages.append((name, raw))


class Sections:
    """Text sections of one attachment, bounded by ``Limits.max_chars``."""

    def __init__(self, limits: Limits, out: Output | None = None) -> None:
        self.items: list[TextSection] = []
        self.out = out
        self.left = limits.max_chars if out is None else min(limits.max_chars, out.chars_left)
        self.truncated = False

    def add(self, location: str, text: str) -> None:
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
        if not text.strip():
            return
        if len(text) > self.left:
            text = text[: max(self.left, 0)]
            self.truncated = True
        self.left -= len(text)
        if self.out is not None:
            self.out.chars_left -= len(text)
        if text:
            self.items.append(TextSection(location, text))

    def check(self) -> None:
        if self.left <= 0:
            self.truncated = True
            raise Uninspected("more text than the per-attachment limit")


INLINE_IMAGE_MAX_BYTES = 48 * 1024  # encoded size of a logo, an icon, a signature picture


def is_image_bytes(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts like an image: PNG, JPEG, GIF, BMP,
    TIFF, WebP or HEIF/AVIF. The label of a MIME part says nothing; its bytes do."""
    if head.startswith(_IMAGE_MAGIC):
        return True
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return True
    return head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"avif", b"msf1")


def _first_bytes(att: Attachment, raw: bytes) -> bytes:
    """The first decoded bytes (at least 12 when there are) of an attachment's body."""
    import base64
    import binascii

    from leakguard.message.parse import decode_transfer_encoding

    chunk = bytes(raw[att.body_start : min(att.body_end, att.body_start + 256)])
    if att.transfer_encoding.lower() == "base64":
        b64 = re.sub(rb"[^A-Za-z0-9+/]", b"", chunk)[:32]
        b64 = b64[: len(b64) // 4 * 4]
        try:
            return base64.b64decode(b64)
        except (binascii.Error, ValueError):
            return b""
    return decode_transfer_encoding(chunk, att.transfer_encoding)[:64]


def is_inline_decoration(att: Attachment, raw: bytes | None = None) -> bool:
    """A small image shown inside the HTML body (a logo in a signature, an icon): part of
    the mail's look, not a document the sender attached. Larger inline images (a photo
    pasted by an iPhone, a screenshot) are read as images, i.e. reported unreadable.

    With ``raw`` (the bytes of the mail holding ``att``), the part must also *be* an image
    (its first bytes are an image format's magic): a CSV labelled ``image/png`` and sent
    inline is read like any attachment, not waved through as a logo."""
    if not (
        att.content_type.startswith("image/")
        and att.disposition != "attachment"
        and att.size < INLINE_IMAGE_MAX_BYTES
    ):
        return False
    return raw is None or is_image_bytes(_first_bytes(att, raw))


def extension(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def _zip_kind(data: bytes) -> str:
    """docx / xlsx / pptx / odt / ods / odp / zip from the members of a ZIP container."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist()[:5000])
            if "mimetype" in names:
                info = zf.getinfo("mimetype")
                if info.file_size < 200:
                    mt = zf.read(info).decode("ascii", "replace").strip()
                    for suffix, kind in (
                        ("opendocument.text", "odt"),
                        ("opendocument.spreadsheet", "ods"),
                        ("opendocument.presentation", "odp"),
                    ):
                        if mt.endswith(suffix):
                            return kind
    except Exception:
        return "zip"
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names or "xl/workbook.bin" in names:
        return "xlsx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    return "zip"


def sniff(name: str, content_type: str, data: bytes) -> str:
    """The kind of an attachment, from its first bytes first, then its name and type."""
    ext = extension(name)
    ctype = content_type.lower()
    head = data[:1024]
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(data)
    if head.startswith(OLE_MAGIC):
        if data.find(_ENCRYPTED_PACKAGE, 0, 1 << 20) >= 0 or data.rfind(_ENCRYPTED_PACKAGE) >= 0:
            return "encrypted-office"
        if ext == "msg" or ctype == "application/vnd.ms-outlook" or _MSG_STREAM in data[: 1 << 16]:
            return "msg"
        if ext in ("xls", "xlsb") or ctype == "application/vnd.ms-excel":
            return "xls"
        return "ole"
    if b"%PDF-" in head:  # PDF readers accept a header anywhere in the first KiB
        return "pdf"
    if head.startswith(TNEF_MAGIC) or ctype == "application/ms-tnef" or name == "winmail.dat":
        return "tnef"
    for compressed, (magic, _suffixes) in _COMPRESSED.items():
        if head.startswith(magic):
            return compressed
    if (ctype in _SIGNATURE_TYPES or ext in ("p7s", "sig", "asc")) and (
        head[:1] == b"\x30" or head.startswith(b"-----BEGIN ")
    ):
        return "signature"  # DER (S/MIME) or ASCII armour (OpenPGP), not a CSV so labelled
    if head.startswith(_SEVENZIP_MAGIC):
        return "7z"
    if head.startswith(_RAR_MAGIC):
        return "encrypted-rar" if _rar_encrypted(head) else "rar"
    if _LZH_RE.match(head, 2):
        return "lzh"
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if is_image_bytes(head):
        return "image"
    if (
        ctype == "text/calendar"
        or ext in ("ics", "vcs")
        or head.lstrip().startswith(b"BEGIN:VCALENDAR")
    ):
        return "ics"
    if ext == "eml" or ctype in ("message/rfc822", "message/global"):
        return "eml"
    if ext in ("pdf",) or ctype == "application/pdf":
        return "pdf"  # no %PDF- header in the first KiB: PDFium will say it is broken
    if ext in ("docx", "docm", "xlsx", "xlsm", "pptx", "pptm", "odt", "ods", "odp", "zip"):
        return "zip"  # named so, but not a ZIP container: read as a (broken) archive
    if ctype in ("text/csv", "text/comma-separated-values") or ext == "csv":
        return "csv"
    if ctype.startswith("text/") or ext in _TEXT_EXT:
        return "text"
    # Neither the bytes nor the label say what it is (application/octet-stream, a made-up
    # extension, a label that lies such as image/png on a CSV): text is read as text, and
    # a saved mail as a mail; anything else is reported, never taken for clean.
    if _utf16_text(data):
        return "text16"
    if looks_like_text(data):
        return "eml" if looks_like_mail(data) else "text"
    if ctype.startswith("image/") or ext in _IMAGE_EXT:
        return "image"
    if ctype.startswith(_MEDIA_PREFIXES):
        return "media"
    return "other"


def _rar_encrypted(head: bytes) -> bool:
    """Whether a RAR archive says in its first header that it is password-protected (its
    file names are encrypted too): RAR 4 main-header flag 0x0080, RAR 5 archive
    encryption header (type 4) right after the signature."""
    if head.startswith(b"Rar!\x1a\x07\x00"):  # RAR 4: CRC16, type 0x73, flags (LE16)
        return len(head) >= 12 and head[9] == 0x73 and bool(head[10] & 0x80)
    if head.startswith(b"Rar!\x1a\x07\x01\x00"):  # RAR 5: CRC32, vint size, vint type
        i = 12
        while i < len(head) and head[i] & 0x80:  # skip the header size (a vint)
            i += 1
        return i + 1 < len(head) and head[i + 1] == 4
    return False


def looks_like_text(data: bytes) -> bool:
    """Text in a Japanese mail's charsets (no NUL in the first 8 KiB, and the decoded
    sample mostly printable): what a CSV or a text file saved under any name looks like."""
    sample = data[:_TEXT_SNIFF_BYTES]
    if not sample.strip() and not data.strip():
        return True  # empty or blank: nothing in it to read or hide
    if data.find(b"\x00") >= 0:  # the whole file: a ZIP after a text preamble is not text
        return False
    if len(data) > len(sample):  # do not judge a multi-byte character cut in two
        sample = sample[: max(sample.rfind(b"\n"), len(sample) - 8)]
    return _printable(decode_bytes(sample, None).text)


def _utf16_text(data: bytes) -> bool:
    """UTF-16 text with its byte-order mark (Excel's "Unicode text", Notepad's "Unicode")."""
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    sample = data[: _TEXT_SNIFF_BYTES & ~1]
    return _printable(sample.decode("utf-16", "replace"))


def _printable(text: str) -> bool:
    if not text:
        return False
    bad = sum(1 for ch in text if ch == "\ufffd" or (not ch.isprintable() and ch not in "\t\n\r\f"))
    return bad <= len(text) // 50


def looks_like_mail(data: bytes) -> bool:
    """A mail saved without its name (RFC 5322): header lines from the first line on,
    among them From:, To:, Subject:, Received: or Message-ID:."""
    lines = data[:_TEXT_SNIFF_BYTES].splitlines()
    seen_key = False
    n = 0
    for line in lines:
        if not line.strip():
            break  # the end of the header section
        if line[:1] in (b" ", b"\t") and n:
            continue  # a folded header line
        if not _MAIL_HEADER_RE.match(line):
            return False
        seen_key = seen_key or bool(_MAIL_KEY_RE.match(line))
        n += 1
    return n >= 2 and seen_key


def extract(name: str, content_type: str, data: bytes, limits: Limits, charset: str = "") -> Output:
    """Read one attachment (its decoded bytes). Never raises."""
    out = Output(chars_left=4 * limits.max_chars)
    dispatch(out, name, content_type, data, limits, 0, charset)
    return out


def dispatch(
    out: Output,
    name: str,
    content_type: str,
    data: bytes,
    limits: Limits,
    depth: int,
    charset: str = "",
) -> None:
    """Read ``data`` into ``out`` (containers recurse here with ``depth + 1``)."""
    from leakguard.extract import mail, office

    kind = sniff(name, content_type, data)
    secs = Sections(limits, out)
    status = "read"
    detail = ""
    shown_kind = kind
    try:
        if kind == "pdf":
            status, detail = _pdf(data, limits, secs)
        elif kind in ("docx", "pptx", "odt", "odp"):
            office.document(kind, data, limits, secs)
            office.embedded(out, name, data, limits, depth)
        elif kind in ("xlsx", "xls", "ods"):
            office.spreadsheet(data, limits, secs)
            if data.startswith(b"PK\x03\x04"):
                office.embedded(out, name, data, limits, depth)
        elif kind == "encrypted-office":
            shown_kind = {"xlsx": "xlsx", "pptx": "pptx"}.get(extension(name), "docx")
            raise Encrypted("password-protected Office file")
        elif kind == "ole":
            shown_kind = "other"
            raise Unreadable("legacy binary Office format (.doc/.ppt) is not read")
        elif kind == "zip":
            status, detail = _zip(out, name, data, limits, depth, secs)
        elif kind == "text16":
            shown_kind = "text"
            secs.add("", data.decode("utf-16", "replace").lstrip("\ufeff"))
        elif kind == "csv" or kind == "text":
            decoded = decode_bytes(data, charset or None)
            secs.add("", decoded.text)
        elif kind == "eml":
            mail.eml(out, name, data, limits, depth, secs)
        elif kind == "msg":
            mail.msg(out, name, data, limits, depth, secs)
        elif kind == "tnef":
            mail.tnef(out, name, data, limits, depth, secs)
        elif kind == "ics":
            mail.ics(out, data, charset, secs)
        elif kind == "image":
            raise Unreadable("image: no text layer (OCR is not done)")
        elif kind in _COMPRESSED:
            _compressed(out, kind, name, data, limits, depth)
        elif kind == "signature":
            status, detail, shown_kind = "skipped", "digital signature (S/MIME or OpenPGP)", "other"
        elif kind == "encrypted-rar":
            shown_kind = "rar"
            raise Encrypted("password-protected RAR archive")
        elif kind in _UNREAD_ARCHIVES:
            raise Unreadable(f"{_UNREAD_ARCHIVES[kind]} archive: its members are not read")
        elif kind == "rtf":
            raise Unreadable("RTF document: not read")
        elif kind == "media":
            status, detail, shown_kind = "skipped", "audio/video carries no text we read", "other"
        else:
            shown_kind = "other"
            raise Unreadable("format not recognised: binary data that is not read")
        if secs.truncated:
            status, detail = "uninspected", "more text than the per-attachment limit"
    except Encrypted as exc:
        status, detail = "encrypted", str(exc)
    except Unreadable as exc:
        status, detail = "unreadable", str(exc)
    except Uninspected as exc:
        status, detail = "uninspected", str(exc)
    except RecursionError:
        status, detail = "uninspected", "structure nested too deeply"
    except MemoryError:
        status, detail = "uninspected", "over the worker's memory limit"
    except Exception as exc:  # a corrupt or truncated file: not read, so not clean
        status, detail = "uninspected", f"cannot be read: {type(exc).__name__}"
    out.contents.insert(
        position(out, name),
        AttachmentContent(
            name=name, kind=shown_kind, status=status, sections=tuple(secs.items), detail=detail
        ),
    )


_UNREAD_ARCHIVES = {"7z": "7-Zip", "rar": "RAR", "lzh": "LZH"}


# single-file compressors: magic, name suffixes, a decompressor object for one stream
_COMPRESSED: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "gzip": (GZIP_MAGIC, (".gz", ".gzip", ".tgz")),
    "bzip2": (b"BZh", (".bz2", ".tbz")),
    "xz": (b"\xfd7zXZ\x00", (".xz", ".txz")),
}


def _decompressor(kind: str) -> Any:
    import bz2
    import lzma

    if kind == "gzip":
        return zlib.decompressobj(wbits=31)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)


def _compressed(out: Output, kind: str, name: str, data: bytes, limits: Limits, depth: int) -> None:
    """A gzip, bzip2 or xz file: decompressed within the size and ratio bounds, the file
    inside read like an attachment (``data.csv.gz/data.csv``)."""
    if depth >= limits.max_depth:
        raise Uninspected(f"archive nested deeper than {limits.max_depth}")
    magic, suffixes = _COMPRESSED[kind]
    inner_name = name.rsplit("/", 1)[-1]
    for suffix in suffixes:
        if inner_name.lower().endswith(suffix) and len(inner_name) > len(suffix):
            inner_name = inner_name[: -len(suffix)] + (".tar" if suffix[1] == "t" else "")
            break
    else:
        inner_name = f"({kind} content)"
    cap = min(limits.max_uncompressed, max(1 << 20, limits.max_ratio * len(data)))
    parts: list[bytes] = []
    size = 0
    rest = data
    while rest[: len(magic)] == magic:  # concatenated streams are one file
        d = _decompressor(kind)
        chunk = d.decompress(rest, cap - size + 1)
        size += len(chunk)
        parts.append(chunk)
        if size > cap:
            raise Uninspected(f"decompression bomb: {kind} content over the size or ratio limit")
        if not d.eof:
            raise Uninspected(f"broken {kind}: truncated")
        rest = d.unused_data
    body = b"".join(parts)
    del parts
    dispatch(out, f"{name}/{inner_name}", "application/octet-stream", body, limits, depth + 1)


def position(out: Output, name: str) -> int:
    """Containers' entries go before their members' (which were added while reading)."""
    prefix = name + "/"
    for i, c in enumerate(out.contents):
        if c.name.startswith(prefix):
            return i
    return len(out.contents)


# --------------------------------------------------------------------------- PDF


def _pdf(data: bytes, limits: Limits, secs: Sections) -> tuple[str, str]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise Encrypted("password-protected PDF") from None
        raise Uninspected(f"PDF cannot be opened: {str(exc)[:80]}") from None
    try:
        # filled AcroForm fields are not in the page's text layer: their values are read
        # from the widget annotations through the form environment
        pdf.init_forms()
        n = len(pdf)
        if n > limits.max_pdf_pages:
            raise Uninspected(f"{n} pages, more than the limit of {limits.max_pdf_pages}")
        scanned: list[int] = []
        for i in range(n):
            page = pdf[i]
            try:
                textpage = page.get_textpage()
                try:
                    text = textpage.get_text_bounded()
                finally:
                    textpage.close()
                fields = _form_fields(pdf, page)
                if fields:
                    text = f"{text}\n{fields}" if text.strip() else fields
                if text.strip():
                    secs.add(f"page {i + 1}", text)
                    secs.check()
                elif _has_image(page, pdfium_c.FPDF_PAGEOBJ_IMAGE):
                    scanned.append(i + 1)
            finally:
                page.close()
    finally:
        pdf.close()
    if scanned:
        if len(scanned) == n:
            return "unreadable", "no text layer (a scan)"
        pages = ", ".join(str(p) for p in scanned[:20])
        return "unreadable", f"pages without a text layer: {pages}"
    if not secs.items and n:
        return "unreadable", "no text in the PDF"
    return "read", ""


_MAX_ANNOTS = 5000  # widget annotations looked at on one page
_MAX_FIELD_BYTES = 1 << 20  # UTF-16 bytes of one field's name or value


def _form_fields(pdf: object, page: object) -> str:
    """ "name: value" lines of the page's filled form fields (AcroForm widgets)."""
    import pypdfium2.raw as pdfium_c

    env = getattr(pdf, "formenv", None)
    if env is None:
        return ""
    handle = env.raw
    raw_page = page.raw  # type: ignore[attr-defined]
    lines: list[str] = []
    count = min(pdfium_c.FPDFPage_GetAnnotCount(raw_page), _MAX_ANNOTS)
    for k in range(count):
        annot = pdfium_c.FPDFPage_GetAnnot(raw_page, k)
        if not annot:
            continue
        try:
            if pdfium_c.FPDFAnnot_GetSubtype(annot) != pdfium_c.FPDF_ANNOT_WIDGET:
                continue
            ftype = pdfium_c.FPDFAnnot_GetFormFieldType(handle, annot)
            if ftype == pdfium_c.FPDF_FORMFIELD_PUSHBUTTON:
                continue
            choice = (pdfium_c.FPDF_FORMFIELD_CHECKBOX, pdfium_c.FPDF_FORMFIELD_RADIOBUTTON)
            if ftype in choice and not pdfium_c.FPDFAnnot_IsChecked(handle, annot):
                continue  # an unticked box's value is its export name ("Off")
            value = _wide(pdfium_c.FPDFAnnot_GetFormFieldValue, handle, annot)
            if value.strip():
                name = _wide(pdfium_c.FPDFAnnot_GetFormFieldName, handle, annot)
                lines.append(f"{name}: {value}" if name else value)
        finally:
            pdfium_c.FPDFPage_CloseAnnot(annot)
    return "\n".join(lines)


def _wide(fn: object, handle: object, annot: object) -> str:
    """A UTF-16 string out of a PDFium getter (called once for the size, once to fill)."""
    import pypdfium2.raw as pdfium_c

    size = int(fn(handle, annot, None, 0))  # type: ignore[operator]
    if size <= 2:
        return ""
    if size > _MAX_FIELD_BYTES:
        raise Uninspected("PDF form field larger than the limit")
    buf = (pdfium_c.FPDF_WCHAR * (size // 2 + 1))()
    fn(handle, annot, buf, size)  # type: ignore[operator]
    return bytes(buf)[: size - 2].decode("utf-16-le", "replace")


def _has_image(page: object, image_type: int) -> bool:
    for obj in page.get_objects(filter=[image_type], max_depth=4):  # type: ignore[attr-defined]
        del obj
        return True
    return False


# --------------------------------------------------------------------------- ZIP


def member_name(info: zipfile.ZipInfo) -> str:
    """A member's name as the sender saw it: Windows writes CP932 without the UTF-8 flag."""
    name = info.filename
    if info.flag_bits & 0x800:
        return name
    try:
        raw = name.encode("cp437")
    except UnicodeEncodeError:
        return name
    for codec in ("utf-8", "cp932"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return name


def open_zip(data: bytes, limits: Limits) -> zipfile.ZipFile:
    """A ZIP container checked against the bomb limits before anything is inflated."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise Uninspected(f"broken ZIP: {exc}") from None
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        zf.close()
        raise Uninspected(f"{len(infos)} members, more than {limits.max_members}")
    total = 0
    packed = 0
    for info in infos:
        total += info.file_size
        packed += info.compress_size
        if info.file_size > 1 << 20 and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            zf.close()
            raise Uninspected(f"decompression bomb: {member_name(info)[:80]!r} ratio too high")
    if total > limits.max_uncompressed:
        zf.close()
        raise Uninspected(f"uncompressed size {total} over the limit")
    if total > 1 << 20 and total > limits.max_ratio * max(packed, 1):
        zf.close()  # many small members, each under the per-member threshold
        raise Uninspected("decompression bomb: the archive's total ratio is too high")
    return zf


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, never more than its declared size (a lying header is a bomb)."""
    with zf.open(info) as fh:
        data = fh.read(min(info.file_size, limit) + 1)
    if len(data) > info.file_size or len(data) > limit:
        raise Uninspected("member larger than declared or than the limit")
    return data


def _zip(
    out: Output, name: str, data: bytes, limits: Limits, depth: int, secs: Sections
) -> tuple[str, str]:
    zf = open_zip(data, limits)
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        listing = [member_name(i) for i in infos]
        secs.add("listing", "\n".join(listing))
        encrypted = [n for i, n in zip(infos, listing, strict=True) if i.flag_bits & 0x1]
        status, detail = "read", ""
        if encrypted:
            status = "encrypted"
            detail = f"{len(encrypted)} of {len(infos)} member(s) password-protected"
        if depth >= limits.max_depth:
            if len(infos) > len(encrypted):
                return "uninspected", f"archive nested deeper than {limits.max_depth}"
            return status, detail
        for info, mname in zip(infos, listing, strict=True):
            if info.flag_bits & 0x1:
                continue
            try:
                body = read_member(zf, info, limits.max_uncompressed)
            except Uninspected as exc:
                out.contents.append(
                    AttachmentContent(f"{name}/{mname}", "other", "uninspected", (), str(exc))
                )
                continue
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
                out.contents.append(
                    AttachmentContent(
                        f"{name}/{mname}",
                        "other",
                        "uninspected",
                        (),
                        f"member cannot be read: {type(exc).__name__}",
                    )
                )
                continue
            dispatch(out, f"{name}/{mname}", "application/octet-stream", body, limits, depth + 1)
            del body
    return status, detail
