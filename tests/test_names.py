"""The name_similar_recipients detector."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from leakguard.detectors import DetectorResult, names
from leakguard.detectors.japanese import kana_to_romaji, romaji_skeleton
from leakguard.message.addresses import make_address
from leakguard.organization import (
    Context,
    Organization,
    Person,
    SenderHistory,
    parse_directory_csv,
)
from leakguard.types import Address, Message

FIXTURES = Path(__file__).parent / "fixtures" / "names"

DIRECTORY_CSV = """email,name,kana,department,supervisor
kazuya.sato@city.example.lg.jp,佐藤 一也,さとう かずや,総務課,boss@city.example.lg.jp
shinichi.ohno@city.example.lg.jp,大野 真一,オオノ シンイチ,企画課,boss@city.example.lg.jp
s.honma@city.example.lg.jp,本間 翔,ほんま しょう,企画課,boss@city.example.lg.jp
naoko.takahashi@city.example.lg.jp,髙橋 直子,たかはし なおこ,財政課,boss@city.example.lg.jp
jsmith@city.example.lg.jp,John Smith,,国際課,boss@city.example.lg.jp
sasaki@city.example.lg.jp,佐々木,ささき,秘書課,boss@city.example.lg.jp
yuko.inoue@city.example.lg.jp,井上 裕子,いのうえ ゆうこ,税務課,boss@city.example.lg.jp
boss@city.example.lg.jp,山田 太郎,やまだ たろう,総務部,
"""

SENDER = "boss@city.example.lg.jp"


def org() -> Organization:
    return Organization(
        internal_domains=["city.example.lg.jp", "*.city.example.lg.jp"],
        directory=parse_directory_csv(DIRECTORY_CSV),
        partner_domains=["partner.co.jp"],
    )


def message(
    to: Iterable[Address] = (),
    cc: Iterable[Address] = (),
    envelope: Iterable[Address] | None = None,
    sender: Address | None = None,
) -> Message:
    sender = sender or make_address(SENDER, "山田 太郎")
    to, cc = tuple(to), tuple(cc)
    rcpts = tuple(envelope) if envelope is not None else (*to, *cc)
    return Message(
        raw=b"",
        subject="",
        message_id="",
        from_=(sender,),
        sender_header=None,
        reply_to=(),
        to=to,
        cc=cc,
        bcc=(),
        envelope_from=sender,
        envelope_rcpts=rcpts,
        text_parts=(),
        attachments=(),
        attached_messages=(),
        quoted_blocks=(),
        headers=(),
    )


def run(
    *rcpts: Address,
    organization: Organization | None = None,
    contacts: Mapping[str, tuple[str, ...]] | None = None,
) -> DetectorResult:
    history = SenderHistory(contact_names=contacts or {}, known=bool(contacts))
    ctx = Context(org=organization or org(), history=history)
    return names.detect(message(to=rcpts), ctx)


# --------------------------------------------------------------------------- fires


@pytest.mark.parametrize(
    ("addr", "display", "similar_to", "matched_on", "form"),
    [
        # kanji display names, honorifics and company decorations ignored
        ("k@gmail.com", "佐藤 一也 様", "kazuya.sato", "display name", "kanji"),
        ("k@gmail.com", "佐藤一也さん", "kazuya.sato", "display name", "kanji"),
        ("k@gmail.com", "(株)ABC商事 佐藤一也様", "kazuya.sato", "display name", "kanji"),
        ("n@gmail.com", "高橋 直子", "naoko.takahashi", "display name", "kanji"),  # 髙/高
        # kana, full-width and half-width
        ("k@gmail.com", "サトウ カズヤ", "kazuya.sato", "display name", "kana"),
        ("k@gmail.com", "ｻﾄｳ ｶｽﾞﾔ 様", "kazuya.sato", "display name", "kana"),
        ("k@gmail.com", "かずや さとう", "kazuya.sato", "display name", "kana"),
        # romaji display names
        ("k@gmail.com", "Kazuya Sato", "kazuya.sato", "display name", "romaji"),
        ("k@gmail.com", "SATOH Kazuya (ABC Co., Ltd.)", "kazuya.sato", "display name", "romaji"),
        ("k@gmail.com", "ｋａｚｕｙａ　ｓａｔｏ", "kazuya.sato", "display name", "romaji"),
        ("k@gmail.com", "Mr. Kazuya Satō", "kazuya.sato", "display name", "romaji"),
        # local parts: full names, long vowels, typos
        ("kazuya.sato@partner-x.co.jp", "", "kazuya.sato", "local part", "romaji"),
        ("sato_kazuya@gmail.com", "", "kazuya.sato", "local part", "romaji"),
        ("kazuya_sato123@gmail.com", "", "kazuya.sato", "local part", "romaji"),
        ("kazuya.satoo@gmail.com", "", "kazuya.sato", "local part", "romaji"),
        ("kazuya.satou@gmail.com", "", "kazuya.sato", "local part", "romaji"),
        ("kazuyasato@gmail.com", "", "kazuya.sato", "local part", "romaji"),
        ("kazuyasatp@gmail.com", "", "kazuya.sato", "local part", "romaji"),  # typo
        ("kazyua.sato@gmail.com", "", "kazuya.sato", "local part", "romaji"),  # swapped letters
        ("shinichi.ohno@yahoo.co.jp", "", "shinichi.ohno", "local part", "romaji"),
        ("siniti.oono@yahoo.co.jp", "", "shinichi.ohno", "local part", "romaji"),
        ("shinichi.ono@yahoo.co.jp", "", "shinichi.ohno", "local part", "romaji"),
        ("sho.homma@gmail.com", "", "s.honma", "local part", "romaji"),
        ("yuuko.inoue@gmail.com", "", "yuko.inoue", "local part", "romaji"),
        # surname plus given-name initial
        ("k.sato@gmail.com", "", "kazuya.sato", "local part", "romaji"),
        ("sato.k@gmail.com", "", "kazuya.sato", "local part", "romaji"),
        ("k-sato@gmail.com", "", "kazuya.sato", "local part", "romaji"),
        ("ksato@gmail.com", "", "kazuya.sato", "local part", "romaji"),
        ("satok@gmail.com", "", "kazuya.sato", "local part", "romaji"),
        ("s.ohno@gmail.com", "", "shinichi.ohno", "local part", "romaji"),
        # Western names
        ("j.smith@gmail.com", "", "jsmith", "local part", "romaji"),
        ("smithj@gmail.com", "", "jsmith", "local part", "romaji"),
        ("john.smith@gmail.com", "", "jsmith", "local part", "romaji"),
        ("x@gmail.com", "Mr. John Smith", "jsmith", "display name", "romaji"),
    ],
)
def test_fires(addr: str, display: str, similar_to: str, matched_on: str, form: str) -> None:
    result = run(make_address(addr, display))
    assert result.facts == {names.FACT: 1}
    (f,) = result.findings
    assert f.detector == "names"
    assert f.fact == "name_similar_recipients"
    assert f.addresses == (make_address(addr).addr,)
    assert f.evidence["similar_to"] == f"{similar_to}@city.example.lg.jp"
    assert f.evidence["matched_on"] == matched_on
    assert f.evidence["form"] == form
    assert f.evidence["source"] == "directory"
    assert 0 < int(f.evidence["score"]) <= 100
    assert f.evidence["similar_to"] in f.detail


# --------------------------------------------------------------------------- does not fire


@pytest.mark.parametrize(
    ("addr", "display"),
    [
        # a common surname alone
        ("sato@partner.co.jp", "佐藤様"),
        ("sato@partner.co.jp", "Sato-san"),
        ("sato@partner.co.jp", "サトウ様"),
        ("x@partner.co.jp", "(株)ABC 佐藤様"),
        ("sasaki@partner.co.jp", "佐々木 様"),  # the directory row is a surname only
        # a different given name with the same surname
        ("hanako.sato@partner.co.jp", "佐藤 花子"),
        ("hanako.sato@partner.co.jp", "Hanako Sato"),
        ("h.sato@partner.co.jp", ""),
        ("satoh@partner.co.jp", ""),
        ("kato@partner.co.jp", ""),  # a surname of its own, not k + ato
        # unrelated
        ("info@partner.co.jp", "Partner Inc."),
        ("tanaka.taro@partner.co.jp", "田中 太郎"),
        ("kazuya@partner.co.jp", "Kazuya"),  # a given name alone
    ],
)
def test_does_not_fire(addr: str, display: str) -> None:
    result = run(make_address(addr, display))
    assert result.facts == {names.FACT: 0}
    assert result.findings == ()


def test_internal_recipients_are_not_judged() -> None:
    # The colleague's own address, and another internal address with a similar name.
    result = run(
        make_address("kazuya.sato@city.example.lg.jp", "佐藤 一也"),
        make_address("k.sato@soumu.city.example.lg.jp", "佐藤 一也"),
    )
    assert result.facts == {names.FACT: 0}


def test_counts_distinct_recipient_addresses() -> None:
    a = make_address("kazuya.sato@gmail.com", "佐藤 一也")
    b = make_address("Kazuya.Sato@GMAIL.com")  # the same address, other case
    c = make_address("j.smith@example.com")
    d = make_address("nobody@example.com", "Nobody")
    ctx = Context(org=org())
    msg = message(to=(a, d), cc=(c,), envelope=(b, c, d))
    result = names.detect(msg, ctx)
    assert result.facts == {names.FACT: 2}
    assert sorted(f.addresses[0].lower() for f in result.findings) == [
        "j.smith@example.com",
        "kazuya.sato@gmail.com",
    ]


def test_envelope_only_recipient_is_judged_by_local_part() -> None:
    msg = message(to=(), envelope=(make_address("kazuya.sato@gmail.com"),))
    result = names.detect(msg, Context(org=org()))
    assert result.facts == {names.FACT: 1}
    assert result.findings[0].evidence["matched_on"] == "local part"


def test_no_recipients_and_empty_directory() -> None:
    assert names.detect(message(), Context(org=org())).facts == {names.FACT: 0}
    empty = Organization(internal_domains=["city.example.lg.jp"])
    result = run(make_address("kazuya.sato@gmail.com", "佐藤 一也"), organization=empty)
    assert result.facts == {names.FACT: 0}


# --------------------------------------------------------------------------- contacts


CONTACTS = {
    "tanaka.taro@partner.co.jp": ("田中 太郎 様", "Tanaka Taro"),
    "m.kobayashi@vendor.example": ("Kobayashi Miki",),
    "info@vendor.example": ("Vendor Support",),
}


def test_contact_name_at_another_address_fires() -> None:
    result = run(make_address("tanaka.taro@gmail.com", "田中太郎"), contacts=CONTACTS)
    assert result.facts == {names.FACT: 1}
    ev = result.findings[0].evidence
    assert ev["source"] == "contacts"
    assert ev["similar_to"] == "tanaka.taro@partner.co.jp"
    assert ev["form"] == "kanji"


def test_contact_romaji_name_at_another_address_fires_by_local_part() -> None:
    result = run(make_address("miki.kobayashi@freemail.example"), contacts=CONTACTS)
    assert result.facts == {names.FACT: 1}
    ev = result.findings[0].evidence
    assert ev["similar_to"] == "m.kobayashi@vendor.example"
    assert ev["similar_name"] == "Kobayashi Miki"
    assert ev["matched_on"] == "local part"


def test_contact_at_its_own_address_does_not_fire() -> None:
    result = run(make_address("tanaka.taro@partner.co.jp", "田中 太郎"), contacts=CONTACTS)
    assert result.facts == {names.FACT: 0}
    # A single-word contact name ("Vendor Support") is no target either.
    result = run(make_address("support@other.example", "Vendor Support"), contacts=CONTACTS)
    assert result.facts == {names.FACT: 1}  # two words: a full name for a contact
    result = run(make_address("x@other.example", "Support"), contacts=CONTACTS)
    assert result.facts == {names.FACT: 0}


def test_kanji_contact_matches_romaji_local_part_with_dictionary() -> None:
    pytest.importorskip("janome")
    contacts = {"suzuki@client.example": ("鈴木花子",)}
    result = run(make_address("hanako.suzuki@gmail.com"), contacts=contacts)
    assert result.facts == {names.FACT: 1}
    assert result.findings[0].evidence["similar_to"] == "suzuki@client.example"


def test_contact_index_cached_per_sender_and_rebuilt_on_change() -> None:
    o = org()
    ctx = Context(org=o, history=SenderHistory(contact_names=dict(CONTACTS)))
    msg = message(to=(make_address("tanaka.taro@gmail.com", "田中太郎"),))
    names.detect(msg, ctx)
    cache = o.cache[names.CONTACTS_KEY]
    first = cache[SENDER][1]
    names.detect(msg, ctx)
    assert cache[SENDER][1] is first
    changed = {**CONTACTS, "new@x.example": ("New Person",)}
    names.detect(msg, Context(org=o, history=SenderHistory(contact_names=changed)))
    assert cache[SENDER][1] is not first


# --------------------------------------------------------------------------- indexes


def test_directory_index_built_once_per_organisation() -> None:
    o = org()
    run(make_address("x@gmail.com", "佐藤 一也"), organization=o)
    idx = o.cache[names.INDEX_KEY]
    assert isinstance(idx, names.NameIndex)
    run(make_address("y@gmail.com", "佐藤 一也"), organization=o)
    assert o.cache[names.INDEX_KEY] is idx


def test_directory_without_kana_uses_own_local_part() -> None:
    # No kana and (possibly) no dictionary: the colleague's address stands in for romaji.
    o = Organization(
        internal_domains=["city.example.lg.jp"],
        directory=[Person("ichiro.tanaka@city.example.lg.jp", "田中 一郎")],
    )
    result = run(make_address("ichiro.tanaka@gmail.com"), organization=o)
    assert result.facts == {names.FACT: 1}
    result = run(make_address("x@gmail.com", "田中一郎 様"), organization=o)
    assert result.facts == {names.FACT: 1}
    assert result.findings[0].evidence["form"] == "kanji"


# ----------------------------------------------------------------------- hostile input, speed


def test_hostile_recipients_are_bounded() -> None:
    rcpts = [make_address(f"{'a.' * 300}{i}@x{i}.example", "様" * 500 + "佐藤") for i in range(300)]
    rcpts.append(make_address("kazuya.sato@gmail.com", "\u202e佐藤\u200b 一也\x00"))
    start = time.perf_counter()
    result = run(*rcpts)
    assert time.perf_counter() - start < 2.0
    assert result.facts[names.FACT] >= 1


def _synthetic_directory(n: int, rng: random.Random) -> list[Person]:
    import csv

    def read(name: str) -> list[tuple[str, str]]:
        with (FIXTURES / name).open(encoding="utf-8") as fh:
            return [(r["kanji"], r["kana"]) for r in csv.DictReader(fh)]

    surnames, given = read("surnames.csv"), read("given_names.csv")
    out = []
    for i in range(n):
        (sk, sr), (gk, gr) = rng.choice(surnames), rng.choice(given)
        out.append(
            Person(
                f"{kana_to_romaji(gr)}.{kana_to_romaji(sr)}{i}@city.example.lg.jp",
                f"{sk} {gk}",
                f"{sr} {gr}",
            )
        )
    return out


def test_five_thousand_people_stay_fast() -> None:
    rng = random.Random(1)
    people = _synthetic_directory(5000, rng)
    o = Organization(internal_domains=["city.example.lg.jp"], directory=people)
    idx = names.directory_index(o)
    rcpts: list[Address] = []
    for i in range(600):
        p = rng.choice(people)
        fam, giv = (kana_to_romaji(x) for x in p.kana.split())
        rcpts += [
            make_address(f"{giv}.{fam}@partner{i}.example"),
            make_address(f"{giv[0]}{fam}@mail{i}.example", p.name + " 様"),
            make_address(f"unrelated{i}@shop{i}.example", "Shop Support"),
        ]
    start = time.perf_counter()
    hits = sum(names.match_recipient(a, a.display_name, idx) is not None for a in rcpts)
    per_recipient = (time.perf_counter() - start) / len(rcpts)
    assert hits >= 1200  # the first two of each three resemble a colleague
    assert hits < 1300  # the unrelated third rarely does
    assert per_recipient < 0.001, f"{per_recipient * 1e6:.0f} µs per recipient"


# ------------------------------------------------- Western initials (false holds on real mail)

# Synthetic Western directory: middle initials, "Last, First", an upper-case family name.
WESTERN_CSV = """email,name,kana,department,supervisor
oliver.brandt@corp.example,Oliver Q Brandt,,Legal,
walter.finch@corp.example,Walter J Finch,,Trading,
regina.lowe@corp.example,Regina T. Lowe,,Finance,
nathan.price@corp.example,Nathan Price,,IT,
harriet.quinn@corp.example,"Quinn, Harriet",,HR,
peter.holm@corp.example,HOLM Peter,,Sales,
kazuya.mori@corp.example,Kazuya Mori,,Sales,
clara.vance@corp.example,Clara Vance,,Audit,
colin.vance@corp.example,Colin Vance,,Audit,
"""


def western_org() -> Organization:
    return Organization(
        internal_domains=["corp.example"], directory=parse_directory_csv(WESTERN_CSV)
    )


def run_western(*rcpts: Address, sender: Address | None = None) -> DetectorResult:
    sender = sender or make_address("boss@corp.example", "The Boss")
    return names.detect(message(to=rcpts, sender=sender), Context(org=western_org()))


@pytest.mark.parametrize(
    ("local", "similar_to", "score"),
    [
        # the conventional forms: first initial + last name, in either order and separator
        ("o.brandt", "oliver.brandt", 80),
        ("obrandt", "oliver.brandt", 80),
        ("brandto", "oliver.brandt", 80),
        ("brandt.o", "oliver.brandt", 80),
        ("o-brandt", "oliver.brandt", 80),
        ("brandt_o", "oliver.brandt", 80),
        ("r.lowe", "regina.lowe", 80),
        # a middle initial in the local part is allowed
        ("oliver.q.brandt", "oliver.brandt", 100),
        ("walter.j.finch", "walter.finch", 100),
        ("w.j.finch", "walter.finch", 80),
        # the full name without the directory's middle initial
        ("oliver.brandt", "oliver.brandt", 100),
        # "Last, First" and an upper-case family name say which word is the surname
        ("hquinn", "harriet.quinn", 80),
        ("quinn.h", "harriet.quinn", 80),
        ("pholm", "peter.holm", 80),
        # a romaji-only Japanese name: the word order is unknown, either word may be the surname
        ("k.mori", "kazuya.mori", 80),
        ("morik", "kazuya.mori", 80),
    ],
)
def test_western_initial_forms_fire(local: str, similar_to: str, score: int) -> None:
    result = run_western(make_address(f"{local}@outside.example"))
    assert result.facts == {names.FACT: 1}, result.findings
    ev = result.findings[0].evidence
    assert ev["similar_to"] == f"{similar_to}@corp.example"
    assert int(ev["score"]) == score


@pytest.mark.parametrize(
    "local",
    [
        # given name + one letter is not "surname + initial"
        "oliverq",
        "oliver.q",
        "nathanp",
        "nathan.p",
        "walterf",
        "harrieth",  # "Quinn, Harriet": harriet is the given name
        "peterh",  # "HOLM Peter": peter is the given name
        # given name + middle initial + another surname (scored 100 before)
        "walter.j.kowalski",
        "oliver.q.zimmer",
        # a middle initial is no given-name initial, and no name part
        "tlowe",
        "t.lowe",
        "q.brandt",
        "brandtq",
        "nathan.j",
    ],
)
def test_given_name_plus_letter_does_not_fire(local: str) -> None:
    result = run_western(make_address(f"{local}@outside.example"))
    assert result.facts == {names.FACT: 0}, result.findings


def test_middle_initials_are_not_name_parts() -> None:
    idx = names.directory_index(western_org())
    assert romaji_skeleton("j") not in idx.parts  # "J" -> "zy" used to count as a name part
    finch = romaji_skeleton("finch")  # skeletons, as the index keeps them
    (entry, _), *_ = idx.parts[finch]
    assert entry.parts == ("walter", finch)
    assert (finch, "w") in idx.initials
    assert ("walter", "f") not in idx.initials
    assert (finch, "j") not in idx.initials
    assert ("lowe", "t") not in idx.initials


# ---------------------------------------------------- the sender's own outside address


def test_sender_own_private_address_is_not_a_colleague() -> None:
    sender = make_address("oliver.brandt@corp.example")  # no display name: directory row only
    home = make_address("obrandt7@home-isp.example")
    result = run_western(home, sender=sender)
    assert result.facts == {names.FACT: 0}, result.findings
    ctx = Context(org=western_org())
    msg = message(to=(home, make_address("nathan.p@home-isp.example")), sender=sender)
    assert names.sender_aliases(msg, ctx) == frozenset({"obrandt7@home-isp.example"})
    # Someone else sending to the same address is warned as before.
    result = run_western(home)
    assert result.facts == {names.FACT: 1}
    assert result.findings[0].evidence["similar_to"] == "oliver.brandt@corp.example"


def test_sender_known_by_from_display_name_only() -> None:
    # The sender writes from an address the directory does not list; their From display name
    # is a directory person's name (their other address): not "a colleague" either.
    sender = make_address("hq@corp.example", "Harriet Quinn")
    home = make_address("hquinn@home-isp.example", "Harriet Q.")
    assert run_western(home, sender=sender).facts == {names.FACT: 0}
    msg = message(to=(home,), sender=sender)
    assert names.sender_aliases(msg, Context(org=western_org())) == {"hquinn@home-isp.example"}


def test_sender_alias_by_display_name_and_envelope_only() -> None:
    sender = make_address("nathan.price@corp.example", "Nathan Price")
    shown = make_address("nate1977@mail.example", "Price, Nathan")
    hidden = make_address("nprice@mail.example")  # envelope only (Bcc)
    other = make_address("o.brandt@mail.example")  # a colleague's name, not the sender's
    internal = make_address("nathan.price@corp.example")
    msg = message(
        to=(shown, other, internal), envelope=(shown, other, internal, hidden), sender=sender
    )
    ctx = Context(org=western_org())
    assert names.sender_aliases(msg, ctx) == {"nate1977@mail.example", "nprice@mail.example"}
    result = names.detect(msg, ctx)
    assert [f.addresses for f in result.findings] == [("o.brandt@mail.example",)]


def test_another_colleague_with_the_same_initial_and_surname_still_fires() -> None:
    # Clara Vance writes to cvance@home: it may be her own mailbox, but it is also how Colin
    # Vance would be written, the autocomplete incident the check exists for.
    sender = make_address("clara.vance@corp.example", "Clara Vance")
    home = make_address("cvance@home-isp.example")
    result = run_western(home, sender=sender)
    assert result.facts == {names.FACT: 1}
    assert result.findings[0].evidence["similar_to"] == "colin.vance@corp.example"
    msg = message(to=(home,), sender=sender)
    assert names.sender_aliases(msg, Context(org=western_org())) == {"cvance@home-isp.example"}


def test_japanese_sender_own_address() -> None:
    sender = make_address("kazuya.sato@city.example.lg.jp", "佐藤 一也")
    for rcpt in (
        make_address("k.sato@gmail.com"),
        make_address("kazu@gmail.com", "佐藤一也"),
        make_address("x@yahoo.co.jp", "サトウ カズヤ"),
    ):
        msg = message(to=(rcpt,), sender=sender)
        ctx = Context(org=org())
        assert names.detect(msg, ctx).facts == {names.FACT: 0}, rcpt
        assert names.sender_aliases(msg, ctx) == {rcpt.key}
    # Another colleague's name is still reported when 佐藤 一也 sends it.
    msg = message(to=(make_address("s.ohno@gmail.com"),), sender=sender)
    assert names.detect(msg, Context(org=org())).facts == {names.FACT: 1}
    assert names.sender_aliases(msg, Context(org=org())) == frozenset()


def test_sender_name_among_contacts_is_not_a_usual_contact() -> None:
    sender = make_address("clara.vance@corp.example", "Clara Vance")
    contacts = {
        "clara.v@old-home.example": ("Clara Vance",),
        "m.kobayashi@vendor.example": ("Kobayashi Miki",),
    }
    ctx = Context(org=western_org(), history=SenderHistory(contact_names=contacts, known=True))
    mine = make_address("clara.vance@new-home.example")
    theirs = make_address("miki.kobayashi@free.example")
    result = names.detect(message(to=(mine, theirs), sender=sender), ctx)
    assert [f.addresses for f in result.findings] == [("miki.kobayashi@free.example",)]


def test_sender_names_cached_per_sender() -> None:
    o = western_org()
    sender = make_address("oliver.brandt@corp.example", "Oliver Brandt")
    msg = message(to=(make_address("obrandt@x.example"),), sender=sender)
    names.sender_aliases(msg, Context(org=o))
    cache = o.cache[names.SENDERS_KEY]
    (first,) = cache.values()
    names.detect(msg, Context(org=o))
    assert list(cache.values()) == [first]
    assert first.addresses == {"oliver.brandt@corp.example"}
    other = message(to=(make_address("obrandt@x.example"),))
    names.sender_aliases(other, Context(org=o))
    assert len(cache) == 2


def test_sender_aliases_without_sender_name_or_recipients() -> None:
    ctx = Context(org=western_org())
    anon = make_address("noreply@corp.example")  # not in the directory, no display name
    assert (
        names.sender_aliases(message(to=(make_address("n.price@x.example"),), sender=anon), ctx)
        == frozenset()
    )
    assert names.sender_aliases(message(sender=anon), ctx) == frozenset()


def test_sender_aliases_hostile_recipients_are_bounded() -> None:
    sender = make_address("kazuya.sato@city.example.lg.jp", "佐藤 一也")
    rcpts = [
        make_address(f"{'k.' * 200}{i}@x{i}.example", "様" * 500 + "佐藤") for i in range(2000)
    ]
    msg = message(to=rcpts, sender=sender)
    start = time.perf_counter()
    aliases = names.sender_aliases(msg, Context(org=org()))
    assert time.perf_counter() - start < 2.0
    assert len(aliases) <= names.MAX_RECIPIENTS
