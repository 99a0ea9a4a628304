"""Names in context (issue 8): the same-surname autocomplete incident, and short romaji
names written as one word.

A surname alone is too common to hold on; it fires only when an internal thread (or a
thread with a colleague, to someone never written to) goes to ONE outsider who shares a
colleague's surname. Mails are built the way the clients write them and parsed for real.
"""

from __future__ import annotations

import base64

import pytest

from leakguard.detectors import names
from leakguard.detectors.names import joined_typo_fits
from leakguard.engine import with_default_envelope
from leakguard.message import parse_message
from leakguard.organization import Context, Organization, SenderHistory, parse_directory_csv

DIRECTORY = parse_directory_csv(
    """email,name,kana,department,supervisor
kazuya.sato@city.example.lg.jp,佐藤 一也,さとう かずや,総務課,hiroshi.tanaka@city.example.lg.jp
hiroshi.tanaka@city.example.lg.jp,田中 浩,たなか ひろし,総務課,michiko.suzuki@city.example.lg.jp
michiko.suzuki@city.example.lg.jp,鈴木 美智子,すずき みちこ,総務部,
yuki.ono@city.example.lg.jp,大野 由紀,おおの ゆき,子育て支援課,hiroshi.tanaka@city.example.lg.jp
ryo.ito@city.example.lg.jp,伊藤 亮,いとう りょう,子育て支援課,hiroshi.tanaka@city.example.lg.jp
taro.yamada@city.example.lg.jp,山田 太郎,やまだ たろう,教育委員会,michiko.suzuki@city.example.lg.jp
"""
)
ORG = Organization(internal_domains=["city.example.lg.jp"], directory=DIRECTORY)
TANAKA = "hiroshi.tanaka@city.example.lg.jp"
SATO = "kazuya.sato@city.example.lg.jp"
SUZUKI = "michiko.suzuki@city.example.lg.jp"
ONO = "yuki.ono@city.example.lg.jp"


def _b(text: str, charset: str = "utf-8") -> str:
    return f"=?{charset}?B?" + base64.b64encode(text.encode(charset)).decode() + "?="


def outlook_ja_forward(to: str, charset: str = "iso-2022-jp") -> bytes:
    """Outlook (ja) forward of an internal thread: 差出人/送信日時/宛先 header block."""
    body = (
        "佐藤様\n\n下記の件、ご確認をお願いします。\n\n田中\n\n"
        "差出人: 鈴木 美智子 <michiko.suzuki@city.example.lg.jp>\n"
        "送信日時: 2025年2月17日 10:00\n"
        "宛先: 佐藤 一也 <kazuya.sato@city.example.lg.jp>; "
        "田中 浩 <hiroshi.tanaka@city.example.lg.jp>\n"
        "件名: 人事異動の内示について\n\n"
        "佐藤さん、田中さん\n\n4月の人事異動の内示案を共有します。取扱注意です。\n"
    )
    enc = "7bit" if charset == "iso-2022-jp" else "8bit"
    head = (
        f"From: {_b('田中 浩')} <{TANAKA}>\r\nTo: {to}\r\n"
        f"Subject: {_b('FW: 人事異動の内示について', 'utf-8')}\r\n"
        "Message-ID: <fw1@city.example.lg.jp>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: {enc}\r\n\r\n"
    )
    return head.encode() + body.replace("\n", "\r\n").encode(charset)


def gmail_ja_forward_between(sender: str, to: str, a: str, b: str) -> bytes:
    """Gmail (ja) reply chain between two colleagues a and b, sent on by ``sender``."""
    body = (
        "ご参考まで。\n\n"
        f"2025年2月17日(月) 18:03 {a}:\n\n> 了解です。明日までに回答します。\n>\n"
        f"> 2025年2月17日(月) 10:00 {b}:\n>> 申請書の件、確認をお願いします。\n"
    )
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: Re: 申請書\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(body.replace("\n", "\r\n").encode()).decode()
    ).encode()


