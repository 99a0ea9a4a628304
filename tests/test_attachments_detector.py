"""The attachments detector: counts, what is inside encrypted containers, masked names."""

from __future__ import annotations

import dataclasses

from leakguard.detectors import attachments
from leakguard.message.parse import parse_message
from leakguard.organization import Context, Organization
from leakguard.types import AttachmentContent, Message

ORG = Organization(internal_domains=["city.example.lg.jp"])
CTX = Context(org=ORG)


def mail(to: str, *contents: AttachmentContent, files: int = 1) -> Message:
    parts = "".join(
        f"--b\r\nContent-Type: application/octet-stream; name=f{i}.bin\r\n\r\nxx\r\n"
        for i in range(files)
    )
    raw = (
        f"From: a@city.example.lg.jp\r\nTo: {to}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n{parts}--b--\r\n"
    ).encode()
    return dataclasses.replace(parse_message(raw), contents=contents)


def c(name: str, status: str, detail: str = "") -> AttachmentContent:
    return AttachmentContent(name, "zip" if name.endswith(".zip") else "pdf", status, (), detail)


def test_counts_and_external() -> None:
    msg = mail("x@partner.example", c("scan.pdf", "unreadable"), c("a.zip", "encrypted"), files=2)
    r = attachments.detect(msg, CTX)
    assert r.facts == {
        "attachments": 2,
        "external_attachments": 2,
        "encrypted_attachments": 1,
        "unreadable_attachments": 1,
    }
    inside = mail("y@city.example.lg.jp", c("scan.pdf", "unreadable"))
    r2 = attachments.detect(inside, CTX)
    assert r2.facts["external_attachments"] == 0
    assert not any(f.fact == "external_attachments" for f in r2.findings)


def test_encrypted_zip_inside_a_readable_zip_counts_once() -> None:
    msg = mail(
        "x@partner.example",
        c("outer.zip", "read"),
        c("outer.zip/inner.zip", "encrypted"),
        c("outer.zip/inner.zip/deeper.zip", "encrypted"),
    )
    assert attachments.detect(msg, CTX).facts["encrypted_attachments"] == 1


def test_uninspected_attachment_is_named_but_not_counted_twice() -> None:
    msg = mail("x@partner.example", c("big.pdf", "uninspected", "over the time budget"))
    r = attachments.detect(msg, CTX)
    assert "uninspected_parts" not in r.facts  # the recipients detector reports the fact
    (f,) = [f for f in r.findings if f.fact == "uninspected_parts"]
    assert f.evidence["attachment"] == "big.pdf"


def test_long_digit_runs_in_names_are_masked() -> None:
    msg = mail("x@partner.example", c("マイナンバー_482130657391.pdf", "unreadable"))
    (f,) = [f for f in attachments.detect(msg, CTX).findings if f.fact != "external_attachments"]
    assert f.evidence["attachment"] == "マイナンバー_4821****7391.pdf"
    assert "482130657391" not in f.detail


def test_explanations_in_both_languages() -> None:
    from leakguard.explain import explain_finding

    msg = mail("x@partner.example", c("scan.pdf", "unreadable"), c("a.zip", "encrypted"))
    found = {f.fact: f for f in attachments.detect(msg, CTX).findings}
    assert explain_finding(found["unreadable_attachments"], "ja") == (
        "添付ファイル「scan.pdf」は文字情報がないため (スキャン画像など) 中身を確認できません"
    )
    assert explain_finding(found["encrypted_attachments"], "en") == (
        "Attachment 'a.zip' is password-protected: its content cannot be checked"
    )
    assert "x@partner.example" in explain_finding(found["external_attachments"], "ja")


def test_a_csv_disguised_as_an_inline_image_counts_as_an_attachment() -> None:
    """A CSV labelled image/png and sent inline is not a logo: counted and read (review)."""
    from leakguard.engine import Engine
    from leakguard.policy.loader import default_policy_path

    csv = "氏名,個人番号\r\n山田 太郎,123456789018\r\n".encode()
    raw = (
        b"From: kazuya.sato@city.example.lg.jp\r\nTo: info@company01.example\r\n"
        b"Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee\r\n"
        b"--B\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=meibo.csv\r\n"
        b"\r\n" + csv + b"\r\n--B--\r\n"
    )
    engine = Engine.from_files(default_policy_path())
    try:
        d = engine.decide(raw)
    finally:
        engine.close()
    assert d.verdict.facts["attachments"] == 1
