"""Formats the extractor does not parse must never pass as clean (security review, issue 7).

Text under an unknown name or a lying label is read as text, a mail saved without its name
is read as a mail, gzip is inflated and its content read, and any other binary format
(7-Zip, RAR, LZH, RTF, unknown data) is "unreadable" (or "encrypted" when the archive says
so), which the default policy delays. Only audio/video and real small inline images are
"skipped".
"""

from __future__ import annotations

import base64
import gzip
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from leakguard.engine import Engine
from leakguard.extract import ExtractConfig
from leakguard.extract.formats import Limits, extract, is_inline_decoration, sniff
from leakguard.message.parse import parse_message
from leakguard.types import AttachmentContent

POLICY = Path(__file__).resolve().parents[1] / "policies" / "default.yaml"

LIMITS = Limits()
MEIBO = "氏名,個人番号,住所\r\n山田 太郎,123456789018,東京都新宿区西新宿2-8-1\r\n"
INNER_MAIL = (
    "From: =?ISO-2022-JP?B?GyRCOzNFRBsoQiAbJEJCQE86GyhC?= <taro.yamada@example.net>\r\n"
    "To: shimin@city.example.lg.jp\r\n"
    "Subject: =?ISO-2022-JP?B?GyRCPz1AQRsoQg==?=\r\n"
    "Date: Mon, 2 Nov 2026 10:00:00 +0900\r\n"
    "Message-ID: <20261102100000.1234@example.net>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
    "Content-Transfer-Encoding: 7bit\r\n\r\n"
).encode("ascii") + "市民課御中\r\n\r\n個人番号：123456789018\r\n".encode("iso-2022-jp")


def only(name: str, ctype: str, data: bytes) -> AttachmentContent:
    out = extract(name, ctype, data, LIMITS)
    assert len(out.contents) == 1, out.contents
    return out.contents[0]


def text_of(c: AttachmentContent) -> str:
    return "\n".join(s.text for s in c.sections)


# --------------------------------------------------------------------------- text under any name


@pytest.mark.parametrize("codec", ["cp932", "euc-jp", "utf-8", "iso-2022-jp"])
@pytest.mark.parametrize("name", ["meibo.dat", "名簿", "申請.bin", "export.001"])
def test_text_with_an_unknown_name_is_read_as_text(codec: str, name: str) -> None:
    c = only(name, "application/octet-stream", MEIBO.encode(codec))
    assert c.status == "read"
    assert "123456789018" in text_of(c)


def test_csv_labelled_as_an_image_is_read() -> None:
    assert sniff("meibo.png", "image/png", MEIBO.encode("cp932")) == "text"
    c = only("meibo.csv", "image/png", MEIBO.encode("cp932"))
    assert c.status == "read" and "123456789018" in text_of(c)


def test_unknown_binary_is_unreadable_not_skipped() -> None:
    data = bytes(range(256)) * 40
    c = only("data.bin", "application/octet-stream", data)
    assert (c.kind, c.status) == ("other", "unreadable")
    # a picture format we do not know by its magic, labelled as one: still unreadable
    assert only("scan.jxl", "image/jxl", b"\xff\x0a" + data).status == "unreadable"


def test_audio_and_video_are_still_skipped() -> None:
    assert only("voice.m4a", "audio/mp4", b"\0\0\0\x20ftypM4A " + b"\0" * 60).status == "skipped"
    assert only("clip.mp4", "video/mp4", b"\0\0\0\x18ftypmp42" + b"\0" * 60).status == "skipped"


# --------------------------------------------------------------------------- archives, RTF


@pytest.mark.parametrize(
    ("name", "ctype", "data"),
    [
        ("data.7z", "application/x-7z-compressed", b"7z\xbc\xaf'\x1c\x00\x04" + b"\0" * 60),
        ("data.rar", "application/x-rar-compressed", b"Rar!\x1a\x07\x01\x00" + b"\0" * 60),
        ("old.rar", "application/octet-stream", b"Rar!\x1a\x07\x00\xcf\x90\x73\x00\x00" + b"\0"),
        ("data.lzh", "application/x-lzh-compressed", b"\x2a\x9c-lh5-" + b"\0" * 60),
        ("資料.rtf", "application/rtf", b"{\\rtf1\\ansi " + MEIBO.encode("cp932") + b"}"),
        ("資料.doc", "application/msword", b"{\\rtf1\\ansi\\ansicpg932 \\'8c\\'c2}"),
    ],
)
def test_archives_and_rtf_we_do_not_read_are_unreadable(name: str, ctype: str, data: bytes) -> None:
    c = only(name, ctype, data)
    assert c.status == "unreadable", c


