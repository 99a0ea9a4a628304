"""Name normalisation: width, honorifics, company decorations, kana/romaji, skeletons."""

from __future__ import annotations

import time

import pytest

from leakguard.detectors import japanese
from leakguard.detectors.japanese import (
    display_name_forms,
    kana_to_romaji,
    local_part_tokens,
    person_forms,
    romaji_skeleton,
)

# --------------------------------------------------------------------------- romaji skeleton


@pytest.mark.parametrize(
    "variants",
    [
        ("sato", "satou", "satoh", "satoo", "satô", "Satō", "SATOU"),
        ("ono", "ohno", "oono", "ōno"),
        ("shinichi", "sinichi", "siniti", "shin'ichi"),
        ("tsuyoshi", "tuyosi"),
        ("chikako", "tikako"),
        ("fujita", "huzita", "fuzita"),
        ("junichi", "zyuniti", "jun'ichi"),
        ("homma", "honma"),
        ("sampei", "sanpei"),
        ("namba", "nanba"),
        ("yuuko", "yuko", "yūko"),
        ("kouichi", "koichi", "kōichi"),
        ("shouta", "syota", "shota", "shohta"),
        ("matcha", "maccha"),
    ],
)
def test_skeleton_makes_spelling_variants_equal(variants: tuple[str, ...]) -> None:
    keys = {romaji_skeleton(v) for v in variants}
    assert len(keys) == 1, keys


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("sato", "kato"),
        ("sato", "saito"),
        ("ohashi", "oashi"),  # "oh" before a vowel is not a long vowel
        ("hanako", "kazuya"),
        ("ono", "ueno"),
    ],
)
def test_skeleton_keeps_different_names_apart(a: str, b: str) -> None:
    assert romaji_skeleton(a) != romaji_skeleton(b)


def test_kana_to_romaji_hepburn() -> None:
    assert kana_to_romaji("さとう かずや") == "satou kazuya"
    assert kana_to_romaji("サトウ カズヤ") == "satou kazuya"
    assert kana_to_romaji("ｻﾄｳ ｶｽﾞﾔ") == "satou kazuya"  # half-width katakana
    assert kana_to_romaji("おおの しんいち") == "oono shinichi"


# --------------------------------------------------------------------------- display names


def _one(display: str) -> japanese.NameForms:
    forms = display_name_forms(display)
    assert forms, display
    return forms[0]


@pytest.mark.parametrize(
    "display",
    [
        "佐藤 一也 様",
        "佐藤一也様",
        "佐藤 一也さん",
        "佐藤一也殿",
        "佐藤 一也 先生",
        "佐藤一也部長",
        "(株)ABC商事 佐藤一也様",
        "㈱ABC商事 佐藤 一也",
        "株式会社ABC 佐藤 一也 様",
        "ABC商事（株） 佐藤一也",
        "佐藤 一也 <営業部>",
        "佐藤　一也",  # ideographic space
    ],
)
def test_kanji_display_names_normalise_to_one_form(display: str) -> None:
    cjk = [f.cjk for f in display_name_forms(display, variants=True) if f.cjk]
    assert "佐藤一也" in cjk


def test_itaiji_folded() -> None:
    assert _one("髙橋 直子").cjk == "高橋直子"
    assert _one("山﨑 太郎").cjk == "山崎太郎"
    assert _one("渡邊 健").cjk == "渡辺健"


def test_company_name_segment_is_not_the_person() -> None:
    forms = display_name_forms("(株)ABC 佐藤様")
    assert [f.cjk for f in forms if f.cjk] == ["佐藤"]
    assert not any(f.full for f in forms if f.cjk)


def test_kana_display_name() -> None:
    f = _one("サトウ カズヤ 様")
    assert f.kana == "さとうかずや"
    assert f.romaji == ("satou", "kazuya")
    assert f.romaji_from == "kana"
    assert f.full


@pytest.mark.parametrize(
    ("display", "romaji", "family"),
    [
        ("Kazuya Sato", ("kazuya", "sato"), None),
        ("SATO Kazuya", ("sato", "kazuya"), 0),
        ("Kazuya SATO", ("kazuya", "sato"), 1),
        ("Sato, Kazuya", ("sato", "kazuya"), 0),
        ("Mr. John Smith", ("john", "smith"), None),
        ("Ms Jane Doe", ("jane", "doe"), None),
        ("Kazuya Sato-san", ("kazuya", "sato"), None),
        ("ｋａｚｕｙａ　ｓａｔｏ", ("kazuya", "sato"), None),  # full-width romaji
        ("Kazuya Satō", ("kazuya", "sato"), None),
        ("SATO Kazuya (ABC Co., Ltd.)", ("sato", "kazuya"), 0),
    ],
)
def test_latin_display_names(display: str, romaji: tuple[str, ...], family: int | None) -> None:
    f = _one(display)
    assert f.romaji == romaji
    assert f.family == family
    assert f.romaji_from == "romaji"


