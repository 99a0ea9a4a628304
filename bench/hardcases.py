"""Hard cases: incidents and ordinary mail written the way real clients write them.

An evaluation set built independently of the detectors (by the lead, not by the engineers
who wrote the checks): every incident class of issues 7 and 8, and the ordinary mail that
must not be held, each written in several client formats (Outlook ja/en, OWA, Gmail ja,
Thunderbird ja, Apple Mail, iPhone, Becky!, in-house tools) and encodings (ISO-2022-JP,
Shift_JIS, UTF-8; 7bit, base64, quoted-printable). Synthetic text only, no real people.

    .venv/bin/python bench/hardcases.py [--write DIR] [--json] [--verbose]

Prints, per class, how many were caught (incidents) or passed (ordinary), and the totals:
incident catch rate and false-hold rate. ``--write`` dumps the .eml files with an
``envelopes.jsonl`` that ``leakguard check --envelopes`` reads.
"""

from __future__ import annotations

import argparse
import base64
import json
import quopri
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from leakguard.engine import Engine  # noqa: E402
from leakguard.organization import SenderHistory  # noqa: E402
from leakguard.policy.loader import default_policy_path  # noqa: E402

SENDER = ("佐藤 一也", "kazuya.sato@city.example.lg.jp")
DATE = "Fri, 14 Feb 2025 17:32:00 +0900"


@dataclass(frozen=True, slots=True)
class Case:
    cls: str  # class of mail
    client: str
    incident: bool  # True: must not pass unchanged (hold/bcc/reject); False: must pass
    raw: bytes
    rcpts: tuple[str, ...]
    sender: str = SENDER[1]
    expect: tuple[str, ...] = ()  # acceptable actions (default: by ``incident``)
    history: SenderHistory | None = None  # what the relay's own records know


# --------------------------------------------------------------------------- encoding


def _b_word(text: str, charset: str) -> str:
    data = text.encode(charset)
    return f"=?{charset.upper()}?B?{base64.b64encode(data).decode()}?="


def _name_addr(name: str, addr: str, charset: str) -> str:
    if not name:
        return addr
    if name.isascii():
        return f'"{name}" <{addr}>'
    return f"{_b_word(name, charset)} <{addr}>"


def build(
    *,
    to: list[tuple[str, str]],
    subject: str,
    body: str,
    charset: str = "iso-2022-jp",
    cte: str = "7bit",
    cc: list[tuple[str, str]] | None = None,
    frm: tuple[str, str] = SENDER,
    extra_headers: str = "",
    to_header: str | None = None,
    mailer: str = "",
) -> bytes:
    hdr_cs = "utf-8" if charset in ("utf-8",) else "iso-2022-jp"
    lines = [
        f"From: {_name_addr(frm[0], frm[1], hdr_cs)}",
        "To: "
        + (
            to_header
            if to_header is not None
            else ", ".join(_name_addr(n, a, hdr_cs) for n, a in to)
        ),
    ]
    if cc:
        lines.append("Cc: " + ", ".join(_name_addr(n, a, hdr_cs) for n, a in cc))
    lines += [
        f"Subject: {_b_word(subject, hdr_cs)}",
        f"Date: {DATE}",
        f"Message-ID: <{abs(hash((subject, body, str(to)))) % 10**12}@city.example.lg.jp>",
        "MIME-Version: 1.0",
        f"Content-Type: text/plain; charset={charset.upper()}",
        f"Content-Transfer-Encoding: {cte}",
    ]
    if mailer:
        lines.append(f"X-Mailer: {mailer}")
    if extra_headers:
        lines.append(extra_headers.rstrip("\r\n"))
    data = body.replace("\n", "\r\n").encode(charset, "replace")
    if cte == "base64":
        data = base64.encodebytes(data).replace(b"\n", b"\r\n")
    elif cte == "quoted-printable":
        data = quopri.encodestring(data).replace(b"\n", b"\r\n")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + data


# Each client: (name, charset, cte, forward block, reply attribution).
Fwd = Callable[[str, str, list[str], str, str], str]  # (from, date, to, subject, body)
Attr = Callable[[str, str], str]  # (name, addr)


def _gt(body: str) -> str:
    return "\n".join("> " + x for x in body.splitlines())