def test_password_protected_rar_is_encrypted() -> None:
    rar4 = b"Rar!\x1a\x07\x00" + b"\xcf\x90\x73\x80\x00\x0d\x00" + b"\0" * 20
    assert only("給与.rar", "application/octet-stream", rar4).status == "encrypted"
    # RAR 5: CRC32, header size (vint), header type 4 = archive encryption header
    rar5 = b"Rar!\x1a\x07\x01\x00" + b"\x11\x22\x33\x44" + b"\x21\x04\x00" + b"\0" * 40
    assert only("給与.rar", "application/octet-stream", rar5).status == "encrypted"


def test_gzip_content_is_read() -> None:
    out = extract("meibo.csv.gz", "application/gzip", gzip.compress(MEIBO.encode("cp932")), LIMITS)
    assert [(c.name, c.status) for c in out.contents] == [
        ("meibo.csv.gz", "read"),
        ("meibo.csv.gz/meibo.csv", "read"),
    ]
    assert "123456789018" in text_of(out.contents[1])


def test_gzip_bomb_and_broken_gzip_are_uninspected() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    assert only("x.gz", "application/gzip", bomb).status == "uninspected"
    cut = gzip.compress(MEIBO.encode() * 100)[:60]
    assert only("x.gz", "application/gzip", cut).status == "uninspected"
    raw_deflate = zlib.compress(b"x")  # not gzip: unknown binary
    assert only("x.z", "application/octet-stream", raw_deflate).status == "unreadable"


# --------------------------------------------------------------------------- mail without a name


def test_mail_without_an_extension_is_read_as_mail() -> None:
    assert sniff("申請", "application/octet-stream", INNER_MAIL) == "eml"
    out = extract("申請", "application/octet-stream", INNER_MAIL, LIMITS)
    assert [name for name, _ in out.messages] == ["申請"]
    assert "123456789018" in text_of(out.contents[0])


def test_text_that_starts_like_a_header_is_not_taken_for_mail() -> None:
    memo = "Subject: 打合せメモ\r\n本日の打合せの件です。\r\n".encode("cp932")
    assert sniff("memo", "application/octet-stream", memo) == "text"
    csv = b"From:,To:,Amount\r\nA,B,100\r\n"
    assert sniff("t", "application/octet-stream", csv) == "text"


# --------------------------------------------------------------------------- inline decoration


def _related(img: bytes, name: str) -> bytes:
    body = base64.encodebytes(img).replace(b"\n", b"\r\n")
    return (
        b"From: kazuya.sato@city.example.lg.jp\r\nTo: yamada@mirai-kensetsu.co.jp\r\n"
        b"Subject: =?UTF-8?B?6LOH5paZ?=\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/related; boundary="r"; type="text/html"\r\n\r\n'
        b"--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b'<p>ok</p><img src="cid:x@y">\r\n'
        b'--r\r\nContent-Type: image/png; name="' + name.encode() + b'"\r\n'
        b'Content-Disposition: inline; filename="' + name.encode() + b'"\r\n'
        b"Content-ID: <x@y>\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body + b"\r\n--r--\r\n"
    )


def test_inline_decoration_must_be_an_image_by_its_bytes() -> None:
    logo = parse_message(_related(b"\x89PNG\r\n\x1a\n" + b"\x00IHDR" * 100, "image001.png"))
    assert is_inline_decoration(logo.attachments[0], logo.raw)
    fake = parse_message(_related(MEIBO.encode("cp932"), "meibo.csv"))
    assert not is_inline_decoration(fake.attachments[0], fake.raw)
    gif = parse_message(_related(b"GIF89a" + b"\x01" * 300, "spacer.gif"))
    assert is_inline_decoration(gif.attachments[0], gif.raw)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    from leakguard.policy import load_policy

    e = Engine(load_policy(POLICY), extract=ExtractConfig(workers=1))
    try:
        yield e
    finally:
        e.close()