def test_single_word_is_not_a_full_name() -> None:
    assert not _one("佐藤様").full
    assert not _one("Sato-san").full
    assert not _one("サトウ様").full


# --------------------------------------------------------------------------- directory rows


def test_person_forms_from_kana_column() -> None:
    forms = person_forms("佐藤 一也", "サトウ カズヤ", dictionary=False)
    assert forms[0].cjk == "佐藤一也"
    assert forms[0].kana == "さとうかずや"
    assert forms[0].romaji == ("satou", "kazuya")
    assert forms[0].family == 0
    assert forms[0].full


def test_person_forms_kana_given_name_and_surname_only() -> None:
    assert person_forms("田中 さくら", "たなか さくら", dictionary=False)[0].cjk == "田中さくら"
    only = person_forms("佐々木", "ささき", dictionary=False)[0]
    assert not only.full  # a surname alone is never a target


def test_person_forms_western() -> None:
    (f,) = person_forms("John Smith", "", dictionary=False)
    assert f.romaji == ("john", "smith")
    assert f.full


@pytest.mark.parametrize(
    ("local", "tokens"),
    [
        ("kazuya.sato", ("kazuya", "sato")),
        ("Kazuya_Sato123", ("kazuya", "sato")),
        ("k-sato", ("k", "sato")),
        ("ksato", ("ksato",)),
        ("sato.k+news", ("sato", "k")),
        ("ｋａｚｕｙａ．ｓａｔｏ", ("kazuya", "sato")),
        ("12345", ()),
    ],
)
def test_local_part_tokens(local: str, tokens: tuple[str, ...]) -> None:
    assert local_part_tokens(local) == tokens


# --------------------------------------------------------------------------- dictionary fallback


def test_dictionary_reading_splits_and_reads_kanji_names() -> None:
    pytest.importorskip("janome")
    assert japanese.dictionary_available()
    (f,) = display_name_forms("佐藤一也", dictionary=True)
    assert f.cjk == "佐藤一也"
    assert f.romaji == ("satou", "kazuya")
    assert f.full
    (g,) = display_name_forms("高橋 美咲 様", dictionary=True)
    assert g.romaji == ("takahashi", "misaki")
    # Without the dictionary flag, nothing is read.
    assert display_name_forms("佐藤一也")[0].romaji == ()


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    "display",
    [
        "様" * 10_000,
        "(" * 5000 + "佐藤" + ")" * 5000,
        "\x00\x01\u202e佐藤\u200b一也",
        "a." * 20_000,
        "𠮷野 家" * 500,
        "Ｍｒ．" * 3000,
        "",
        "   ",
        "=?utf-8?b?5L2Q6Jek?=",
    ],
)
def test_hostile_display_names_are_bounded(display: str) -> None:
    start = time.perf_counter()
    display_name_forms(display)
    display_name_forms(display, dictionary=True)
    local_part_tokens(display)
    romaji_skeleton(display)
    assert time.perf_counter() - start < 0.5


def test_without_dictionary_kanji_names_stay_kanji(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(japanese, "_tokenizer", lambda: None)
    (f,) = display_name_forms("佐藤一也", dictionary=True)
    assert f.cjk == "佐藤一也"
    assert f.romaji == ()
    assert f.full  # four kanji without a space: taken as a full name
    (g,) = display_name_forms("佐々木", dictionary=True)
    assert not g.full  # three kanji may be a surname alone
    (h,) = person_forms("佐藤 一也", "", dictionary=True)
    assert h.full and h.romaji == ()


# --------------------------------------------------------------------------- romaji-looking words


@pytest.mark.parametrize(
    "word",
    [
        "kazuya",
        "sato",
        "satoh",
        "ohno",
        "shinichi",
        "homma",
        "tsuyoshi",
        "kouichi",
        "Satō",
        "itchi",
    ],
)
def test_romaji_words(word: str) -> None:
    assert japanese.looks_like_romaji(word)


@pytest.mark.parametrize(
    "word", ["smith", "kevin", "michael", "james", "martin", "brandt", "finch", "x", ""]
)
def test_western_words_are_not_romaji(word: str) -> None:
    assert not japanese.looks_like_romaji(word)