CLIENTS: dict[str, tuple[str, str, Fwd, Attr]] = {
    "outlook-ja": (
        "iso-2022-jp",
        "7bit",
        lambda f, d, t, s, b: (
            "________________________________\n"
            f"差出人: {f}\n送信日時: 2025年2月14日 17:32\n宛先: {'; '.join(t)}\n件名: {s}\n\n{b}"
        ),
        lambda n, a: (
            "________________________________\n"
            f"差出人: {n} <{a}>\n送信日時: 2025年2月14日 17:32\n宛先: 佐藤 一也\n件名: RE: 打合せ\n"
        ),
    ),
    "outlook-en": (
        "utf-8",
        "quoted-printable",
        lambda f, d, t, s, b: (
            "-----Original Message-----\n"
            f"From: {f}\nSent: Friday, February 14, 2025 5:32 PM\nTo: {'; '.join(t)}\n"
            f"Subject: {s}\n\n{b}"
        ),
        lambda n, a: (
            f"From: {n} <{a}>\nSent: Friday, February 14, 2025 5:32 PM\nTo: Sato Kazuya\n"
            "Subject: RE: meeting\n"
        ),
    ),
    "owa-ja": (
        "utf-8",
        "base64",
        lambda f, d, t, s, b: (
            f"差出人: {f}\n送信日時: 2025年2月14日 (金曜日) 17:32\n宛先: {'; '.join(t)}\n"
            f"件名: {s}\n\n{b}"
        ),
        lambda n, a: (
            f"差出人: {n} <{a}>\n送信日時: 2025年2月14日 (金曜日) 17:32\n件名: Re: 打合せ\n"
        ),
    ),
    "gmail-ja": (
        "utf-8",
        "base64",
        lambda f, d, t, s, b: (
            "---------- Forwarded message ---------\n"
            f"From: {f}\nDate: 2025年2月14日(金) 17:32\nSubject: {s}\nTo: {', '.join(t)}\n\n\n{b}"
        ),
        lambda n, a: f"2025年2月14日(金) 17:32 {n} <{a}>:\n",
    ),
    "thunderbird-ja": (
        "iso-2022-jp",
        "7bit",
        lambda f, d, t, s, b: (
            "-------- 転送メッセージ --------\n"
            f"件名: \t{s}\n日付: \t{DATE}\n差出人: \t{f}\n宛先: \t{', '.join(t)}\n\n\n{b}"
        ),
        lambda n, a: f"2025/02/14 17:32 に {n} さんは書きました:\n",
    ),
    "apple-mail-ja": (
        "utf-8",
        "quoted-printable",
        lambda f, d, t, s, b: (
            f"転送されたメッセージ:\n\n差出人: {f}\n件名: {s}\n日付: 2025年2月14日 17:32:00 JST\n"
            f"宛先: {', '.join(t)}\n\n{b}"
        ),
        lambda n, a: f"2025/02/14 17:32、{n} <{a}>のメール:\n",
    ),
    "iphone-ja": (
        "utf-8",
        "base64",
        lambda f, d, t, s, b: (
            f"iPhoneから送信\n\n転送されたメッセージ:\n\n差出人: {f}\n"
            "日付: 2025年2月14日 17:32:00 JST\n"
            f"宛先: {', '.join(t)}\n件名: {s}\n\n{b}"
        ),
        lambda n, a: f"2025/02/14 17:32、{n} <{a}>のメール:\n",
    ),
    "becky": (
        "iso-2022-jp",
        "7bit",
        lambda f, d, t, s, b: (
            "-------- Original Message --------\n"
            f"From: {f}\nTo: {', '.join(t)}\nDate: {DATE}\nSubject: {s}\n\n{b}"
        ),
        lambda n, a: f"On {DATE}\n{n} <{a}> wrote:\n",
    ),
    "sjis-inhouse": (
        "shift_jis",
        "8bit",
        lambda f, d, t, s, b: (
            f"＜転送＞\n送信者：{f}\n送信日：2025/02/14 17:32\n"
            f"宛先：{', '.join(t)}\n件名：{s}\n\n{b}"
        ),
        lambda n, a: f"{n} <{a}> wrote:\n",
    ),
}


def _quote_reply(client: str, name: str, addr: str, body: str) -> str:
    _cs, _cte, _fwd, attr = CLIENTS[client]
    head = attr(name, addr)
    if client.startswith(("outlook", "owa")):
        return head + "\n" + body  # Outlook quotes without ">"
    return head + _gt(body)