def test_csv_disguised_as_an_inline_image_is_read_and_held(engine: Engine) -> None:
    d = engine.decide(_related(MEIBO.encode("cp932"), "meibo.csv"))
    assert [(c.name, c.status) for c in d.message.contents] == [("meibo.csv", "read")]
    assert d.verdict.facts["personal_data_items"] >= 1
    assert d.verdict.action != "pass"


def test_unknown_binary_attachment_is_delayed_not_passed(engine: Engine) -> None:
    data = base64.encodebytes(b"7z\xbc\xaf'\x1c\x00\x04" + bytes(range(256)) * 8)
    raw = (
        b"From: kazuya.sato@city.example.lg.jp\r\nTo: yamada@mirai-kensetsu.co.jp\r\n"
        b"Subject: data\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
        b"--m\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplease find\r\n"
        b'--m\r\nContent-Type: application/x-7z-compressed; name="data.7z"\r\n'
        b'Content-Disposition: attachment; filename="data.7z"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + data + b"--m--\r\n"
    )
    d = engine.decide(raw)
    assert d.verdict.facts["unreadable_attachments"] == 1
    assert d.verdict.action != "pass"


@pytest.mark.parametrize(
    ("name", "pack"),
    [
        ("meibo.csv.bz2", lambda b: __import__("bz2").compress(b)),
        ("meibo.csv.xz", lambda b: __import__("lzma").compress(b)),
        ("meibo.csv.gz", lambda b: gzip.compress(b[:20]) + gzip.compress(b[20:])),
    ],
)
def test_bzip2_xz_and_concatenated_gzip_are_read(name: str, pack: Callable[[bytes], bytes]) -> None:
    out = extract(name, "application/octet-stream", pack(MEIBO.encode("cp932")), LIMITS)
    assert [(c.name, c.status) for c in out.contents] == [
        (name, "read"),
        (f"{name}/meibo.csv", "read"),
    ]
    assert MEIBO.replace("\r\n", "\n") in text_of(out.contents[1]) + "\n"


def test_signatures_are_skipped_but_only_when_they_look_like_one() -> None:
    der = b"\x30\x82\x09\x1c\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02" + bytes(range(200))
    assert only("smime.p7s", "application/pkcs7-signature", der).status == "skipped"
    pgp = (
        b"-----BEGIN PGP SIGNATURE-----\r\n\r\niQEzBAEBCAAdFiEE\r\n-----END PGP SIGNATURE-----\r\n"
    )
    assert only("signature.asc", "application/pgp-signature", pgp).status == "skipped"
    fake = only("smime.p7s", "application/x-pkcs7-signature", MEIBO.encode("cp932"))
    assert fake.status == "read" and "123456789018" in text_of(fake)


def test_empty_and_blank_parts_are_not_unreadable() -> None:
    # a bounce's empty message/delivery-status part, an empty file: nothing is hidden there
    assert only("part 2 (message/delivery-status)", "message/delivery-status", b"").status == "read"
    assert only("empty.dat", "application/octet-stream", b"\r\n \r\n").status == "read"
    assert only("zeros.dat", "application/octet-stream", b"\0" * 64).status == "unreadable"


def test_utf16_text_with_a_bom_is_read() -> None:
    data = b"\xff\xfe" + MEIBO.replace(",", "\t").encode("utf-16-le")
    c = only("名簿.txt.dat", "application/octet-stream", data)
    assert (c.kind, c.status) == ("text", "read")
    assert "山田 太郎\t123456789018" in text_of(c)


def test_a_zip_after_a_text_preamble_is_not_taken_for_text() -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("meibo.csv", MEIBO.encode("cp932"))
    data = b"#" * 9000 + b"\r\n" + buf.getvalue()
    assert only("x.dat", "application/octet-stream", data).status == "unreadable"