def fired(raw: bytes, history: SenderHistory | None = None) -> list[dict[str, str]]:
    msg = with_default_envelope(parse_message(raw))
    r = names.detect(msg, Context(org=ORG, history=history or SenderHistory()))
    assert r.facts[names.FACT] == len(r.findings)
    return [dict(f.evidence) for f in r.findings]


# --------------------------------------------------------------------------- the incident


@pytest.mark.parametrize("charset", ["iso-2022-jp", "shift_jis", "utf-8"])
@pytest.mark.parametrize(
    "to",
    [
        f"{_b('佐藤様')} <sato@sato-sekkei.example>",
        f"{_b('佐藤')} <info@sato-sekkei.example>",
        "Sato-san <m.sato@consult.example>",
        "satoh@gmail.example",
        f"{_b('サトウ')} <h-s@freemail.example>",
        f"{_b('佐藤 花子')} <hanako@sato-sekkei.example>",
    ],
)
def test_internal_thread_to_an_outsider_with_a_participants_surname(to: str, charset: str) -> None:
    (ev,) = fired(outlook_ja_forward(to, charset))
    assert ev["similar_to"] == SATO and ev["matched_on"] == "surname"
    assert ev["context"] == "internal thread" and ev["source"] == "directory"


def test_a_department_colleague_who_was_not_in_the_thread() -> None:
    # 佐藤 (総務課) forwards a thread between 鈴木 and 大野; 田中 is in his department
    raw = gmail_ja_forward_between(
        f"佐藤 一也 <{SATO}>", f"{_b('田中様')} <tanaka@tanaka-office.example>", ONO, SUZUKI
    )
    (ev,) = fired(raw)
    assert ev["similar_to"] == TANAKA and ev["context"] == "internal thread"
    # ... but 伊藤 of another department who took no part is no reason
    raw = gmail_ja_forward_between(f"佐藤 一也 <{SATO}>", "ito@ito-office.example", ONO, SUZUKI)
    assert fired(raw) == []


def test_a_thread_with_outsiders_to_someone_never_written_to() -> None:
    partner = "ken.mori@partner.example"
    raw = gmail_ja_forward_between(
        f"田中 浩 <{TANAKA}>", f"{_b('佐藤様')} <sato@another.example>", SATO, partner
    )
    # not an internal thread and no history: a surname is not enough
    assert fired(raw) == []
    # the sender never wrote to this 佐藤, and colleague 佐藤 took part: held
    hist = SenderHistory(recipients=frozenset({partner}), known=True)
    (ev,) = fired(raw, hist)
    assert ev["similar_to"] == SATO and ev["context"] == "recipient never written to"


# --------------------------------------------------------------------------- hard negatives


def test_a_partners_sato_in_an_external_thread() -> None:
    # replying to the partner's 佐藤, whose own mail is quoted: part of the conversation
    partner = "sato@sample-shoji.example"
    raw = gmail_ja_forward_between(
        f"田中 浩 <{TANAKA}>", f"{_b('佐藤様')} <{partner}>", partner, SATO
    )
    assert fired(raw) == []
    assert fired(raw, SenderHistory(known=True)) == []


def test_a_common_surname_at_a_long_time_contact() -> None:
    to = "sato@sato-sekkei.example"
    hist = SenderHistory(recipients=frozenset({to}), contact_names={to: ("佐藤様",)}, known=True)
    assert fired(outlook_ja_forward(f"{_b('佐藤様')} <{to}>"), hist) == []


@pytest.mark.parametrize(
    "raw",
    [
        # no thread at all: a first mail to a new 佐藤 is ordinary
        (
            f"From: {TANAKA}\r\nTo: {_b('佐藤様')} <sato@new.example>\r\nSubject: x\r\n\r\nhi\r\n"
        ).encode(),
        # an internal thread to an outsider whose surname no colleague in it shares
        outlook_ja_forward(f"{_b('山本様')} <yamamoto@yamamoto.example>"),
        # two outsiders: not the one-recipient autocomplete slip
        outlook_ja_forward(f"{_b('佐藤様')} <sato@x.example>, {_b('山本様')} <y@y.example>"),
        # the sender's own surname: their own mailbox is another fact
        gmail_ja_forward_between(f"佐藤 一也 <{SATO}>", "sato@home.example", ONO, SUZUKI),
        # an internal recipient
        outlook_ja_forward(f"{_b('佐藤 一也')} <{SATO}>"),
    ],
)
def test_does_not_fire(raw: bytes) -> None:
    assert fired(raw) == []