# --------------------------------------------------------------------------- classes


def incidents() -> Iterator[Case]:
    # I1: the 41-companies incident, written by in-house tools with the whole "name <addr>"
    # in one encoded-word (PHP mb_encode_mimeheader, Perl Encode, Python email.header).
    companies = [
        (f"株式会社取引先{i:02d} ご担当者様", f"info@company{i:02d}.example") for i in range(1, 13)
    ]
    for tool, cs in (("php-mb_encode_mimeheader", "iso-2022-jp"), ("python-email-header", "utf-8")):
        whole = ", ".join(f"{n} <{a}>" for n, a in companies)
        enc = " ".join(
            _b_word(whole[i : i + 30], cs) for i in range(0, len(whole), 30)
        )  # split words as the libraries do, addresses cut across words
        raw = build(
            to=[],
            to_header=enc,
            subject="説明会のご案内",
            body="各位\n説明会のご案内です。\n",
            charset=cs,
            cte="base64" if cs == "utf-8" else "7bit",
            mailer=tool,
        )
        yield Case(
            "bulk-encoded-word-to",
            tool,
            True,
            raw,
            tuple(a for _n, a in companies),
            expect=("bcc", "hold"),
        )
    for client in ("outlook-ja", "gmail-ja", "thunderbird-ja"):
        cs, cte, _f, _a = CLIENTS[client]
        raw = build(
            to=companies,
            subject="説明会のご案内",
            body="各位\n説明会のご案内です。\n",
            charset=cs,
            cte=cte,
        )
        yield Case(
            "bulk-to-companies",
            client,
            True,
            raw,
            tuple(a for _n, a in companies),
            expect=("bcc", "hold"),
        )
    # I2: citizens and parents at free-mail / carrier domains, visible to each other.
    parents = [
        ("保護者 一郎", "ichiro.h@gmail.com"),
        ("保護者 花子", "hanako-0123@docomo.ne.jp"),
        ("保護者 次郎", "jiro.p@ezweb.ne.jp"),
        ("", "mama.k@icloud.com"),
        ("保護者 三郎", "saburo@yahoo.co.jp"),
        ("", "papa-t@softbank.ne.jp"),
    ]
    for client in ("outlook-ja", "gmail-ja", "iphone-ja"):
        cs, cte, _f, _a = CLIENTS[client]
        raw = build(
            to=parents,
            subject="運動会のお知らせ",
            body="保護者の皆様\n運動会は10月5日です。\n",
            charset=cs,
            cte=cte,
        )
        yield Case("freemail-parents", client, True, raw, tuple(a for _n, a in parents))
    # I3: a thread forwarded to an outsider still carries a third party's address.
    third = "山本 健二 <k.yamamoto@sample-shoji.co.jp>"
    third_variants = {
        "plain": "k.yamamoto@sample-shoji.co.jp",
        "fullwidth": "ｋ．ｙａｍａｍｏｔｏ＠ｓａｍｐｌｅ－ｓｈｏｊｉ．ｃｏ．ｊｐ",
        "spamguard": "k.yamamoto［at］sample-shoji.co.jp",
    }
    for client, (cs, cte, fwd, _a) in CLIENTS.items():
        for variant, shown in third_variants.items():
            if variant != "plain" and client not in ("outlook-ja", "gmail-ja", "thunderbird-ja"):
                continue
            inner = (
                f"佐藤様\n\nお世話になっております。サンプル商事の山本です。\n"
                f"見積書を送付します。\n\n--\n山本 健二\nサンプル商事 営業部\nMail: {shown}\n"
            )
            body = "校長先生\n\n下記の件、ご確認ください。\n\n" + fwd(
                third, DATE, ["佐藤 一也 <kazuya.sato@city.example.lg.jp>"], "見積の件", inner
            )
            raw = build(
                to=[("南小学校 校長", "kocho@minami-school.ed.jp")],
                subject="Fw: 見積の件",
                body=body,
                charset=cs,
                cte=cte,
            )
            yield Case(
                f"forward-third-party-{variant}", client, True, raw, ("kocho@minami-school.ed.jp",)
            )
    # I4: a citizen's web-form notification forwarded to an outside company.
    form = (
        "【お問い合わせフォーム】\n\nお名前：市民 太郎\nフリガナ：シミン タロウ\n"
        "メールアドレス：shimin.taro@example-isp.ne.jp\n電話番号：090-1234-5678\n"
        "ご住所：〒100-0001 東京都千代田区千代田1-1\nお問い合わせ内容：\n道路の補修について\n\n"
        "※このメールは送信専用アドレスから送信されています。\n"
    )
    for client in ("outlook-ja", "gmail-ja", "thunderbird-ja"):
        cs, cte, fwd, _a = CLIENTS[client]
        body = "株式会社道路補修 ご担当者様\n\n以下の問い合わせの対応をお願いします。\n\n" + fwd(
            "no-reply@city.example.lg.jp",
            DATE,
            ["kazuya.sato@city.example.lg.jp"],
            "お問い合わせがありました",
            form,
        )
        raw = build(
            to=[("", "info@doro-hoshu.example")],
            subject="Fw: お問い合わせ",
            body=body,
            charset=cs,
            cte=cte,
        )
        yield Case("forwarded-web-form", client, True, raw, ("info@doro-hoshu.example",))
    # I5: personal data in the body to an outside organisation (My Number with check digit).
    pd = (
        "申請者情報\n氏名：市民 花子\n生年月日：昭和60年4月1日\n"
        "住所：〒100-0001 東京都千代田区千代田1-1\n"
        "個人番号：1234 5678 9018\n電話番号：03-1234-5678\n"
    )
    for client in ("outlook-ja", "gmail-ja", "sjis-inhouse"):
        cs, cte, _f, _a = CLIENTS[client]
        raw = build(
            to=[("", "info@company01.example")],
            subject="申請の件",
            body="株式会社取引先01 ご担当者様\n\n下記の通りです。\n\n" + pd,
            charset=cs,
            cte=cte,
        )
        yield Case("personal-data-body", client, True, raw, ("info@company01.example",))
    # I6: the mail is written for one company and sent to another known partner.
    for client in ("outlook-ja", "gmail-ja", "thunderbird-ja"):
        cs, cte, _f, _a = CLIENTS[client]
        raw = build(
            to=[("", "saiyo@sample-shoji.co.jp")],
            subject="応募書類の送付",
            body="株式会社みらい建設\n採用ご担当者様\n\nいつもお世話になっております。\n"
            "応募者の書類を送付いたします。\n",
            charset=cs,
            cte=cte,
        )
        yield Case("addressee-mismatch", client, True, raw, ("saiyo@sample-shoji.co.jp",))
    # I7: a lookalike of a partner's domain.
    for client in ("outlook-ja", "gmail-ja"):
        cs, cte, _f, _a = CLIENTS[client]
        raw = build(
            to=[("山本 健二", "k.yamamoto@sample-shoj1.co.jp")],
            subject="資料",
            body="山本様\n資料を送ります。\n",
            charset=cs,
            cte=cte,
        )
        yield Case("lookalike-domain", client, True, raw, ("k.yamamoto@sample-shoj1.co.jp",))
    # I8: the same-surname autocomplete incident: an internal thread forwarded to an outsider
    # who shares a colleague's surname (田中).
    for client in ("outlook-ja", "gmail-ja", "thunderbird-ja"):
        cs, cte, fwd, _a = CLIENTS[client]
        inner = "佐藤さん\n\n来週の人事異動の件、内密にお願いします。\n\n田中\n"
        body = "田中さん\n\n転送します。\n\n" + fwd(
            "田中 浩 <hiroshi.tanaka@city.example.lg.jp>",
            DATE,
            ["佐藤 一也 <kazuya.sato@city.example.lg.jp>"],
            "人事の件",
            inner,
        )
        raw = build(
            to=[("田中 誠", "makoto.tanaka@other-corp.example")],
            subject="Fw: 人事の件",
            body=body,
            charset=cs,
            cte=cte,
        )
        yield Case(
            "same-surname-outsider", client, True, raw, ("makoto.tanaka@other-corp.example",)
        )


