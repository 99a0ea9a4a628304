"""Forwarded web-form notifications (issue 8): a citizen's personal data, not a newsletter
and not an attribution. The citizen's address stays a third party in the block; a telephone
number is never read as a date line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mailbuild import attach_message, b_word, build

from leakguard.engine import Engine
from leakguard.message.parse import parse_message
from leakguard.message.quotes import form_label, is_form_text
from leakguard.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]
ENGINE = Engine(load_policy(ROOT / "policies" / "default.yaml"))
FROM = f"{b_word('佐藤 一也')} <kazuya.sato@city.example.lg.jp>"
CITIZEN = "hanako.yamada1985@gmail.com"
CONTRACTOR = "support@web-itaku.example"

# The bodies of form notifications, as the form software writes them.
FORMS: dict[str, str] = {
    # WordPress Contact Form 7, customised Japanese template (送信専用 footer)
    "cf7": (
        "ホームページのお問い合わせフォームから以下の内容で送信されました。\n\n"
        "お名前：山田 花子\n"
        f"メールアドレス：{CITIZEN}\n"
        "電話番号：090-1234-5678\n"
        "ご住所：〒150-0001 東京都渋谷区神宮前1-2-3\n"
        "お問い合わせ内容：\n"
        "粗大ごみの収集日について教えてください。\n\n"
        "--\n"
        "このメールは送信専用です。返信はできません。\n"
    ),
    # Google Forms response notification: labels and answers on separate lines
    "google-forms": (
        "「市民アンケート」に新しい回答が送信されました\n\n"
        "お名前\n山田 花子\n\n"
        "メールアドレス\n"
        f"{CITIZEN}\n\n"
        "電話番号\n03-1234-5678\n\n"
        "ご意見\n公園の遊具を増やしてほしいです。\n\n"
        "Google フォームで作成\n"
    ),
    # in-house CMS, bracketed labels, full-width address as typed by the citizen
    "cms": (
        "■お問い合わせがありました\n\n"
        "【お名前】山田 花子\n"
        "【フリガナ】ヤマダ ハナコ\n"
        "【メールアドレス】ｈａｎａｋｏ．ｙａｍａｄａ１９８５＠ｇｍａｉｌ．ｃｏｍ\n"
        "【電話番号】０９０－１２３４－５６７８\n"
        "【お問い合わせ内容】\n"
        "子育て支援の申請方法を知りたいです。\n\n"
        "※このメールはシステムより自動送信されています。\n"
    ),
    # kintone-like record notification
    "kintone": (
        "レコードが追加されました。\n\n"
        "氏名: 山田 花子\n"
        f"E-mail: {CITIZEN}\n"
        "TEL: 045(123)4567\n"
        "住所: 横浜市中区1-1\n"
        "内容: 窓口の受付時間について\n"
    ),
    # 自治体 e-申請 style: labels with (必須) marks and a reception number
    "e-shinsei": (
        "以下の申請を受け付けました。\n\n"
        "受付番号：2025021400123\n"
        "申請者氏名（必須）：山田 花子\n"
        f"メールアドレス（必須）：{CITIZEN}\n"
        "連絡先電話番号：0120-123-456\n"
        "申請内容：住民票の写しの交付\n\n"
        "このメールは送信専用アドレスから送信しています。\n"
    ),
    # a company fills in an inquiry form with its desk address (info@): still the
    # inquirer's data, not a newsletter's contact line
    "corporate": (
        "資料請求フォームより送信されました。\n\n"
        "会社名：有限会社やまだ設計\n"
        "お名前：山田 太郎\n"
        "メールアドレス：info@yamada-sekkei.co.jp\n"
        "電話番号：03-1234-5678\n"
        "ご用件：入札説明会の資料を送ってください。\n\n"
        "このメールは送信専用です。\n"
    ),
}
CITIZENS = {"corporate": "info@yamada-sekkei.co.jp"}


def outlook_ja(form: str) -> str:
    return (
        "田中様\n\n下記のお問い合わせへの対応をお願いします。\n\n"
        "-----Original Message-----\n"
        "差出人: noreply@city.example.lg.jp <noreply@city.example.lg.jp>\n"
        "送信日時: 2025年2月14日 17:32\n"
        "宛先: 広報課 <kouhou@city.example.lg.jp>\n"
        "件名: 【ホームページ】お問い合わせ\n\n" + form
    )


def gmail_ja(form: str) -> str:
    return (
        "田中様\n\n対応をお願いします。\n\n"
        "---------- Forwarded message ---------\n"
        "From: お問い合わせフォーム <no-reply@city.example.lg.jp>\n"
        "Date: 2025年2月14日(金) 17:32\n"
        "Subject: 【ホームページ】お問い合わせ\n"
        "To: <kouhou@city.example.lg.jp>\n\n\n" + form
    )


def thunderbird_ja(form: str) -> str:
    return (
        "田中様\n\n転送します。\n\n"
        "-------- 転送メッセージ --------\n"
        "件名: 【ホームページ】お問い合わせ\n"
        "日付: Fri, 14 Feb 2025 17:32:00 +0900\n"
        "差出人: form@city.example.lg.jp\n"
        "宛先: kouhou@city.example.lg.jp\n\n" + form
    )


FORWARDERS: dict[str, Callable[[str], str]] = {
    "outlook-ja": outlook_ja,
    "gmail-ja": gmail_ja,
    "thunderbird-ja": thunderbird_ja,
}
ENCODINGS = [("iso-2022-jp", "7bit"), ("shift_jis", "base64"), ("utf-8", "quoted-printable")]


def forwarded(form: str, forwarder: str, charset: str, cte: str) -> bytes:
    return build(
        [
            ("From", FROM),
            ("To", CONTRACTOR),
            ("Subject", b_word("FW: 【ホームページ】お問い合わせ", "iso-2022-jp")),
            ("Date", "Fri, 14 Feb 2025 18:00:00 +0900"),
        ],
        FORWARDERS[forwarder](form),
        charset=charset,
        cte=cte,
    )


@pytest.mark.parametrize("forwarder", list(FORWARDERS))
@pytest.mark.parametrize("form", list(FORMS))
def test_forwarded_form_keeps_the_citizen_as_a_third_party(form: str, forwarder: str) -> None:
    n = list(FORMS).index(form) + list(FORWARDERS).index(forwarder)
    citizen = CITIZENS.get(form, CITIZEN)
    for charset, cte in dict.fromkeys([ENCODINGS[0], ENCODINGS[n % len(ENCODINGS)]]):
        raw = forwarded(FORMS[form], forwarder, charset, cte)
        msg = parse_message(raw)
        holding = [b for b in msg.quoted_blocks if citizen in {a.addr for a in b.addresses}]
        assert holding, (form, forwarder, charset, msg.quoted_blocks)
        for blk in holding:
            assert not blk.bulk, (form, forwarder)  # a person's data, not a broadcast
            assert citizen not in {a.addr for a in blk.participants}
            assert citizen not in {a.addr for a in blk.senders}  # never the "author"
        d = ENGINE.decide(raw)
        assert d.verdict.action.value == "hold", (form, forwarder, charset, d.verdict.rule_ids)
        assert "forwarded-third-party" in d.verdict.rule_ids
        found = [f for f in d.verdict.findings if f.fact == "quoted_third_party_addresses"]
        assert any(citizen in f.addresses for f in found)


@pytest.mark.parametrize("form", list(FORMS))
def test_form_forwarded_internally_passes(form: str) -> None:
    # Hard negative: the same forward to a colleague exposes nobody.
    raw = build(
        [("From", FROM), ("To", "tanaka@city.example.lg.jp"), ("Subject", "Fw")],
        outlook_ja(FORMS[form]),
        charset="iso-2022-jp",
        cte="7bit",
    )
    assert ENGINE.decide(raw).verdict.action.value == "pass"


def test_form_attached_as_message_is_not_bulk() -> None:
    inner = build(
        [
            ("From", "WordPress <wordpress@city.example.lg.jp>"),
            ("Reply-To", CITIZEN),
            ("To", "kouhou@city.example.lg.jp"),
            ("Subject", b_word("お問い合わせ")),
        ],
        FORMS["cf7"],
        charset="iso-2022-jp",
        cte="7bit",
    )
    raw = attach_message([("From", FROM), ("To", CONTRACTOR), ("Subject", "Fwd")], "転送", inner)
    msg = parse_message(raw)
    blk = msg.quoted_blocks[0]
    assert not blk.bulk and CITIZEN in {a.addr for a in blk.addresses}
    assert ENGINE.decide(raw).verdict.action.value == "hold"


def test_phone_number_is_not_a_date_and_label_lines_are_not_an_attribution() -> None:
    # No forward header at all (pasted form): the three lines "メールアドレス：x /
    # 電話番号：090-... / お問い合わせ内容：" once read as "<date> <author>:".
    text = (
        "お名前：山田 花子\n"
        f"メールアドレス：{CITIZEN}\n"
        "電話番号：090-1234-5678\n"
        "お問い合わせ内容：\n"
        "> 以前の回答を引用します\n"
    )
    raw = build([("From", FROM), ("To", CONTRACTOR), ("Subject", "Fw")], text)
    msg = parse_message(raw)
    for blk in msg.quoted_blocks:
        assert CITIZEN not in {a.addr for a in blk.participants}
        assert CITIZEN not in {a.addr for a in blk.senders}
        assert blk.author == ""


def test_forwarded_newsletter_with_send_only_footer_stays_bulk() -> None:
    # Hard negative: a 送信専用 newsletter (no form labels) is still a broadcast.
    letter = (
        "〇〇市メールマガジン 第120号\n\n"
        "今月のイベント情報をお届けします。\n"
        "お問い合わせ：event-info@kanko-kyokai.example.or.jp\n\n"
        "配信停止はこちら https://mag.example.jp/stop\n"
        "このメールは送信専用です。\n"
    )
    raw = build(
        [("From", FROM), ("To", CONTRACTOR), ("Subject", "Fw")],
        gmail_ja(letter),
        charset="iso-2022-jp",
        cte="7bit",
    )
    msg = parse_message(raw)
    assert msg.quoted_blocks and all(b.bulk for b in msg.quoted_blocks if b.addresses)


@pytest.mark.parametrize(
    ("line", "group"),
    [
        ("お名前：山田 花子", "name"),
        ("【メールアドレス】a@b.example", "contact"),
        ("■電話番号：03-1234-5678", "contact"),
        ("E-mail: a@b.example", "contact"),
        ("お問い合わせ内容（必須）：", "content"),
        ("ご住所", "address"),
        ("名前のない猫について", None),
        ("mail me tomorrow", None),
        ("From: 山田 <a@b.example>", None),
    ],
)
def test_form_label_lines(line: str, group: str | None) -> None:
    assert form_label(line) == group


def test_signature_is_not_a_form() -> None:
    sig = ["株式会社ミナト商会 木村 健一", "TEL: 03-1234-5678", "E-mail: k@minato.example.co.jp"]
    assert not is_form_text(sig)
    assert is_form_text(["お名前：山田", "メール：a@b.example", "お問い合わせ内容：x"])


def test_html_form_table_forwarded_by_outlook_is_a_third_party() -> None:
    # An HTML notification (label cells and value cells), forwarded by Outlook (HTML).
    html = (
        "<html><body><p>田中様</p><p>対応をお願いします。</p>"
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0mm 0mm 0mm">'
        "<p><b>差出人:</b> noreply@city.example.lg.jp &lt;noreply@city.example.lg.jp&gt;<br>"
        "<b>送信日時:</b> 2025年2月14日 17:32<br><b>宛先:</b> 広報課 "
        "&lt;kouhou@city.example.lg.jp&gt;<br><b>件名:</b> お問い合わせ</p></div>"
        "<p>以下の内容でお問い合わせがありました。</p><table>"
        "<tr><th>お名前</th><td>山田 花子</td></tr>"
        f"<tr><th>メールアドレス</th><td>{CITIZEN}</td></tr>"
        "<tr><th>電話番号</th><td>090-1234-5678</td></tr>"
        "<tr><th>お問い合わせ内容</th><td>保育園の入園について</td></tr></table>"
        "<p>このメールは送信専用です。</p></body></html>"
    )
    for charset, cte in ENCODINGS:
        raw = build(
            [("From", FROM), ("To", CONTRACTOR), ("Subject", "FW")],
            html,
            charset=charset,
            cte=cte,
            content_type="text/html",
        )
        msg = parse_message(raw)
        holding = [b for b in msg.quoted_blocks if CITIZEN in {a.addr for a in b.addresses}]
        assert holding and not any(b.bulk for b in holding), msg.quoted_blocks
        d = ENGINE.decide(raw)
        assert d.verdict.action.value == "hold", (charset, d.verdict.rule_ids)


@pytest.mark.parametrize(
    ("line", "is_attribution"),
    [
        ("hanako@gmail.com 090-1234-5678 内容:", False),
        ("メール hanako@gmail.com 電話 ０９０−１２３４−５６７８ 内容:", False),
        ("k@x.example.co.jp (03) 1234-5678:", False),
        ("k@x.example.co.jp 045(123)4567:", False),
        ("2025-02-14 17:32 木下 <k@x.example.co.jp>:", True),
        ("2025/02/14 17:32、木下 <k@x.example.co.jp>:", True),
    ],
)
def test_telephone_numbers_are_not_dates(line: str, is_attribution: bool) -> None:
    from leakguard.message.quotes import _attribution

    assert (_attribution(line) is not None) == is_attribution


def test_contact_form_7_default_template_from_noreply_keeps_the_citizen() -> None:
    """CF7's default mail writes the person as 「差出人: 山田 太郎 <addr>」 (no form label) and
    says 「…のお問い合わせフォームから送信されました」; forwarded from noreply@ it was taken for
    bulk mail and the citizen dropped (review)."""
    from leakguard.engine import Engine
    from leakguard.policy.loader import default_policy_path

    cf7 = (
        "差出人: 山田 太郎 <yamada.taro@example.net>\n題名: ごみ収集について\n\n"
        "メッセージ本文:\n自宅前のごみが回収されていません。\n\n-- \n"
        "このメールは 〇〇市 (https://www.city.example.lg.jp) のお問い合わせフォームから"
        "送信されました\n"
    )
    body = (
        "田中様\n\n対応をお願いします。\n\n---------- Forwarded message ---------\n"
        "From: 〇〇市 <noreply@city.example.lg.jp>\nDate: 2026年11月20日(金) 10:12\n"
        "Subject: ごみ収集について\nTo: <shimin@city.example.lg.jp>\n\n\n" + cf7
    )
    raw = (
        "From: kazuya.sato@city.example.lg.jp\r\nTo: contractor@sample-shoji.co.jp\r\n"
        "Subject: Fwd\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()
    d = Engine.from_files(default_policy_path()).decide(raw)
    assert "forwarded-third-party" in d.verdict.rule_ids
    assert any("yamada.taro@example.net" in f.addresses for f in d.verdict.findings)
