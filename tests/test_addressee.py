"""The addressee detector: whom the mail says it is for, against who receives it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence

import pytest
from addressee_mail import SENDER, build, parse

from leakguard.detectors import addressee
from leakguard.detectors.japanese import dictionary_available
from leakguard.explain import explain_finding
from leakguard.organization import (
    Context,
    Organization,
    Partner,
    SenderHistory,
    parse_directory_csv,
)
from leakguard.types import AttachmentContent, Message, TextSection

DIRECTORY = parse_directory_csv(
    "email,name,kana,department,supervisor\n"
    f"{SENDER},山本 一郎,やまもと いちろう,就労支援課,\n"
    "taro.yamada@city.example.lg.jp,山田 太郎,やまだ たろう,就労支援課,\n"
    "k.suzuki@city.example.lg.jp,鈴木 健,すずき けん,就労支援課,\n"
)

ORG = Organization(
    internal_domains=["city.example.lg.jp", "*.city.example.lg.jp"],
    directory=DIRECTORY,
    partners=[
        Partner("mirai-kensetsu.co.jp", ("株式会社みらい建設", "みらい建設")),
        Partner("aozora-jinzai.co.jp", ("株式会社あおぞら人材センター",)),
        Partner("*.mirai-group.co.jp", ("みらいグループ", "みらい不動産株式会社")),
    ],
    mailing_lists=["recruit-ml@sample-shoji.co.jp"],
)

needs_dictionary = pytest.mark.skipif(
    not dictionary_available(), reason="kanji readings need the ja extra (janome)"
)

Rcpt = tuple[str, str] | str


def ctx(history: Mapping[str, tuple[str, ...]] | None = None) -> Context:
    return Context(ORG, SenderHistory(contact_names=dict(history or {}), known=history is not None))


def mismatches(
    body: str,
    to: Sequence[Rcpt],
    cc: Sequence[Rcpt] = (),
    *,
    history: Mapping[str, tuple[str, ...]] | None = None,
    **kw: object,
) -> int:
    msg = parse(build(body, to=to, cc=cc, **kw))  # type: ignore[arg-type]
    return addressee.detect(msg, ctx(history)).facts[addressee.FACT]


def addressees(body: str) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    msg = parse(build(body, to=[("", "x@example.co.jp")]))
    return [(a.orgs, a.people) for a in addressee.find_addressees(msg)]


BODY = "\n\nいつもお世話になっております。\n○○市 就労支援課の山本です。\n応募書類をお送りします。\n"

# --------------------------------------------------------------------------- reading the greeting


@pytest.mark.parametrize(
    ("top", "orgs", "people"),
    [
        ("株式会社C 採用ご担当者様", ("株式会社C",), ()),
        ("みらい建設株式会社 総務部 山田様", ("みらい建設株式会社",), ("山田",)),
        (
            "株式会社みらい建設\n総務部 人事課\n山田 太郎 様",
            ("株式会社みらい建設",),
            ("山田 太郎",),
        ),
        ("山田様", (), ("山田",)),
        ("山田太郎 様", (), ("山田太郎",)),
        ("山田様、いつもお世話になっております。", (), ("山田",)),
        ("佐藤さん", (), ("佐藤",)),
        ("田中先生", (), ("田中",)),
        ("経理部 鈴木 部長 殿", (), ("鈴木",)),
        ("(株)みらい建設 御中", ("(株)みらい建設",), ()),
        ("㈱みらい建設 御中", ("(株)みらい建設",), ()),  # NFKC of the one-character ㈱
        ("ＡＢＣ商事株式会社　御中", ("ABC商事株式会社",), ()),  # full-width letters and space
        ("ﾐﾗｲ建設 御中", ("ミライ建設",), ()),  # half-width kana
        ("みらい建設 採用ご担当者様", ("みらい建設",), ()),
        ("To: 株式会社みらい建設 御中", ("株式会社みらい建設",), ()),
        ("宛先：山田 花子 様", (), ("山田 花子",)),
        ("Dear Ms Tanaka,", (), ("Tanaka",)),
        ("Dear Mr. John Smith:", (), ("John Smith",)),
        ("Dear Ken,", (), ("Ken",)),
        ("Dear Hiring Team at Acme,", ("Acme",), ()),
        ("Attn: Globex Corporation", ("Globex Corporation",), ()),
        ("【ご連絡】\n山田様", (), ("山田",)),
    ],
)
def test_greeting_forms(top: str, orgs: tuple[str, ...], people: tuple[str, ...]) -> None:
    assert addressees(top + BODY) == [(orgs, people)]


@pytest.mark.parametrize(
    "top",
    [
        "各位",
        "関係者各位",
        "お客様各位",
        "皆様",
        "採用ご担当者様",
        "人事部 御中",
        "鈴木部長様",  # a word ending in a title: quiet (「横浜市長 様」 is a post)
        "横浜市長 様",
        "人事部長殿",
        "お世話になっております。",
        "いつもお世話になっております。山本です。",
        "Dear All,",
        "Dear Sir or Madam,",
        "Dear John and Mary,",
        "Dear Colleagues,",
        "Dear Investor:",
        "Dear Western Region:",
        "Hi team,",
        "Thanks for the update. See below.",
        "To: yamada@example.co.jp",
        "山田さんから伺いました。",
        "先日、山田様にお会いしました。",
    ],
)
def test_no_addressee(top: str) -> None:
    assert addressees(top + BODY) == []


def test_greeting_after_prose_is_not_an_addressee() -> None:
    assert addressees("お世話になっております。\n山田様にもよろしくお伝えください。\n") == []


@pytest.mark.parametrize(
    "body",
    [
        # reply with no new text above the quote (bottom posting): the quoted greeting
        "> 株式会社みらい建設\n> 採用ご担当者様\n>\n> お世話になっております。\n\n承知しました。\n",
        # Gmail ja attribution, then the quoted mail's greeting
        "2026年11月24日(火) 10:15 佐藤 花子 <hanako@aozora-jinzai.co.jp>:\n> 山田様\n",
        # Gmail forward without new text
        "---------- Forwarded message ---------\nFrom: 山田 <y@mirai-kensetsu.co.jp>\n"
        "Date: 2026年11月24日(火) 10:15\nSubject: 書類\n\n株式会社みらい建設 御中\n",
        # Outlook ja header block without a separator line
        "差出人: 山田 太郎 <y@mirai-kensetsu.co.jp>\n送信日時: 2026年11月24日 10:15\n"
        "宛先: 山本 一郎\n件名: 書類\n\n株式会社みらい建設 御中\n",
        # Outlook en
        "-----Original Message-----\nFrom: Ken Tanaka\nSent: Monday\n\nDear Ms Tanaka,\n",
        # Thunderbird ja
        "-------- 転送メッセージ --------\n件名: 書類\n\n株式会社みらい建設 御中\n",
        "On Mon, Nov 24, 2026 at 10:15 AM Hanako Sato <h@aozora-jinzai.co.jp> wrote:\n"
        "> Dear Ms Tanaka,\n",
    ],
)
def test_quoted_greetings_are_not_read(body: str) -> None:
    assert addressees(body) == []
    assert mismatches(body, to=[("株式会社あおぞら人材センター", "info@aozora-jinzai.co.jp")]) == 0


# --------------------------------------------------------------------------- organisations

WRONG = "株式会社みらい建設\n採用ご担当者様" + BODY


@pytest.mark.parametrize(
    ("charset", "cte", "html", "mailer"),
    [
        ("iso-2022-jp", "7bit", False, "Mozilla Thunderbird"),  # Thunderbird ja
        ("iso-2022-jp", "7bit", False, "Becky! ver. 2.81.04"),  # Becky!
        ("shift_jis", "base64", False, "Microsoft Outlook 16.0"),  # Outlook ja
        ("shift_jis", "quoted-printable", False, "Microsoft Outlook 16.0"),
        ("utf-8", "base64", False, ""),  # Gmail ja text part
        ("utf-8", "quoted-printable", True, "Microsoft Outlook Web App"),  # OWA, HTML only
        ("utf-8", "8bit", False, "iPhone Mail (20A362)"),  # iPhone
        ("utf-8", "base64", True, "PHPMailer 6.9"),  # in-house tool, HTML only
    ],
)
def test_wrong_company_in_every_client(charset: str, cte: str, html: bool, mailer: str) -> None:
    kw = {"charset": charset, "cte": cte, "html": html, "mailer": mailer}
    wrong = [("株式会社あおぞら人材センター", "info@aozora-jinzai.co.jp")]
    right = [("みらい建設 採用担当", "saiyo@mirai-kensetsu.co.jp")]
    assert mismatches(WRONG, to=wrong, **kw) == 1
    assert mismatches(WRONG, to=right, **kw) == 0


def test_partner_names_know_an_organisation_without_display_names() -> None:
    assert mismatches(WRONG, to=["saiyo@aozora-jinzai.co.jp"]) == 1
    assert mismatches(WRONG, to=["saiyo@mirai-kensetsu.co.jp"]) == 0
    assert mismatches(WRONG, to=["saiyo@hr.mirai-kensetsu.co.jp"]) == 0  # a subdomain


def test_display_name_names_the_recipient_organisation() -> None:
    to = [("株式会社ひかり商店", "info@hikari-shoten.example")]
    assert mismatches(WRONG, to=to) == 1
    to = [("みらい建設 山田", "info@mk.example")]
    assert mismatches(WRONG, to=to) == 0


def test_a_person_display_name_does_not_name_an_organisation() -> None:
    # 「山田 太郎」 says nothing about the organisation: stay quiet, do not guess.
    assert mismatches(WRONG, to=[("山田 太郎", "t.yamada@unknown-firm.example")]) == 0
    assert mismatches(WRONG, to=["t.yamada@unknown-firm.example"]) == 0


def test_domain_read_as_romaji() -> None:
    # みらい建設 (kana, read without a dictionary) is mirai-kensetsu; not hikari-sekkei.
    other = Organization(internal_domains=["city.example.lg.jp"])
    c = Context(other)
    msg = parse(build("みらい建設株式会社 御中" + BODY, to=["info@mirai-kensetsu.co.jp"]))
    assert addressee.detect(msg, c).facts[addressee.FACT] == 0
    msg = parse(build("みらい建設株式会社 御中" + BODY, to=["info@hikari-sekkei.co.jp"]))
    assert addressee.detect(msg, c).facts[addressee.FACT] == 1
    # a .com label is not necessarily the company's name: quiet
    msg = parse(build("みらい建設株式会社 御中" + BODY, to=["info@hikari-sekkei.com"]))
    assert addressee.detect(msg, c).facts[addressee.FACT] == 0
    # a name all in katakana may be a foreign word the domain spells its own way: quiet
    msg = parse(build("株式会社シャトレーゼ 御中" + BODY, to=["info@chateraise.co.jp"]))
    assert addressee.detect(msg, c).facts[addressee.FACT] == 0
    # an abbreviation that is not romaji (nec, ntt): quiet
    msg = parse(build("みらい建設株式会社 御中" + BODY, to=["info@mkc.co.jp"]))
    assert addressee.detect(msg, c).facts[addressee.FACT] == 0


@needs_dictionary
def test_domain_read_as_romaji_with_kanji() -> None:
    c = Context(Organization(internal_domains=["city.example.lg.jp"]))
    msg = parse(build("株式会社ミドリ設計 御中" + BODY, to=["info@hikari-sekkei.co.jp"]))
    assert addressee.detect(msg, c).facts[addressee.FACT] == 1
    msg = parse(build("株式会社ミドリ設計 御中" + BODY, to=["info@midori-sekkei.co.jp"]))
    assert addressee.detect(msg, c).facts[addressee.FACT] == 0
    msg = parse(build("株式会社日立製作所 御中" + BODY, to=["info@hitachi.co.jp"]))
    assert addressee.detect(msg, c).facts[addressee.FACT] == 0
    # a kanji name's reading may show a match, never a difference: 大和 is Daiwa and Yamato
    msg = parse(build("大和ハウス工業株式会社 御中" + BODY, to=["info@daiwahouse.co.jp"]))
    assert addressee.detect(msg, c).facts[addressee.FACT] == 0
    msg = parse(build("大和ハウス工業株式会社 御中" + BODY, to=["info@hikari-sekkei.co.jp"]))
    assert addressee.detect(msg, c).facts[addressee.FACT] == 0


def test_free_mail_and_carrier_domains_name_no_organisation() -> None:
    for addr in ("jobseeker@gmail.com", "parent@docomo.ne.jp", "someone@icloud.com"):
        assert mismatches(WRONG, to=[("山田 花子", addr)]) == 0


def test_group_domain() -> None:
    # a partner group with several companies under one domain
    body = "みらい不動産株式会社 御中" + BODY
    assert mismatches(body, to=["info@fudosan.mirai-group.co.jp"]) == 0
    # the right company under its holding company's domain, known only by the domain
    to = [("みらいホールディングス 山田", "yamada@mirai-hd.co.jp")]
    assert mismatches(WRONG, to=to) == 0


def test_one_matching_organisation_among_several_is_enough() -> None:
    to = [
        ("株式会社あおぞら人材センター", "info@aozora-jinzai.co.jp"),
        ("みらい建設 採用担当", "saiyo@mirai-kensetsu.co.jp"),
    ]
    assert mismatches(WRONG, to=to) == 0


def test_history_names_the_organisation() -> None:
    history = {"yamada@kita-kogyo.example": ("北工業株式会社 山田様",)}
    to = ["sato@kita-kogyo.example"]
    assert mismatches(WRONG, to=to, history=history) == 1
    history = {"yamada@kita-kogyo.example": ("みらい建設 山田様",)}
    assert mismatches(WRONG, to=to, history=history) == 0
    assert mismatches(WRONG, to=to, history={}) == 0


def test_internal_recipients_only_are_not_judged_by_organisation() -> None:
    to = [("山田 太郎", "taro.yamada@city.example.lg.jp")]
    assert mismatches(WRONG, to=to) == 0


def test_latin_organisation() -> None:
    body = "Dear Hiring Team at Acme,\n\nPlease find attached the application.\n"
    assert mismatches(body, to=["jobs@acme.example"]) == 0
    assert mismatches(body, to=[("Globex Corporation", "jobs@globex.example")]) == 1
    assert mismatches(body, to=[("Mirai Kensetsu Co., Ltd.", "x@mk.example")]) == 1


def test_kana_and_romaji_company_names() -> None:
    body = "ミライ建設株式会社 御中" + BODY
    assert mismatches(body, to=["saiyo@mirai-kensetsu.co.jp"]) == 0  # partner みらい建設
    body = "Mirai Kensetsu 御中" + BODY
    assert mismatches(body, to=[("株式会社みらい建設", "x@mk.example")]) == 0


# --------------------------------------------------------------------------- people


def test_greeting_to_another_person() -> None:
    assert mismatches("山田様" + BODY, to=[("佐藤 花子", "hanako.sato@example.co.jp")]) == 1
    assert mismatches("山田様" + BODY, to=[("山田 花子", "hanako@example.co.jp")]) == 0
    assert mismatches("山田太郎 様" + BODY, to=[("山田", "t@example.co.jp")]) == 0
    assert mismatches("髙橋様" + BODY, to=[("高橋 一郎", "t@example.co.jp")]) == 0  # 異体字


def test_unknown_recipient_name_keeps_quiet() -> None:
    assert mismatches("山田様" + BODY, to=["hanako.sato@example.co.jp"]) == 0
    # one of two recipients has no name: it may be 山田
    to = [("佐藤 花子", "hanako.sato@example.co.jp"), "x123@example.co.jp"]
    assert mismatches("山田様" + BODY, to=to) == 0


def test_desk_and_list_addresses_keep_quiet() -> None:
    assert mismatches("山田様" + BODY, to=[("佐藤 花子", "info@example.co.jp")]) == 0
    assert mismatches("山田様" + BODY, to=[("採用担当", "jobs-desk@example.co.jp")]) == 0
    assert mismatches("山田様" + BODY, to=[("Sato", "recruit-ml@sample-shoji.co.jp")]) == 0
    assert mismatches("山田様" + BODY, to=[("株式会社あおぞら人材センター", "a@x.example")]) == 0


def test_greeting_to_a_colleague_in_cc() -> None:
    to = [("佐藤 花子", "hanako.sato@example.co.jp")]
    cc = [("山田 太郎", "taro.yamada@city.example.lg.jp")]
    assert mismatches("山田様" + BODY, to=to, cc=cc) == 0
    # known from the directory when the header shows no name
    assert mismatches("山田様" + BODY, to=to, cc=["taro.yamada@city.example.lg.jp"]) == 0


def test_local_part_shows_the_person() -> None:
    assert mismatches("Dear Ms Tanaka,\n\nHello.\n", to=[("Yuki T.", "y.tanaka@ex.example")]) == 0


def test_english_names() -> None:
    body = "Dear Ms Tanaka,\n\nThank you for your time.\n"
    assert mismatches(body, to=[("Laura Bennett", "lb@ex.example")]) == 1
    assert mismatches(body, to=[("TANAKA Yuki", "yuki@ex.example")]) == 0
    assert mismatches(body, to=[("たなか ゆき", "yuki@ex.example")]) == 0
    assert mismatches("Dear Ken,\n\nHi.\n", to=[("Lay, Kenneth", "klay@ex.example")]) == 0
    assert mismatches("Dear Bob,\n\nHi.\n", to=[("Robert Smith", "rs@ex.example")]) == 0
    assert mismatches("Dear Ken,\n\nHi.\n", to=[("Mary Jones", "mj@ex.example")]) == 1


@needs_dictionary
def test_kanji_greeting_against_romaji_names() -> None:
    assert mismatches("山田様" + BODY, to=[("Hanako Yamada", "h@ex.example")]) == 0
    # a reading may show a match, never a difference (中島 is Nakajima and Nakashima)
    assert mismatches("山田様" + BODY, to=[("Hanako Sato", "h@ex.example")]) == 0
    assert mismatches("中島様" + BODY, to=[("Hanako Nakashima", "h@ex.example")]) == 0
    assert mismatches("Dear Mr Sato,\n\nHi.\n", to=[("佐藤 一也", "k@ex.example")]) == 0


def test_right_person_in_a_thread() -> None:
    body = (
        "佐藤様\n\nお世話になっております。\n\n承知しました。\n\n"
        "2026年11月24日(火) 10:15 佐藤 花子 <hanako.sato@sample-shoji.co.jp>:\n"
        "> 山本様\n>\n> 日程の件、問題ございません。\n"
    )
    assert mismatches(body, to=[("佐藤 花子", "hanako.sato@sample-shoji.co.jp")]) == 0


def test_sender_aliases_are_not_recipients() -> None:
    msg = parse(build("山田様" + BODY, to=[("山本 一郎", "ichiro@home.example")]))
    c = dataclasses.replace(ctx(), sender_aliases=frozenset({"ichiro@home.example"}))
    assert addressee.detect(msg, c).facts[addressee.FACT] == 0


# --------------------------------------------------------------------------- destinations


@pytest.mark.parametrize(
    "label",
    [
        "応募先：株式会社みらい建設",
        "【応募先企業】みらい建設",
        "推薦先企業: 株式会社みらい建設",
        "紹介先　みらい建設",
    ],
)
def test_application_destination(label: str) -> None:
    body = (
        f"お世話になっております。\n応募者の書類をお送りします。\n\n{label}\n応募職種：施工管理\n"
    )
    assert mismatches(body, to=[("株式会社あおぞら人材センター", "info@aozora-jinzai.co.jp")]) == 1
    assert mismatches(body, to=["saiyo@mirai-kensetsu.co.jp"]) == 0


def test_destination_in_quoted_text_is_not_read() -> None:
    body = (
        "承知しました。\n\n-----Original Message-----\nFrom: 山田\n\n応募先：株式会社みらい建設\n"
    )
    assert mismatches(body, to=[("株式会社あおぞら人材センター", "info@aozora-jinzai.co.jp")]) == 0


def test_undecided_destination_is_not_an_organisation() -> None:
    body = "お世話になっております。\n\n応募先：未定\n推薦先：人事部\n"
    assert mismatches(body, to=[("株式会社あおぞら人材センター", "info@aozora-jinzai.co.jp")]) == 0


# --------------------------------------------------------------------------- attachments


def with_contents(msg: Message, *contents: AttachmentContent) -> Message:
    return dataclasses.replace(msg, contents=contents)


def letter(text: str, kind: str = "pdf", status: str = "read") -> AttachmentContent:
    return AttachmentContent(
        name="送付状.pdf", kind=kind, status=status, sections=(TextSection("page 1", text),)
    )


LETTER = (
    "令和8年11月24日\n株式会社みらい建設 御中\n\n○○市 就労支援課\n山本 一郎\n\n書類送付のご案内\n"
)


def test_attached_letter_addressee() -> None:
    plain = "お世話になっております。\n書類をお送りします。\n"
    wrong = parse(build(plain, to=[("株式会社あおぞら人材センター", "info@aozora-jinzai.co.jp")]))
    right = parse(build(plain, to=["saiyo@mirai-kensetsu.co.jp"]))
    result = addressee.detect(with_contents(wrong, letter(LETTER)), ctx())
    assert result.facts[addressee.FACT] == 1
    ev = result.findings[0].evidence
    assert ev["source"] == "letter" and "送付状.pdf page 1, line 2" in ev["location"]
    assert addressee.detect(with_contents(right, letter(LETTER)), ctx()).facts[addressee.FACT] == 0
    # an unreadable scan says nothing
    scan = letter("", status="unreadable")
    assert addressee.detect(with_contents(wrong, scan), ctx()).facts[addressee.FACT] == 0


def test_attached_letter_to_a_person_and_a_sheet() -> None:
    msg = parse(build("書類をお送りします。\n", to=[("山田 太郎", "t.yamada@ex.co.jp")]))
    doc = letter("2026年11月24日\n佐藤 花子 様\n\n給付決定通知書\n", kind="docx")
    assert addressee.detect(with_contents(msg, doc), ctx()).facts[addressee.FACT] == 1
    doc = letter("2026年11月24日\n山田 太郎 様\n\n給付決定通知書\n", kind="docx")
    assert addressee.detect(with_contents(msg, doc), ctx()).facts[addressee.FACT] == 0
    sheet = AttachmentContent(
        name="推薦書.xlsx",
        kind="xlsx",
        status="read",
        sections=(
            TextSection("sheet 推薦書", "推薦書\n推薦先企業\t株式会社あおぞら人材センター\n"),
        ),
    )
    msg = parse(build("書類をお送りします。\n", to=["saiyo@mirai-kensetsu.co.jp"]))
    assert addressee.detect(with_contents(msg, sheet), ctx()).facts[addressee.FACT] == 1


def test_letter_quoted_inside_the_mail_is_not_read() -> None:
    body = "承知しました。\n\n> 株式会社みらい建設 御中\n> 書類送付のご案内\n"
    assert mismatches(body, to=[("株式会社あおぞら人材センター", "info@aozora-jinzai.co.jp")]) == 0


# --------------------------------------------------------------------------- findings and bounds


def test_finding_evidence_and_explanation() -> None:
    msg = parse(build(WRONG, to=[("株式会社あおぞら人材センター", "info@aozora-jinzai.co.jp")]))
    result = addressee.detect(msg, ctx())
    (f,) = result.findings
    assert f.detector == "addressee" and f.fact == "addressee_mismatches"
    assert f.addresses == ("info@aozora-jinzai.co.jp",)
    assert f.evidence["addressee"] == "株式会社みらい建設 採用ご担当者様"
    assert f.evidence["kind"] == "organization"
    assert "あおぞら人材センター" in f.evidence["compared_with"]
    assert f.evidence["location"] == "text part 1, line 2"
    ja = explain_finding(f, "ja")
    en = explain_finding(f, "en")
    assert "株式会社みらい建設 採用ご担当者様" in ja and "2 行目" in ja and "組織" in ja
    assert "organisation" in en and "line 2" in en and "info@aozora-jinzai.co.jp" in en


def test_hostile_text_is_bounded() -> None:
    huge = ("あ" * 5000 + "様\n") * 200 + "株式会社" * 10000 + "\n" + "応募先：" + "x" * 100000
    msg = parse(build(huge, to=[("株式会社あおぞら人材センター", "info@aozora-jinzai.co.jp")]))
    start = time.process_time()
    addressee.detect(msg, ctx())
    assert time.process_time() - start < 0.5


def test_mail_without_greeting_is_cheap() -> None:
    text = (
        "お世話になっております。\n" + "本日の議事録を共有します。内容をご確認ください。\n" * 1200
    )
    msg = parse(build(text, to=[("佐藤 花子", "hanako.sato@example.co.jp")]))
    c = ctx()
    addressee.detect(msg, c)
    start = time.process_time()
    for _ in range(50):
        assert addressee.detect(msg, c).facts[addressee.FACT] == 0
    assert (time.process_time() - start) / 50 < 0.002


def test_several_people_on_one_line() -> None:
    assert addressees("山田様、佐藤様" + BODY) == [((), ("山田", "佐藤"))]
    to = [("佐藤 花子", "hanako.sato@example.co.jp")]
    assert mismatches("山田様、佐藤様" + BODY, to=to) == 0  # one of them receives it
    assert mismatches("山田様、鈴木様" + BODY, to=to) == 1


def test_posts_and_companies_addressed_with_sama() -> None:
    assert addressees("みらい建設様" + BODY) == [(("みらい建設",), ())]
    to = [("株式会社あおぞら人材センター", "info@aozora-jinzai.co.jp")]
    assert mismatches("みらい建設様" + BODY, to=to) == 1


def _html_only(html: str, to: str) -> Message:
    raw = (
        "From: =?utf-8?b?5bGx5pysIOS4gOmDjg==?= <ichiro.yamamoto@city.example.lg.jp>\r\n"
        f"To: {to}\r\nSubject: Re\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{html}"
    ).encode()
    return parse(raw)


def test_html_blockquote_greeting_is_quoted() -> None:
    to = "info@aozora-jinzai.co.jp"
    quoted_first = (
        "<html><body><blockquote>株式会社みらい建設 御中<br>お世話になっております。"
        "</blockquote><div>承知しました。</div></body></html>"
    )
    assert addressee.detect(_html_only(quoted_first, to), ctx()).facts[addressee.FACT] == 0
    own = "<html><body><div>株式会社みらい建設 御中<br><br>お世話になります。</div></body></html>"
    assert addressee.detect(_html_only(own, to), ctx()).facts[addressee.FACT] == 1


def test_form_addressed_to_a_mayor_is_not_a_person() -> None:
    msg = parse(build("申請書をお送りします。\n", to=[("佐藤 花子", "hanako@ex.co.jp")]))
    form = letter("申請書\n令和8年11月24日\n横浜市長 様\n住所 横浜市中区1-1\n氏名 山田 太郎\n")
    assert addressee.detect(with_contents(msg, form), ctx()).facts[addressee.FACT] == 0


def test_letter_prose_ends_the_search() -> None:
    msg = parse(build("書類をお送りします。\n", to=[("佐藤 花子", "hanako@ex.co.jp")]))
    doc = letter("ご案内\n拝啓 時下ますますご清栄のこととお慶び申し上げます。\n山田 様\n")
    assert addressee.detect(with_contents(msg, doc), ctx()).facts[addressee.FACT] == 0


def test_company_without_decoration_before_a_name() -> None:
    assert addressees("みらい建設 山田様" + BODY) == [(("みらい建設",), ("山田",))]
    to = [("山田 太郎", "t.yamada@mirai-kensetsu.co.jp")]
    assert mismatches("みらい建設 山田様" + BODY, to=to) == 0
    # an unknown word before the surname: any word that names the recipient is enough
    assert mismatches("ひかり 山田様" + BODY, to=[("山田 太郎", "t@ex.co.jp")]) == 0
    assert mismatches("山田 太郎 様" + BODY, to=[("山田 花子", "h@ex.co.jp")]) == 0
    assert mismatches("山田 太郎 様" + BODY, to=[("佐藤 花子", "h@ex.co.jp")]) == 1


def test_greeting_names_a_configured_partner_but_goes_to_another_known_partner() -> None:
    """Issue 7: 「株式会社みらい建設 採用ご担当者様」 sent to a partner domain that has no names
    configured (only `partner_domains`): the named partner is known, the recipient is another."""
    from leakguard.engine import Engine
    from leakguard.policy.loader import default_policy_path

    engine = Engine.from_files(default_policy_path())
    body = "株式会社みらい建設\r\n採用ご担当者様\r\n\r\n応募書類を送付いたします。\r\n"
    raw = (
        "From: 佐藤 一也 <kazuya.sato@city.example.lg.jp>\r\nTo: saiyo@sample-shoji.co.jp\r\n"
        "Subject: 応募書類\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()
    d = engine.decide(raw)
    assert "addressee-mismatch" in d.verdict.rule_ids
    # the same greeting to みらい建設's own domain passes
    ok = raw.replace(b"saiyo@sample-shoji.co.jp", b"saiyo@mirai-kensetsu.co.jp")
    assert "addressee-mismatch" not in engine.decide(ok).verdict.rule_ids
    # an unknown domain (not a configured partner) with no name: stay quiet
    unknown = raw.replace(b"saiyo@sample-shoji.co.jp", b"jinji@unknown-agency.example")
    assert "addressee-mismatch" not in engine.decide(unknown).verdict.rule_ids