def ordinary() -> Iterator[Case]:
    # O1: reply-all in a thread where everyone has been from the start, attribution-only.
    a = ("山本 健二", "k.yamamoto@sample-shoji.co.jp")
    b = ("鈴木 一郎", "ichiro.suzuki@partner-kogyo.example")
    for client in CLIENTS:
        cs, cte, _f, _attr = CLIENTS[client]
        quoted = _quote_reply(
            client, a[0], a[1], "皆様\n\n来週の打合せは火曜でお願いします。\n山本"
        )
        raw = build(
            to=[a],
            cc=[b],
            subject="Re: 打合せ",
            body="山本様、鈴木様\n\n承知しました。火曜でお願いします。\n佐藤\n\n" + quoted,
            charset=cs,
            cte=cte,
            extra_headers="In-Reply-To: <t1@sample-shoji.co.jp>\r\n"
            "References: <t0@city.example.lg.jp> <t1@sample-shoji.co.jp>",
        )
        # The relay passed the thread's first mail (t0, sent by us to both): its own record.
        met = frozenset({SENDER[1], a[1], b[1]})
        known = SenderHistory(recipients=frozenset({a[1], b[1]}), known=True, sent_together=(met,))
        yield Case("reply-all-existing-thread", client, False, raw, (a[1], b[1]), history=known)
    # O2: several people of one organisation.
    for client in ("outlook-ja", "gmail-ja"):
        cs, cte, _f, _a = CLIENTS[client]
        people = [
            ("山本 健二", "k.yamamoto@sample-shoji.co.jp"),
            ("高橋 花", "h.takahashi@sample-shoji.co.jp"),
            ("伊藤 亮", "r.ito@sample-shoji.co.jp"),
        ]
        raw = build(
            to=people,
            subject="打合せ資料",
            body="サンプル商事 各位\n\n資料をお送りします。\n",
            charset=cs,
            cte=cte,
        )
        yield Case("one-organisation", client, False, raw, tuple(x for _n, x in people))
    # O3: an official notice forwarded on to a partner (prefecture desk address in it).
    notice = (
        "各市町村 担当課 御中\n\n周知依頼\n標記の件について、関係機関への周知をお願いします。\n\n"
        "問い合わせ先：県 子育て支援課 kosodate@pref.example.lg.jp 電話 012-345-6789\n"
    )
    for client in ("outlook-ja", "gmail-ja", "thunderbird-ja"):
        cs, cte, fwd, _a = CLIENTS[client]
        body = "南小学校 校長先生\n\n県からの周知依頼を転送します。\n\n" + fwd(
            "県 子育て支援課 <kosodate@pref.example.lg.jp>",
            DATE,
            ["kazuya.sato@city.example.lg.jp"],
            "【周知依頼】子育て支援制度について",
            notice,
        )
        raw = build(
            to=[("南小学校 校長", "kocho@minami-school.ed.jp")],
            subject="Fw: 【周知依頼】",
            body=body,
            charset=cs,
            cte=cte,
        )
        yield Case("official-notice-forward", client, False, raw, ("kocho@minami-school.ed.jp",))
    # O4: an invoice with invoice/order numbers, the corporate number and a signature.
    inv = (
        "サンプル商事株式会社 御中\n\n請求書番号：202502140001\n注文番号：4500123456\n"
        "登録番号：T1234567890123\n合計金額：123,456円\n振込先は請求書をご確認ください。\n\n"
        "--\n佐藤 一也\n総務課 電話 03-1111-2222 / FAX 03-1111-2223\n"
    )
    for client in ("outlook-ja", "gmail-ja", "sjis-inhouse"):
        cs, cte, _f, _a = CLIENTS[client]
        raw = build(
            to=[("", "keiri@sample-shoji.co.jp")],
            subject="請求書の件",
            body=inv,
            charset=cs,
            cte=cte,
        )
        yield Case("invoice-numbers", client, False, raw, ("keiri@sample-shoji.co.jp",))
    # O5: a greeting that matches the recipient's organisation (display name / partner).
    for client in ("outlook-ja", "gmail-ja", "thunderbird-ja"):
        cs, cte, _f, _a = CLIENTS[client]
        raw = build(
            to=[("サンプル商事 山本 健二", "k.yamamoto@sample-shoji.co.jp")],
            subject="ご確認",
            body="サンプル商事株式会社\n山本様\n\nいつもお世話になっております。\n資料をご確認ください。\n",
            charset=cs,
            cte=cte,
        )
        yield Case("greeting-matches", client, False, raw, ("k.yamamoto@sample-shoji.co.jp",))
    # O6: a masked form sent out (fields blacked out).
    masked = (
        "申請者情報（マスキング済）\n氏名：■■ ■■\n住所：＊＊＊＊＊＊\n個人番号：**** **** ****\n"
        "電話番号：非開示\n"
    )
    for client in ("outlook-ja", "gmail-ja"):
        cs, cte, _f, _a = CLIENTS[client]
        raw = build(
            to=[("", "info@company01.example")],
            subject="様式例",
            body="株式会社取引先01 ご担当者様\n\n記入例です（個人情報はマスキング済み）。\n\n"
            + masked,
            charset=cs,
            cte=cte,
        )
        yield Case("masked-form", client, False, raw, ("info@company01.example",))
    # O7: internal only, many colleagues.
    for client in ("outlook-ja", "thunderbird-ja"):
        cs, cte, _f, _a = CLIENTS[client]
        staff = [
            ("田中 浩", "hiroshi.tanaka@city.example.lg.jp"),
            ("大野 由紀", "yuki.ono@city.example.lg.jp"),
            ("山田 太郎", "taro.yamada@city.example.lg.jp"),
        ]
        raw = build(
            to=staff, subject="会議", body="各位\n会議は15時からです。\n", charset=cs, cte=cte
        )
        yield Case("internal-only", client, False, raw, tuple(x for _n, x in staff))
    # O8: a reply to one outside person with their own quoted mail.
    for client in CLIENTS:
        cs, cte, _f, _attr = CLIENTS[client]
        quoted = _quote_reply(client, a[0], a[1], "佐藤様\n\n資料を拝見しました。\n山本")
        raw = build(
            to=[a],
            subject="Re: 資料",
            body="山本様\n\nありがとうございます。\n佐藤\n\n" + quoted,
            charset=cs,
            cte=cte,
        )
        yield Case("reply-one-person", client, False, raw, (a[1],))