# --------------------------------------------------------------------------- short romaji


def _to(addr: str, display: str = "") -> list[dict[str, str]]:
    raw = (
        f"From: {TANAKA}\r\nTo: "
        + (f"{_b(display)} <{addr}>" if display else addr)
        + "\r\nSubject: x\r\n\r\nhi\r\n"
    ).encode()
    return fired(raw)


@pytest.mark.parametrize(
    "local",
    [
        "yukaono",  # ゆか おの: Yuka Ono is not Yuki Ono (大野 由紀)
        "yukaoono",  # long vowel oo
        "yukaohno",  # passport oh
        "onoyuka",
        "ohnoyuka",
        "yuka.ohno1",
        "kazuyakato",  # 加藤 一也 is not 佐藤 一也
        "katokazuya",
        "ryouto",  # りょう うと
    ],
)
def test_one_letter_that_makes_another_short_name_does_not_fire(local: str) -> None:
    assert _to(f"{local}@gmail.example") == []


@pytest.mark.parametrize(
    ("local", "colleague"),
    [
        ("yukiono", ONO),
        ("yukioono", ONO),  # long vowels: oo / oh / ou all read おお
        ("yukiohno", ONO),
        ("ohnoyuki", ONO),
        ("yuukiono", ONO),  # ゆうき spelt with a long vowel
        ("yukionp", ONO),  # a keyboard slip that makes no name still counts
        ("kazuyasatp", SATO),
        ("kazuyasatou", SATO),
        ("satoukazuya", SATO),
        ("kazuyasato", SATO),
        ("ryouitou", "ryo.ito@city.example.lg.jp"),  # kunrei/Hepburn long vowels
        ("ryoitoh", "ryo.ito@city.example.lg.jp"),
    ],
)
def test_the_same_name_in_any_romanisation_still_fires(local: str, colleague: str) -> None:
    (ev,) = _to(f"{local}@gmail.example")
    assert ev["similar_to"] == colleague and ev["matched_on"] == "local part"


def test_joined_typo_rule_per_part() -> None:
    assert joined_typo_fits("yukiono", ("yuki", "ono"))
    assert not joined_typo_fits("yukaono", ("yuki", "ono"))
    assert joined_typo_fits("kazyuasato", ("kazuya", "sato"))  # long part: one typo
    assert not joined_typo_fits("kazuyakato", ("kazuya", "sato"))
    assert joined_typo_fits("satokazuyq", ("kazuya", "sato"))  # either order
    assert joined_typo_fits("anything", ("single",))  # unsplit names keep the old rule


def test_the_finding_is_explained_in_both_languages() -> None:
    from leakguard.explain import explain_finding

    msg = with_default_envelope(
        parse_message(outlook_ja_forward(f"{_b('佐藤様')} <sato@sato-sekkei.example>"))
    )
    (f,) = names.detect(msg, Context(org=ORG)).findings
    ja, en = explain_finding(f, "ja"), explain_finding(f, "en")
    assert "姓だけが同じ" in ja and "社内だけのやり取り" in ja and "佐藤 一也" in ja
    assert "shares only the surname" in en and "internal thread" in en and SATO in en
    partner = "ken.mori@partner.example"
    raw = gmail_ja_forward_between(
        f"田中 浩 <{TANAKA}>", f"{_b('佐藤様')} <sato@another.example>", SATO, partner
    )
    hist = SenderHistory(recipients=frozenset({partner}), known=True)
    msg = with_default_envelope(parse_message(raw))
    (f,) = names.detect(msg, Context(org=ORG, history=hist)).findings
    assert "初めて送る社外の宛先" in explain_finding(f, "ja")
    assert "never written to before" in explain_finding(f, "en")
