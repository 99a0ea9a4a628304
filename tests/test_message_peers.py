"""The parser on other projects' fixtures: mailgun/flanker's MIME torture set and sisimai's
real bounces (about 150 of them Japanese)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leakguard.message import parse_message
from leakguard.message.parse import MAX_DEPTH
from leakguard.types import Message

pytestmark = pytest.mark.corpus

FLANKER = "peer-fixtures/mailgun-flanker/tests/fixtures/messages"
SISIMAI = "sisimai-set-of-emails/maildir"
ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?")


def walk(m: Message, depth: int = 0) -> Iterator[tuple[int, Message]]:
    yield depth, m
    for inner in m.attached_messages:
        yield from walk(inner, depth + 1)


def files(root: Path) -> list[Path]:
    found = sorted(p for p in root.rglob("*") if p.is_file())
    assert found, f"no fixtures under {root}"
    return found


def test_flanker_fixtures_parse_within_bounds(corpora_dir: Path) -> None:
    paths = files(corpora_dir / FLANKER)
    names = {p.name for p in paths}
    assert {"enclosed-endless.eml", "torture.eml"} <= names
    for path in paths:
        raw = path.read_bytes()
        start = time.process_time()
        m = parse_message(raw)
        elapsed = time.process_time() - start
        assert elapsed < 3.0, (path.name, elapsed)
        assert m.raw is raw
        assert not any(d.startswith("internal-error") for d in m.defects), (path.name, m.defects)
        assert max(d for d, _ in walk(m)) <= MAX_DEPTH


def test_flanker_torture_structure(corpora_dir: Path) -> None:
    m = parse_message((corpora_dir / FLANKER / "torture.eml").read_bytes())
    assert m.subject == "Multi-media mail demonstration"
    assert [a.addr for a in m.from_] == ["mrc@cac.washington.edu"]
    # The torture test nests several message/rfc822 parts, each parsed as a full Message.
    assert len(m.attached_messages) == 8
    assert sum(1 for _ in walk(m)) > 9
    assert len(m.attachments) >= 11


def test_flanker_endless_enclosure_is_cut_at_the_part_limit(corpora_dir: Path) -> None:
    m = parse_message((corpora_dir / FLANKER / "enclosed-endless.eml").read_bytes())
    inner = m.attached_messages[0]
    # ~3,000 HTML parts in the enclosed message: parsing stops at the limit and says so.
    assert any("more than 1000 MIME parts" in d for d in inner.defects)
    assert 900 <= len(inner.text_parts) <= 1000
    assert [a.display_name for a in m.to] == ["Александр Клижентас☯"]


def test_flanker_encoded_headers(corpora_dir: Path) -> None:
    m = parse_message((corpora_dir / FLANKER / "from-encoding.eml").read_bytes())
    assert [a.display() for a in m.from_] == ["Ingo Lütkebohle <ingo@blank.pages.de>"]
    bi = parse_message((corpora_dir / FLANKER / "bilingual-simple.eml").read_bytes())
    assert bi.subject == "Simple text. How are you? Как ты поживаешь?"


@pytest.mark.parametrize(
    ("name", "depth", "subject"),
    [
        # Shift_JIS bytes behind an ISO-2022-JP label in the encoded word
        (
            "lhost-postfix-09.eml",
            1,
            "■緊急値下げ！！■映画・アニメ・スポーツ・音楽♪視聴料無料で見放題■",
        ),
        ("lhost-x5-01.eml", 2, "【TEST】メールアドレスの確認"),
        ("lhost-sendmail-40.eml", 1, "【一膳】 会員登録の内容をご確認ください。"),
        ("lhost-office365-13.eml", 0, "Undeliverable: にゃーん"),
        ("lhost-exchange2003-03.eml", 1, "| 汚れて灰猫になってることがある白猫"),
        ("lhost-sendmail-38.eml", 1, "Re: [サイトからのお問合せ]: その他/bouncehammer"),
        (
            "lhost-domino-02.eml",
            0,
            "DELIVERY FAILURE: ユーザー Neko (kijitora@example.co.jp) は Domino ディレクトリには"
            "見つかりません。",
        ),
    ],
)
def test_sisimai_japanese_subjects(corpora_dir: Path, name: str, depth: int, subject: str) -> None:
    m = parse_message((corpora_dir / SISIMAI / "bsd" / name).read_bytes())
    subjects = [x.subject for d, x in walk(m) if d == depth]
    assert subject in subjects


def test_sisimai_japanese_display_names(corpora_dir: Path) -> None:
    base = corpora_dir / SISIMAI / "bsd"
    x5 = parse_message((base / "lhost-x5-01.eml").read_bytes())
    deepest = next(x for d, x in walk(x5) if d == 2)
    assert [a.display_name for a in deepest.from_] == ["アドレス確認＜FIKT＞"]
    assert [a.addr for a in deepest.from_] == ["shironeko@cat.example.co.jp"]
    sm = parse_message((base / "lhost-sendmail-34.eml").read_bytes())
    names = [a.display_name for _, x in walk(sm) for a in x.from_]
    assert "井上 淳" in names


@pytest.mark.parametrize(
    ("name", "charset", "line"),
    [
        (
            "lhost-ezweb-02.eml",
            "euc-jp",
            "次のあて先へのメッセージはエラーのため送信できませんでした。",
        ),
        (
            "lhost-ezweb-07.eml",
            "iso-2022-jp",
            "送信先メールサーバの事由により送信できませんでした。",
        ),
        (
            "lhost-mfilter-01.eml",
            "iso-2022-jp",
            "このメールは「m-FILTER」が自動的に生成して送信しています。",
        ),
    ],
)
def test_sisimai_japanese_bodies(corpora_dir: Path, name: str, charset: str, line: str) -> None:
    m = parse_message((corpora_dir / SISIMAI / "bsd" / name).read_bytes())
    part = m.text_parts[0]
    assert part.charset == charset
    assert line in part.text.split("\n")
    assert "\ufffd" not in part.text and "\x1b" not in part.text


def test_sisimai_all_parse_and_decode(corpora_dir: Path) -> None:
    paths = files(corpora_dir / SISIMAI)
    assert len(paths) > 800
    japanese = 0
    for path in paths:
        raw = path.read_bytes()
        m = parse_message(raw)
        for _, x in walk(m):
            assert not any(d.startswith("internal-error") for d in x.defects), path
            assert not ENCODED_WORD.search(x.subject), (path, x.subject)
            assert "\ufffd" not in x.subject, (path, x.subject)
            for a in (*x.from_, *x.to, *x.cc):
                assert not ENCODED_WORD.search(a.display_name), (path, a)
            if re.search(r"[\u3040-\u30ff]", x.subject):
                japanese += 1
    assert japanese >= 40  # kana subjects decoded across the three line-ending variants


def test_sisimai_line_ending_variants_agree(corpora_dir: Path) -> None:
    root = corpora_dir / SISIMAI
    compared = 0
    for variant in ("dos", "mac"):
        for path in sorted((root / variant).iterdir()):
            twin = root / "bsd" / path.name
            if not twin.is_file():
                continue
            a, b = parse_message(path.read_bytes()), parse_message(twin.read_bytes())
            assert [x.subject for _, x in walk(a)] == [x.subject for _, x in walk(b)], path
            assert [[r.addr for r in x.to] for _, x in walk(a)] == [
                [r.addr for r in x.to] for _, x in walk(b)
            ], path
            compared += 1
    assert compared >= 100