# --------------------------------------------------------------------------- run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path, help="write the .eml files and envelopes.jsonl here")
    ap.add_argument("--json", action="store_true", help="one JSON line per case")
    ap.add_argument("--verbose", action="store_true", help="list every miss")
    args = ap.parse_args(argv)
    engine = Engine.from_files(default_policy_path())
    cases = [*incidents(), *ordinary()]
    by_class: dict[tuple[bool, str], list[int]] = defaultdict(lambda: [0, 0])
    misses: list[str] = []
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
    env_lines = []
    for i, c in enumerate(cases):
        d = engine.decide(c.raw, envelope_from=c.sender, rcpts=list(c.rcpts), history=c.history)
        action = d.verdict.action.value
        ok = (action in c.expect) if c.expect else ((action != "pass") == c.incident)
        stat = by_class[(c.incident, c.cls)]
        stat[0] += ok
        stat[1] += 1
        if not ok:
            misses.append(
                f"{'INCIDENT' if c.incident else 'ordinary'} {c.cls} [{c.client}]: "
                f"{action} {list(d.verdict.rule_ids)}"
            )
        if args.json:
            print(
                json.dumps(
                    {
                        "class": c.cls,
                        "client": c.client,
                        "incident": c.incident,
                        "action": action,
                        "rules": list(d.verdict.rule_ids),
                        "ok": ok,
                    },
                    ensure_ascii=False,
                )
            )
        if args.write:
            name = f"{i:03d}-{c.cls}-{c.client}.eml"
            (args.write / name).write_bytes(c.raw)
            env_lines.append(json.dumps({"file": name, "sender": c.sender, "rcpt": list(c.rcpts)}))
    if args.write:
        (args.write / "envelopes.jsonl").write_text("\n".join(env_lines) + "\n")
    if args.json:
        return 0
    inc = [(k, v) for k, v in sorted(by_class.items()) if k[0]]
    ordi = [(k, v) for k, v in sorted(by_class.items()) if not k[0]]
    print("incidents (caught / cases)")
    for (_i, cls), (ok, n) in inc:
        print(f"  {cls:32s} {ok:3d} / {n}")
    print("ordinary mail (passed / cases)")
    for (_i, cls), (ok, n) in ordi:
        print(f"  {cls:32s} {ok:3d} / {n}")
    caught = sum(v[0] for _k, v in inc)
    n_inc = sum(v[1] for _k, v in inc)
    passed = sum(v[0] for _k, v in ordi)
    n_ord = sum(v[1] for _k, v in ordi)
    print(
        f"incident catch rate: {caught}/{n_inc} ({100 * caught / n_inc:.0f} %); "
        f"false holds: {n_ord - passed}/{n_ord} ({100 * (n_ord - passed) / n_ord:.0f} %)"
    )
    if args.verbose:
        print("\n".join(misses))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
