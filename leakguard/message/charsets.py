"""Decoding bytes of unknown or doubtful charset into text, never raising.

Real Japanese office mail is the design case:

* ``Shift_JIS`` labels are decoded as ``cp932`` (Windows' superset: NEC special characters
  such as ①, IBM extension kanji such as 髙).
* ``ISO-2022-JP`` is decoded strictly first; when that fails (CP932 extensions escaped as
  JIS X 0208, which Python's ``iso2022_jp*`` codecs reject) a small segment decoder maps the
  JIS rows through EUC-JP, and the rows EUC-JP lacks through their Shift_JIS position into
  ``cp932``.
* ``EUC-JP`` gets the same fallback for eucJP-ms (NEC row 13).
* Missing, bogus or wrong labels: try UTF-8, then the Japanese candidates (picked by a
  script score), then ``cp1252``/``latin-1``.

Every function returns the text, the charset actually used, and a defect note ("" when the
label was right), so the parser can record what it did.
"""

from __future__ import annotations

import codecs
import functools
import re
from typing import NamedTuple


class Decoded(NamedTuple):
    text: str
    charset: str  # what was actually used ("" when nothing could be known)
    defect: str  # short note when the label was missing, wrong or needed a fallback


# Labels mapped to the codec that decodes what senders really mean by them.
_ALIASES: dict[str, str] = {}
for _names, _codec in (
    (
        "shift_jis shift-jis sjis x-sjis s-jis shiftjis ms_kanji ms-kanji csshiftjis "
        "windows-31j cp932 ms932 x-ms-cp932 ibm-943 cp943 shift_jis-2004 x-mac-japanese",
        "cp932",
    ),
    (
        "iso-2022-jp iso2022jp iso2022-jp csiso2022jp iso-2022-jp-1 iso-2022-jp-ms "
        "iso-2022-jp-2 iso-2022-jp-3 iso-2022-jp-2004 cp50220 cp50221 cp50222 jis "
        "x-windows-iso2022jp",
        "iso2022_jp",
    ),
    (
        "euc-jp eucjp x-euc-jp x-euc cseucpkdfmtjapanese ujis euc-jp-ms eucjp-ms cp51932 "
        "euc-jis-2004",
        "euc_jp",
    ),
    (
        "us-ascii ascii ansi_x3.4-1968 iso-8859-1 iso8859-1 iso_8859-1 latin1 latin-1 l1 "
        "cp819 ibm819 windows-1252 cp1252 x-cp1252",
        "cp1252",
    ),
    ("utf-8 utf8 unicode-1-1-utf-8 x-unicode20utf8", "utf-8"),
    ("gb2312 gbk x-gbk euc-cn cp936 chinese gb18030 csgb2312 x-euc-cn", "gb18030"),
    ("big5 big5-hkscs x-x-big5 cn-big5 csbig5", "big5hkscs"),
    ("ks_c_5601-1987 ks_c_5601 euc-kr korean cp949 windows-949 ksc5601 x-windows-949", "cp949"),
    ("iso-8859-9 latin5 windows-1254 cp1254", "cp1254"),
    ("tis-620 iso-8859-11 windows-874 cp874", "cp874"),
    ("unknown-8bit x-unknown unknown default x-user-defined 8bit binary none", ""),
):
    for _n in _names.split():
        _ALIASES[_n] = _codec

_WESTERN = frozenset({"cp1252", "cp1254", "cp874"})
_JAPANESE_RE = re.compile(
    r"[\u3000-\u30ff\u4e00-\u9fff\uf900-\ufaff\uff01-\uff60\u2460-\u24ff\u3200-\u33ff]"
)
_HIRAGANA_RE = re.compile(r"[\u3041-\u3096]")
_HALFWIDTH_RE = re.compile(r"[\uff61-\uff9f]")
_BAD_RE = re.compile(r"[\ufffd\ue000-\uf8ff\x80-\x9f]")
_SCORE_SAMPLE = 4000


@functools.lru_cache(maxsize=512)
def codec_for(label: str | None) -> str | None:
    """The Python codec for a MIME charset label; ``""`` = unknown (detect), None = no label."""
    if label is None:
        return None
    lab = label.strip().strip("\"'").strip().lower()
    if not lab:
        return None
    lab = lab.split("*", 1)[0]  # RFC 2231 "utf-8*ja"
    if lab in _ALIASES:
        return _ALIASES[lab]
    try:
        name = codecs.lookup(lab).name
    except (LookupError, ValueError):
        return ""
    try:
        b"ab".decode(name)  # LookupError for non-text codecs (base64, zlib, rot13, ...)
    except LookupError:
        return ""
    except (UnicodeError, ValueError):
        pass
    return _ALIASES.get(name, name)


