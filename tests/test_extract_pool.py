"""The extraction worker pool: budgets, crashes, hangs, memory, and the engine around it."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leakguard.engine import Engine
from leakguard.extract import ExtractConfig, Extractor, has_attachments
from leakguard.extract.formats import Limits, Output
from leakguard.extract.pool import TEST_CRASH, TEST_HANG, TEST_MEMORY, ExtractPool, Failure, Job
from leakguard.message.parse import parse_message
from leakguard.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
POLICY = ROOT / "policies" / "default.yaml"


@pytest.fixture(scope="module")
def pool() -> Iterator[ExtractPool]:
    p = ExtractPool(1, limits=Limits(), memory_bytes=512 * 1024 * 1024, test_hooks=True)
    try:
        yield p
    finally:
        p.close()


def job(ctype: str, body: bytes = b"hello", name: str = "a.txt") -> Job:
    return Job(name, ctype, "", "", body)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_pool_reads_a_job(pool: ExtractPool) -> None:
    (res,) = pool.run([job("text/plain", "氏名 山本".encode())], 10)
    assert isinstance(res, Output)
    assert res.contents[0].sections[0].text == "氏名 山本"


def test_base64_is_decoded_in_the_worker(pool: ExtractPool) -> None:
    body = base64.encodebytes("電話 090-4821-3376".encode())
    (res,) = pool.run([Job("a.txt", "text/plain", "base64", "utf-8", memoryview(body))], 10)
    assert isinstance(res, Output)
    assert res.contents[0].sections[0].text == "電話 090-4821-3376"


def test_segfault_is_survived_and_the_worker_replaced(pool: ExtractPool) -> None:
    (before,) = pool.pids()
    replaced = pool.replaced
    res = pool.run([job(TEST_CRASH), job("text/plain")], 10)
    assert isinstance(res[0], Failure) and "died" in res[0].detail
    assert isinstance(res[1], Output)  # the next attachment is read by the new worker
    assert pool.replaced == replaced + 1
    (after,) = pool.pids()
    assert after != before and not alive(before)


def test_hang_is_killed_at_the_budget(pool: ExtractPool) -> None:
    (before,) = pool.pids()
    start = time.monotonic()
    res = pool.run([job(TEST_HANG), job("text/plain")], 1.0)
    took = time.monotonic() - start
    assert 0.9 <= took < 3.0
    assert isinstance(res[0], Failure) and "time budget" in res[0].detail
    assert isinstance(res[1], Failure)  # no time left for the rest: uninspected too
    time.sleep(0.2)
    assert not alive(before)
    (ok,) = pool.run([job("text/plain")], 10)
    assert isinstance(ok, Output)


def test_memory_limit_makes_a_memory_error_not_an_outage(pool: ExtractPool) -> None:
    (res,) = pool.run([job(TEST_MEMORY)], 20)
    assert isinstance(res, Output | Failure)
    if isinstance(res, Failure):
        assert "memory" in res.detail or "died" in res.detail
    (ok,) = pool.run([job("text/plain")], 10)
    assert isinstance(ok, Output)


def test_closed_pool_reports_failures() -> None:
    p = ExtractPool(1)
    pids = p.pids()
    p.close()
    time.sleep(0.2)
    assert not any(alive(pid) for pid in pids)
    (res,) = p.run([job("text/plain")], 1)
    assert isinstance(res, Failure)


# --------------------------------------------------------------------------- Extractor


@pytest.fixture(scope="module")
def extractor() -> Iterator[Extractor]:
    ex = Extractor(ExtractConfig(workers=1, message_timeout=10), test_hooks=True)
    try:
        yield ex
    finally:
        ex.close()


def read_example(extractor: Extractor, name: str):  # type: ignore[no-untyped-def]
    return extractor.read(parse_message((EXAMPLES / name).read_bytes()))


def test_mail_without_attachments_starts_nothing() -> None:
    ex = Extractor()
    msg = parse_message((EXAMPLES / "internal-only-many-ja.eml").read_bytes())
    assert not has_attachments(msg)
    assert ex.read(msg) is msg
    assert ex._pool is None


def test_request_form_contents_and_location(extractor: Extractor) -> None:
    msg = read_example(extractor, "attachment-request-form-pdf-ja.eml")
    (c,) = msg.contents
    assert (c.name, c.kind, c.status) == ("開示請求書_受付2026-0412.pdf", "pdf", "read")
    assert c.sections[0].location == "page 1"
    assert "個人番号 4821 3065 7391" in c.sections[0].text.split("\n")
    assert msg.uninspected_parts == 0


def test_calendar_attendees_reach_the_message(extractor: Extractor) -> None:
    msg = read_example(extractor, "calendar-invite-ja.eml")
    assert [a.addr for a in msg.calendar_attendees] == [
        "kazuya.sato@city.example.lg.jp",
        "k-tanaka@aozora-jinzai.co.jp",
        "kenji.kimura@mirai-kensetsu.co.jp",
        "okada@hikari-sekkei.co.jp",
        "kobayashi@city.example.lg.jp",
    ]
    assert msg.calendar_attendees[1].display_name == "田中 恵子"


def test_winmail_dat_becomes_an_attached_message(extractor: Extractor) -> None:
    msg = read_example(extractor, "attachment-winmail-dat-en.eml")
    assert len(msg.attached_messages) == 1
    assert msg.attached_messages[0].subject == "窓口受付一覧の送付"
    assert [c.name for c in msg.contents] == ["winmail.dat", "winmail.dat/受付一覧.csv"]


EML_AS_OCTET = (
    "From: Kazuya Sato <kazuya.sato@city.example.lg.jp>\r\n"
    "To: partner@sample-shoji.co.jp\r\n"
    "Subject: fwd\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
    '--b\r\nContent-Type: application/octet-stream; name="original.eml"\r\n'
    'Content-Disposition: attachment; filename="original.eml"\r\n'
    "Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
)
INNER_EML = (
    "From: Taro Tanaka <tanaka@other-client.example>\r\n"
    "To: kazuya.sato@city.example.lg.jp\r\n"
    "Cc: hanako.yamada@third-party.example\r\n"
    "Subject: 相談\r\n\r\n"
    "ご相談です。\r\n"
)


def test_eml_sent_as_octet_stream_is_an_attached_message_with_quote_block(
    extractor: Extractor,
) -> None:
    b64 = base64.encodebytes(INNER_EML.encode()).decode().replace("\n", "\r\n")
    raw = EML_AS_OCTET.format(b64=b64).encode()
    msg = extractor.read(parse_message(raw))
    assert [m.subject for m in msg.attached_messages] == ["相談"]
    block = msg.quoted_blocks[-1]
    assert {a.addr for a in block.participants} >= {
        "tanaka@other-client.example",
        "hanako.yamada@third-party.example",
    }
    assert block.location.startswith("attachment original.eml")


def test_crash_in_one_attachment_marks_it_uninspected(extractor: Extractor) -> None:
    raw = (
        b"From: a@city.example.lg.jp\r\nTo: b@partner.example\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b"--b\r\nContent-Type: " + TEST_CRASH.encode() + b"; name=evil.bin\r\n\r\nxx\r\n"
        b"--b\r\nContent-Type: text/csv; name=list.csv\r\n\r\nname,phone\r\n--b--\r\n"
    )
    msg = extractor.read(parse_message(raw))
    assert [(c.name, c.status) for c in msg.contents] == [
        ("evil.bin", "uninspected"),
        ("list.csv", "read"),
    ]
    assert msg.uninspected_parts == 1


def test_oversized_attachment_is_not_sent_to_a_worker() -> None:
    ex = Extractor(ExtractConfig(max_attachment_bytes=1024))
    raw = (
        b"From: a@city.example.lg.jp\r\nTo: b@partner.example\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: application/pdf; name=big.pdf\r\n\r\n"
        + b"x" * 5000
        + b"\r\n--b--\r\n"
    )
    msg = ex.read(parse_message(raw))
    assert [(c.name, c.status) for c in msg.contents] == [("big.pdf", "uninspected")]
    assert msg.uninspected_parts == 1
    ex.close()


# --------------------------------------------------------------------------- engine


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    e = Engine(load_policy(POLICY), extract=ExtractConfig(workers=1))
    try:
        yield e
    finally:
        e.close()


def facts_of(engine: Engine, name: str) -> dict[str, int]:
    return dict(engine.decide((EXAMPLES / name).read_bytes()).verdict.facts)


def test_engine_facts_for_the_attachment_examples(engine: Engine) -> None:
    scan = facts_of(engine, "attachment-scan-pdf-ja.eml")
    assert (scan["attachments"], scan["unreadable_attachments"], scan["external_attachments"]) == (
        1,
        1,
        1,
    )
    ppap = facts_of(engine, "attachment-encrypted-zip-ja.eml")
    assert (ppap["encrypted_attachments"], ppap["unreadable_attachments"]) == (1, 0)
    invoice = facts_of(engine, "attachment-invoice-pdf-ja.eml")  # to an internal address
    assert (invoice["attachments"], invoice["external_attachments"]) == (1, 0)
    form = facts_of(engine, "attachment-request-form-pdf-ja.eml")
    assert form["encrypted_attachments"] == form["unreadable_attachments"] == 0
    assert form["uninspected_parts"] == 0


def test_calendar_part_is_not_counted_as_a_file(engine: Engine) -> None:
    facts = facts_of(engine, "calendar-invite-ja.eml")
    assert facts["attachments"] == 0


def test_plain_mail_facts_unchanged(engine: Engine) -> None:
    facts = facts_of(engine, "internal-only-many-ja.eml")
    assert facts["attachments"] == 0
    assert facts["external_attachments"] == 0


async def test_event_loop_is_not_blocked_while_a_worker_hangs() -> None:
    ex = Extractor(ExtractConfig(workers=1, message_timeout=1.5), test_hooks=True)
    ex.start()
    raw = (
        b"From: a@city.example.lg.jp\r\nTo: b@partner.example\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: " + TEST_HANG.encode() + b"; name=hang.bin\r\n\r\nxx\r\n--b--\r\n"
    )
    ticks = 0
    stop = False

    async def ticker() -> None:
        nonlocal ticks
        while not stop:
            ticks += 1
            await asyncio.sleep(0.01)

    t = asyncio.create_task(ticker())
    try:
        start = time.monotonic()
        msg = await asyncio.to_thread(ex.read, parse_message(raw))
        took = time.monotonic() - start
    finally:
        stop = True
        await t
        ex.close()
    assert msg.contents[0].status == "uninspected"
    assert 1.4 <= took < 4
    assert ticks >= 50  # the loop kept running (100 Hz) while the worker hung


def test_outlook_msg_attachment_is_an_attached_message_for_the_thread_detector(
    extractor: Extractor,
) -> None:
    from cfb import msg_file

    data = msg_file(
        subject="ご相談",
        body="佐藤様\r\nご相談です。\r\n",
        sender=("木村 健二", "kimura@hikari-sekkei.co.jp"),
        recipients=[
            ("佐藤 一也", "kazuya.sato@city.example.lg.jp", 1),
            ("岡田 真理", "okada@third-party.example", 2),
        ],
        attachments=[],
    )
    b64 = base64.encodebytes(data).decode().replace("\n", "\r\n")
    raw = (
        "From: Kazuya Sato <kazuya.sato@city.example.lg.jp>\r\n"
        "To: yamada@mirai-kensetsu.co.jp\r\nSubject: FW: ご相談\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n転送します\r\n"
        '--b\r\nContent-Type: application/vnd.ms-outlook; name="ご相談.msg"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + b64 + "\r\n--b--\r\n"
    ).encode()
    msg = extractor.read(parse_message(raw))
    (inner,) = msg.attached_messages
    assert inner.subject == "ご相談"
    assert [a.addr for a in inner.cc] == ["okada@third-party.example"]
    block = msg.quoted_blocks[-1]
    assert "okada@third-party.example" in {a.addr for a in block.participants}
    assert [(c.name, c.kind) for c in msg.contents] == [("ご相談.msg", "msg")]


def test_extract_config_section_is_validated_with_locations() -> None:
    from leakguard.config import ConfigError, parse_config_text

    cfg = parse_config_text("extract:\n  workers: 3\n  message_timeout: 2.5\n")
    assert (cfg.extract.workers, cfg.extract.message_timeout) == (3, 2.5)
    assert parse_config_text("hostname: x\n").extract == ExtractConfig()
    with pytest.raises(ConfigError) as err:
        parse_config_text("extract:\n  workers: 0\n  ocr: true\n")
    text = "\n".join(str(p) for p in err.value.problems)
    assert "workers" in text and "ocr" in text
    assert ":2:" in text or "line 2" in text


def test_no_worker_can_start_means_uninspected_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import leakguard.extract as extract_pkg

    def broken(*_a: object, **_k: object) -> None:
        raise OSError("too many open files")

    monkeypatch.setattr(extract_pkg, "ExtractPool", broken)
    ex = Extractor()
    msg = ex.read(parse_message((EXAMPLES / "attachment-scan-pdf-ja.eml").read_bytes()))
    assert [(c.status, c.detail) for c in msg.contents] == [
        ("uninspected", "extraction unavailable: OSError")
    ]
    assert msg.uninspected_parts == 1


def _html_with_image(size: int, disposition: str) -> bytes:
    img = base64.encodebytes(b"\x89PNG\r\n\x1a\n" + os.urandom(size)).replace(b"\n", b"\r\n")
    return (
        b"From: =?utf-8?b?5L2Q6JekIOS4gOS5nw==?= <kazuya.sato@city.example.lg.jp>\r\n"
        b"To: yamada@mirai-kensetsu.co.jp\r\nSubject: ok\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/related; boundary="r"; type="text/html"\r\n\r\n'
        b"--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b'<p>ok</p><img src="cid:image001.png@01DB3E2A.5F6C7D80">\r\n'
        b'--r\r\nContent-Type: image/png; name="image001.png"\r\n'
        b"Content-Description: image001.png\r\n"
        b"Content-Disposition: " + disposition.encode() + b'; filename="image001.png"\r\n'
        b"Content-ID: <image001.png@01DB3E2A.5F6C7D80>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + img + b"\r\n--r--\r\n"
    )


def test_signature_logo_is_not_an_attachment_but_a_pasted_photo_is(engine: Engine) -> None:
    logo = engine.decide(_html_with_image(6_000, "inline"))
    assert [(c.kind, c.status) for c in logo.message.contents] == [("image", "skipped")]
    facts = logo.verdict.facts
    assert (facts["attachments"], facts["unreadable_attachments"]) == (0, 0)
    photo = engine.decide(_html_with_image(400_000, "inline"))  # an iPhone photo in the body
    assert [(c.kind, c.status) for c in photo.message.contents] == [("image", "unreadable")]
    assert photo.verdict.facts["unreadable_attachments"] == 1
    attached = engine.decide(_html_with_image(6_000, "attachment"))
    assert attached.verdict.facts["unreadable_attachments"] == 1