# --------------------------------------------------------------------------- Japanese


def _jis_pair_to_cp932(j1: int, j2: int) -> str:
    """One JIS X 0208 code point (row/cell bytes 0x21-0x7E) through Shift_JIS into cp932."""
    if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
        return "\ufffd"
    s2 = (j2 + 0x1F + (j2 >= 0x60)) if j1 & 1 else j2 + 0x7E
    s1 = ((j1 + 1) >> 1) + 0x70
    if s1 >= 0xA0:
        s1 += 0x40
    return bytes((s1, s2)).decode("cp932", "replace")


def _euc_cp932_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: EUC-JP bytes the codec rejects, decoded via their cp932 position.

    Covers NEC row 13 (①, Ⅰ, ㈱) and the NEC-selected IBM extension rows 89-92 that
    Windows mail carries inside ISO-2022-JP and eucJP-ms.
    """
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    data = exc.object
    i = exc.start
    if i + 1 < len(data) and 0xA1 <= data[i] <= 0xFE and 0xA1 <= data[i + 1] <= 0xFE:
        return _jis_pair_to_cp932(data[i] - 0x80, data[i + 1] - 0x80), i + 2
    return "\ufffd", i + 1


codecs.register_error("leakguard-cp932", _euc_cp932_fallback)

# 7-bit JIS bytes -> EUC-JP bytes (GL -> GR); controls and space stay as they are.
_GL_TO_GR = bytes(b + 0x80 if 0x21 <= b <= 0x7E else b for b in range(256))
_ESC_RE = re.compile(rb"\x1b(\$@|\$B|\$\(D|\$\(Q|\$\(O|\(B|\(J|\(H|\(I|\$A|\$\(C|\.A|\.F|N)")
_SO, _SI = 0x0E, 0x0F


def _decode_jis_segment(seg: bytes, mode: str) -> str:
    if not seg:
        return ""
    if mode == "jis0208":
        return seg.translate(_GL_TO_GR).decode("euc_jp", "leakguard-cp932")
    if mode == "kana":  # JIS X 0201 katakana: 0x21-0x5F -> cp932 single bytes 0xA1-0xDF
        return seg.translate(_GL_TO_GR).decode("cp932", "replace")
    if mode == "other":  # JIS X 0212 / 0213 / GB / KSC: let the broad codec try
        return (b"\x1b$(D" + seg + b"\x1b(B").decode("iso2022_jp_2", "replace")
    return seg.decode("ascii", "replace")


def decode_iso2022jp_lenient(data: bytes) -> str:
    """ISO-2022-JP with CP932 extensions (CP50220/50221 output), never raising."""
    out: list[str] = []
    mode = "ascii"
    pos = 0
    for m in _ESC_RE.finditer(data):
        out.append(_decode_shifted(data[pos : m.start()], mode))
        seq = m.group(1)
        if seq in (b"$@", b"$B"):
            mode = "jis0208"
        elif seq == b"(I":
            mode = "kana"
        elif seq in (b"(B", b"(J", b"(H"):
            mode = "ascii"
        else:
            mode = "other"
        pos = m.end()
    out.append(_decode_shifted(data[pos:], mode))
    return "".join(out)


def _decode_shifted(seg: bytes, mode: str) -> str:
    """A segment that may contain SO ... SI (katakana shift used by some Windows mailers)."""
    if _SO not in seg:
        return _decode_jis_segment(seg.replace(b"\x0f", b""), mode)
    out: list[str] = []
    for i, piece in enumerate(seg.split(bytes((_SO,)))):
        if i == 0:
            out.append(_decode_jis_segment(piece, mode))
            continue
        kana, _si, rest = piece.partition(bytes((_SI,)))
        out.append(_decode_jis_segment(kana, "kana"))
        out.append(_decode_jis_segment(rest, mode))
    return "".join(out)


def _ja_score(text: str) -> int:
    sample = text[:_SCORE_SAMPLE]
    return (
        len(_JAPANESE_RE.findall(sample))
        - len(_HALFWIDTH_RE.findall(sample))
        - 3 * len(_BAD_RE.findall(sample))
    )


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeError, LookupError):
        return None


def _guess_japanese(data: bytes) -> Decoded | None:
    """cp932 or EUC-JP when one of them decodes cleanly and reads as Japanese."""
    best: Decoded | None = None
    best_score = 0
    for codec, name in (("cp932", "cp932"), ("euc_jp", "euc-jp")):
        text = _strict(data, codec)
        if text is None:
            continue
        score = _ja_score(text)
        if score > best_score:
            best, best_score = Decoded(text, name, ""), score
    return best


def _detect(data: bytes) -> Decoded:
    """Decode without a usable label: ASCII/JIS, UTF-8, Japanese, then Western."""
    if data.isascii():
        if b"\x1b$" in data or b"\x1b(I" in data:
            text = _strict(data, "iso2022_jp")
            if text is not None:
                return Decoded(text, "iso-2022-jp", "")
            return Decoded(decode_iso2022jp_lenient(data), "iso-2022-jp-cp932", "")
        return Decoded(data.decode("ascii"), "us-ascii", "")
    text = _strict(data, "utf-8")
    if text is not None:
        return Decoded(text.removeprefix("\ufeff"), "utf-8", "")
    ja = _guess_japanese(data)
    if ja is not None:
        return ja
    # Mostly-Japanese text with a few broken bytes reads better as cp932 than as latin-1.
    lenient = data.decode("cp932", "replace")
    sample = lenient[:_SCORE_SAMPLE]
    if len(_HIRAGANA_RE.findall(sample)) >= 4 and _ja_score(lenient) > 0:
        return Decoded(lenient, "cp932", "undecodable bytes replaced")
    text = _strict(data, "cp1252")
    if text is not None:
        return Decoded(text, "cp1252", "")
    return Decoded(data.decode("latin-1"), "latin-1", "")


def decode_bytes(data: bytes, label: str | None) -> Decoded:
    """Decode ``data`` that claims charset ``label`` (None: no label). Never raises."""
    if not data:
        return Decoded("", (label or "").strip().strip("\"'").lower(), "")
    codec = codec_for(label)
    if codec is None:  # no label at all
        d = _detect(data)
        if d.charset == "us-ascii" or d.defect:
            return d
        return d._replace(defect=f"no charset label, detected {d.charset}")
    if codec == "":
        d = _detect(data)
        return d._replace(defect=f"unknown charset {label!r}, detected {d.charset}")
    if codec == "iso2022_jp":
        return _decode_iso2022jp(data, label)
    if codec in _WESTERN:
        if data.isascii():
            return Decoded(data.decode("ascii"), "us-ascii", "")
        # Unencoded UTF-8 or Japanese behind a Western label is the common mislabel.
        utf = _strict(data, "utf-8")
        if utf is not None:
            return Decoded(utf, "utf-8", f"labelled {label}, decoded as utf-8")
        ja = _guess_japanese(data)
        if ja is not None and len(_HIRAGANA_RE.findall(ja.text[:_SCORE_SAMPLE])) >= 4:
            return ja._replace(defect=f"labelled {label}, decoded as {ja.charset}")
        text = _strict(data, codec)
        if text is not None:
            return Decoded(text, codec, "")
        return Decoded(data.decode("latin-1"), "latin-1", "")
    text = _strict(data, codec)
    if text is not None:
        if codec == "utf-8":
            text = text.removeprefix("\ufeff")
        return Decoded(text, codec, "")
    if codec == "euc_jp":
        return Decoded(data.decode("euc_jp", "leakguard-cp932"), "euc-jp-ms", "")
    # The label is wrong or the data broken: detect, else decode leniently with the label.
    d = _detect(data)
    if d.charset not in ("cp1252", "latin-1") and not d.defect:
        return d._replace(defect=f"labelled {label}, decoded as {d.charset}")
    return Decoded(data.decode(codec, "replace"), codec, f"invalid {label} bytes replaced")


def _decode_iso2022jp(data: bytes, label: str | None) -> Decoded:
    if not data.isascii():  # 8-bit bytes: not ISO-2022-JP whatever the label says
        d = _detect(data)
        return d._replace(defect=f"labelled {label}, 8-bit data decoded as {d.charset}")
    text = _strict(data, "iso2022_jp")
    if text is not None:
        return Decoded(text, "iso-2022-jp", "")
    text = _strict(data, "iso2022_jp_ext")  # JIS X 0201 katakana
    if text is not None:
        return Decoded(text, "iso-2022-jp", "")
    return Decoded(decode_iso2022jp_lenient(data), "iso-2022-jp-cp932", "")


def decode_header_bytes(data: bytes) -> Decoded:
    """Raw (unencoded) header bytes: ASCII fast path, then detection."""
    if data.isascii() and b"\x1b" not in data:
        return Decoded(data.decode("ascii"), "us-ascii", "")
    return _detect(data)
