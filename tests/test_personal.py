"""The personal-data detector: each kind, its hard negatives, masking, charsets, quoted
text, signatures, attachments, the data subject, and that no full identifier is shown."""

from __future__ import annotations

import base64
import dataclasses
import json
import quopri
import time
from email.header import Header

import pytest

from leakguard.detectors import personal
from leakguard.detectors.forms import find_forms
from leakguard.detectors.personal import KINDS, detect, normalize, scan_text
from leakguard.explain import explain_finding, location_text
from leakguard.masking import is_masked_value, mask, redact_text
from leakguard.message.parse import parse_message
from leakguard.organization import Context, Organization
from leakguard.policy.model import PERSONAL_DATA_KINDS
from leakguard.types import AttachmentContent, Finding, TextSection

ORG = Organization(internal_domains=["city.example.lg.jp", "*.city.example.lg.jp"])
CTX = Context(org=ORG)

MY_NUMBER = "314159265352"  # valid check digit
INVOICE_12 = "271828182840"  # also a valid My Number check digit: context decides
CORPORATE = "6700012345678"  # valid 法人番号


def kinds(text: str, attachment: str = "") -> list[str]:
    return sorted(i.kind for i in scan_text(text, attachment, "text part 1").items)


def mail(
    body: str,
    *,
    frm: str = "佐藤 一也 <kazuya.sato@city.example.lg.jp>",
    to: str = "田中 <soumu@sample-shoji.co.jp>",
    charset: str = "utf-8",
    cte: str = "8bit",
) -> bytes:
    def h(s: str) -> str:
        return Header(s, "utf-8").encode() if not s.isascii() else s

    def addr(s: str) -> str:
        name, _, rest = s.partition(" <")
        return f"{h(name)} <{rest}" if rest else s

    data = body.replace("\n", "\r\n").encode(charset)
    if cte == "base64":
        payload = base64.encodebytes(data)
    elif cte == "quoted-printable":
        payload = quopri.encodestring(data)
    else:
        payload = data
    head = (
        f"From: {addr(frm)}\r\nTo: {addr(to)}\r\nSubject: {h('申請の件')}\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\n"
        f"Content-Transfer-Encoding: {cte}\r\n\r\n"
    ).encode()
    return head + payload


def facts_of(raw: bytes, ctx: Context = CTX) -> tuple[dict[str, int], tuple[Finding, ...]]:
    msg = parse_message(raw)
    r = detect(msg, ctx)
    return dict(r.facts), r.findings


# --------------------------------------------------------------------------- kinds


def test_kind_ids_match_the_policy_model() -> None:
    assert KINDS == PERSONAL_DATA_KINDS


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f"マイナンバー：{MY_NUMBER}", "my_number"),
        ("個人番号 3141 5926 5352", "my_number"),
        ("3141-5926-5352", "my_number"),  # grouped 4-4-4 with a valid check digit
        ("My Number: 3141 5926 5352", "my_number"),
        ("被保険者番号：1234-567890-1", "employment_insurance_number"),
        ("雇用保険被保険者番号 12345678901", "employment_insurance_number"),
        ("基礎年金番号 1234-567890", "pension_number"),
        ("口座：みずほ銀行 渋谷支店 普通 1234567", "bank_account"),
        ("Bank: Mizuho Bank, Shibuya Branch, Savings Account 1234567", "bank_account"),
        ("カード番号：4111-1111-1111-1111", "credit_card"),
        ("VISA 4111 1111 1111 1111 有効期限 12/28", "credit_card"),
        ("JCB card 3530111333300000", "credit_card"),
        ("携帯：090-1234-5678", "phone"),
        ("ご自宅 03(1234)5678 までご連絡ください", "phone"),
        ("TEL 0312345678", "phone"),
        ("+81 90 1234 5678", "phone"),
        ("〒150-0001 東京都渋谷区神宮前1-2-3", "address"),
        ("郵便番号 330-0062 さいたま市浦和区仲町3-5-1", "address"),
        ("生年月日：昭和60年4月1日", "birth_date"),
        ("生年月日 S60.4.1", "birth_date"),
        ("誕生日：1985/04/01", "birth_date"),
        ("Date of Birth: April 1, 1985", "birth_date"),
        ("DOB: 01/04/1985", "birth_date"),
        ("旅券番号：TK1234567", "passport"),
        ("Passport No. TK1234567", "passport"),
        ("運転免許証番号 123456789012", "driving_licence"),
    ],
)
def test_each_kind(text: str, kind: str) -> None:
    assert kinds(text) == [kind]


def test_full_width_digits_and_dashes() -> None:
    assert kinds("個人番号：３１４１　５９２６　５３５２") == ["my_number"]
    assert kinds("携帯　０９０－１２３４－５６７８") == ["phone"]
    assert kinds("携帯 ０９０−１２３４−５６７８") == ["phone"]  # U+2212 from ISO-2022-JP
    assert kinds("携帯 090ー1234ー5678") == ["phone"]  # a long-vowel mark typed as a dash
    assert normalize("０９０－１２３４") == "090-1234"


def test_corporate_number_is_public_and_not_an_item() -> None:
    text = f"法人番号：{CORPORATE}\n貴社法人番号 {CORPORATE}"
    assert kinds(text) == ["corporate_number", "corporate_number"]
    f, findings = facts_of(mail(text))
    assert f["personal_data_items"] == 0 and f["personal_data_kinds"] == 0
    assert f["personal_data.corporate_number"] == 1  # one distinct value
    assert findings == ()


# --------------------------------------------------------------------------- hard negatives


@pytest.mark.parametrize(
    "text",
    [
        f"請求書番号：{INVOICE_12}",  # valid My Number check digit, but an invoice
        f"ご注文番号 {INVOICE_12}",
        f"Invoice No. {INVOICE_12}",
        f"お問い合わせ番号：{INVOICE_12[:4]}-{INVOICE_12[4:8]}-{INVOICE_12[8:]}",
        f"Tracking number: {INVOICE_12}",
        INVOICE_12,  # bare 12 digits, no context, not grouped
        "注文番号：PO-2026-004512 / 受注番号 3141592653",
        "品番：0312345678-A",
        "型番 0120-123-456",
        "フリーダイヤル 0120-123-456",  # toll-free: an organisation's line
        "ナビダイヤル 0570-000-123",
        "0312345678",  # a bare ten digits starting with 0 without any context
        "作成日時 20261124101500",
        "タイムスタンプ 1732412345",
        "〒100-0001",  # a zip code alone
        "郵便番号は 100-0001 です",
        "会議は 2026年11月24日 10:00 から",  # a date that is not a birth date
        "Call me at 713-853-1234 or (713) 853-5678",  # US numbers
        "Card 4111 1111 1111 1112",  # Luhn fails
        "4111111111111111",  # a card-like number without any card context
        "お振込先：みずほ銀行 本店 普通 1234567\n口座名義：カ）サンプルシヨウジ",
        "Remit to: First Bank, account 1234567, Acme Inc.",
        "契約番号 1234567 (普通預金のお申込み, 銀行)",
        "ISBN 978-4-12-345678-9",
        "JAN 4901234567894",
        "口座番号：XXXXXXX（みずほ銀行）",
    ],
)
def test_hard_negatives(text: str) -> None:
    assert kinds(text) == []


def test_ordinary_business_mail_is_clean() -> None:
    body = (
        "株式会社サンプル商事\n営業部 山田様\n\nいつもお世話になっております。\n"
        "11月24日(月) 14:00 からの打合せの件、会議室A(3F)にてお待ちしております。\n"
        "見積番号 Q-2026-1124 の金額は 1,234,560円(税込) です。\n"
        "ご不明点は代表 03-1234-5678 までお問い合わせください。\n"
    )
    f, _ = facts_of(mail(body))
    assert f["unmasked_forms"] == 0
    assert f.get("personal_data.my_number", 0) == 0
    assert f.get("personal_data.bank_account", 0) == 0


# --------------------------------------------------------------------------- forms and masking

FORM = """以下の内容で申請を受け付けました。

■申請者情報
氏名：鈴木 花子
フリガナ：スズキ ハナコ
生年月日：平成2年5月14日
住所：〒330-0062 埼玉県さいたま市浦和区仲町三丁目5番1号
電話番号：090-2234-5678
メールアドレス：hanako.suzuki@example.net
"""

MASKED_FORM = """■申請者情報
氏名：■■ ■■
フリガナ：＊＊＊ ＊＊＊
生年月日：（マスキング済）
住所：〒330-**** 非開示
電話番号：***-****-5678
メールアドレス：（非開示）
個人番号：●●●● ●●●● ●●●●
"""


def test_form_is_found_and_unmasked() -> None:
    (form,) = find_forms(normalize(FORM))
    assert form.unmasked and form.subject == "鈴木 花子"
    assert {f.type for f in form.fields} >= {"name", "kana", "birth_date", "address", "phone"}
    f, findings = facts_of(mail(FORM))
    assert f["unmasked_forms"] == 1
    assert f["personal_data.form_field"] >= 3  # 氏名, フリガナ, メールアドレス
    assert f["personal_data_kinds"] == 4  # form_field, birth_date, address, phone
    shown = " ".join(x.evidence["masked"] for x in findings)
    assert "鈴木 **" in shown and "花子" not in shown and "2234" not in shown


def test_masked_form_counts_nothing() -> None:
    (form,) = find_forms(normalize(MASKED_FORM))
    assert not form.unmasked and all(f.masked for f in form.fields)
    f, findings = facts_of(mail(MASKED_FORM))
    assert f["unmasked_forms"] == 0 and f["personal_data_items"] == 0 and findings == ()


def test_partly_masked_form() -> None:
    text = "氏名：山田 ●●\n住所：〒150-0001 東京都渋谷区神宮前1-2-3\n生年月日：XXXX年XX月XX日\n"
    text += "電話：***-****-1234\n"
    (form,) = find_forms(normalize(text))
    # only the address is open: one strong field is not a form about someone any more
    assert not form.unmasked


@pytest.mark.parametrize(
    "value",
    [
        "■■■",
        "＊＊＊",
        "●●",
        "XXXX",
        "（マスキング済）",
        "非開示",
        "***-****-1234",
        "山田 ●●",
        "[REDACTED]",
    ],
)
def test_mask_values_are_recognised(value: str) -> None:
    assert is_masked_value(value)


@pytest.mark.parametrize("value", ["山田 太郎", "John Smith", "090-1234-5678", "Maxx Power"])
def test_plain_values_are_not_masked(value: str) -> None:
    assert not is_masked_value(value)


def test_english_form_and_contact_block() -> None:
    form = "Name: John Smith\nDate of Birth: 04/01/1985\nAddress: 12 Main Street, Springfield\n"
    form += "Phone: 090-1234-5678\n"
    f, _ = facts_of(mail(form))
    assert f["unmasked_forms"] == 1
    # a name with a phone and an e-mail is a contact line, not a form about a person
    contact = "Name: John Smith\nPhone: 713-853-1234\nEmail: john.smith@example.com\n"
    f, _ = facts_of(mail(contact))
    assert f["unmasked_forms"] == 0
    # prose that begins with a label word is not a field
    prose = "Name of the project: Alpha\nAddress the issue by 5 pm\nAge 3 of the plan\n"
    assert find_forms(prose) == []


def test_table_rows_are_forms() -> None:
    csv = "氏名,住所,生年月日,電話番号\n"
    csv += "山田 太郎,東京都渋谷区神宮前1-2-3,1985/04/01,090-1234-5678\n"
    csv += "佐藤 花子,大阪府大阪市北区梅田1-1-1,1990/05/14,080-2345-6789\n"
    forms = find_forms(csv)
    assert len(forms) == 2 and all(f.unmasked for f in forms)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("my_number", "3141 5926 5352", "**** **** 5352"),
        ("credit_card", "4111 1111 1111 1111", "4111 **** **** 1111"),
        ("phone", "090-1234-5678", "090-****-5678"),
        ("phone", "03(1234)5678", "03(****)5678"),
        ("address", "〒123-4567 東京都千代田区丸の内1-2-3", "〒123-**** 東京都千代田区…"),
        ("name", "山田 太郎", "山田 **"),
        ("birth_date", "昭和60年4月1日", "昭和**年*月*日"),
        ("passport", "TK1234567", "TK*****67"),
        ("email", "hanako@example.net", "h***@example.net"),
    ],
)
def test_mask(kind: str, value: str, expected: str) -> None:
    assert mask(kind, value) == expected


def test_mask_never_shows_more_than_half_the_digits() -> None:
    for kind in KINDS:
        if kind == "phone":
            continue  # the area or mobile prefix and the last four: 090-****-5678
        shown = mask(kind, "123456789012")
        assert sum(c.isdigit() for c in shown) <= 6, (kind, shown)


def test_redact_text() -> None:
    assert redact_text(f"番号 {MY_NUMBER} です") == "番号 ********5352 です"
    assert redact_text("3141 5926 5352") == "**** **** 5352"
    assert redact_text("2026年11月24日 1,234円 No.12345") == "2026年11月24日 1,234円 No.12345"


# --------------------------------------------------------------------------- where it is read


def test_signature_is_not_personal_data() -> None:
    body = (
        "田中様\n\n資料を送付します。\n\n--\n佐藤 一也\n○○市 市民課\n"
        "〒330-9588 埼玉県さいたま市浦和区常盤六丁目4番4号\nTEL: 048-829-1234\n"
        "kazuya.sato@city.example.lg.jp\n"
    )
    f, _ = facts_of(mail(body))
    assert f["personal_data_items"] == 0
    ruled = (
        "田中様\n\n資料を送付します。\n\n━━━━━━━━━━━━━━\n株式会社サンプル 総務部\n"
        "〒150-0001 東京都渋谷区神宮前1-2-3\nTEL 03-1234-5678 FAX 03-1234-5679\n"
        "━━━━━━━━━━━━━━\n"
    )
    f, _ = facts_of(mail(ruled))
    assert f["personal_data_items"] == 0
    # the same phone number in the new text, as someone's contact, counts
    f, _ = facts_of(
        mail("田中様\n\n鈴木さんの携帯は 090-1234-5678 です。\n\nよろしくお願いします。\n")
    )
    assert f["personal_data.phone"] == 1


QUOTED = """ご連絡ありがとうございます。受け付けました。

-----Original Message-----
From: 鈴木 花子 <hanako.suzuki@example.net>
Sent: Monday, November 23, 2026 9:12 AM
To: 市民課 <shimin@city.example.lg.jp>
Subject: 申請

個人番号：3141 5926 5352
口座：さいたま中央銀行 浦和支店 普通 7654321
"""


def test_data_quoted_back_to_its_author_is_not_a_leak() -> None:
    raw = mail(QUOTED, to="鈴木 花子 <hanako.suzuki@example.net>")
    f, _ = facts_of(raw)
    assert f["personal_data_items"] == 0


def test_the_same_quote_forwarded_to_someone_else_counts() -> None:
    raw = mail(QUOTED, to="田中 <soumu@sample-shoji.co.jp>")
    f, findings = facts_of(raw)
    assert f["personal_data.my_number"] == 1 and f["personal_data.bank_account"] == 1
    ev = next(x.evidence for x in findings if x.evidence["kind"] == "my_number")
    assert ev["attachment"] == "" and ev["line"] == "9" and ev["masked"] == "**** **** 5352"


@pytest.mark.parametrize(
    ("charset", "cte"),
    [
        ("iso-2022-jp", "7bit"),
        ("shift_jis", "quoted-printable"),
        ("utf-8", "base64"),
        ("euc-jp", "8bit"),
    ],
)
def test_charsets(charset: str, cte: str) -> None:
    body = "田中様\n\n申請内容です。\n個人番号：３１４１　５９２６　５３５２\n携帯 090-1234-5678\n"
    f, _ = facts_of(mail(body, charset=charset, cte=cte))
    assert f["personal_data.my_number"] == 1 and f["personal_data.phone"] == 1


def test_html_alternative_is_not_counted_twice() -> None:
    b = "B"
    raw = (
        "From: a@city.example.lg.jp\r\nTo: b@sample-shoji.co.jp\r\nSubject: x\r\n"
        f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{b}"\r\n\r\n'
        f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n個人番号 {MY_NUMBER}\r\n"
        f"--{b}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"<p>個人番号 {MY_NUMBER}</p>\r\n--{b}--\r\n"
    ).encode()
    f, findings = facts_of(raw)
    assert f["personal_data_items"] == 1 and len(findings) == 1


def test_attachment_text_is_read_with_its_location() -> None:
    msg = parse_message(mail("田中様\n\n申請書を添付します。\n"))
    content = AttachmentContent(
        name="申請書.pdf",
        kind="pdf",
        status="read",
        sections=(
            TextSection("page 1", "給付金申請書\n"),
            TextSection("page 2", "申請者\n" + FORM + f"\n個人番号 {MY_NUMBER}\n"),
        ),
    )
    msg = dataclasses.replace(msg, contents=(content,))
    r = detect(msg, CTX)
    assert r.facts["unmasked_forms"] == 1 and r.facts["personal_data.my_number"] == 1
    mn = next(f for f in r.findings if f.evidence.get("kind") == "my_number")
    assert mn.evidence["attachment"] == "申請書.pdf" and mn.evidence["section"] == "page 2"
    assert location_text(mn.evidence, "ja") == "申請書.pdf 2 ページ 12行目"
    assert location_text(mn.evidence, "en") == "申請書.pdf, page 2, line 12"
    assert (
        explain_finding(mn, "ja")
        == "個人番号(マイナンバー) ********5352 (申請書.pdf 2 ページ 12行目)"
    )
    assert explain_finding(mn, "en") == "My Number ********5352 (申請書.pdf, page 2, line 12)"
    form = next(f for f in r.findings if f.fact == "unmasked_forms")
    assert "鈴木 **" in explain_finding(form, "ja") and "申請書.pdf" in explain_finding(form, "en")


# --------------------------------------------------------------------------- data subject


def _subject(to: str, frm: str = "市民課 <shimin@city.example.lg.jp>") -> int:
    f, _ = facts_of(mail("証明書を送付します。\n\n" + FORM, to=to, frm=frm))
    return f.get("addressee_mismatches", 0)


def test_form_about_someone_else_sent_to_a_private_person() -> None:
    assert _subject("佐藤 次郎 <jiro.sato@gmail.com>") == 1
    _, findings = facts_of(mail(FORM, to="佐藤 次郎 <jiro.sato@gmail.com>"))
    mm = next(x for x in findings if x.fact == "addressee_mismatches")
    assert mm.evidence["kind"] == "data_subject" and mm.evidence["masked"] == "鈴木 **"
    assert "花子" not in mm.detail and "花子" not in explain_finding(mm, "ja")


@pytest.mark.parametrize(
    "to",
    [
        "鈴木 花子 <hanako.suzuki@gmail.com>",  # the person herself
        "鈴木様 <hanako@gmail.com>",  # surname only: not clearly someone else
        "Hanako Suzuki <hanako@gmail.com>",  # romaji vs the form's フリガナ: same reading
        "<jiro.sato@gmail.com>",  # no display name: unknown
        "佐藤 次郎 <jiro.sato@sample-shoji.co.jp>",  # an organisation's staff
        "採用担当 <saiyo@gmail.com>",  # a role, not a person
    ],
)
def test_data_subject_stays_quiet(to: str) -> None:
    assert _subject(to) == 0


def test_data_subject_is_not_the_sender_sending_own_form() -> None:
    assert _subject("佐藤 次郎 <jiro.sato@gmail.com>", frm="鈴木 花子 <hanako@example.net>") == 0


# --------------------------------------------------------------------------- bounds


def test_hostile_number_soup_is_bounded() -> None:
    soup = ("個人番号 1234 5678 9012 携帯 090-1234-5678 ") * 20_000 + "1-" * 200_000
    start = time.process_time()
    _, findings = facts_of(mail(soup))
    assert time.process_time() - start < 5
    assert len(findings) <= personal.MAX_FINDINGS + 10


def test_fifty_kilobytes_of_japanese_is_cheap() -> None:
    para = (
        "いつもお世話になっております。先日ご依頼いただいた件について、担当部署で確認の上、"
        "11月24日までにご回答いたします。会議は2026年12月1日 10:00から第3会議室で行います。\n"
    )
    body = para * (50_000 // len(para.encode()))
    msg = parse_message(mail(body))
    detect(msg, CTX)
    start = time.process_time()
    for _ in range(20):
        detect(msg, CTX)
    per = (time.process_time() - start) / 20
    assert per < 0.005, per  # the bench reports the real figure; this guards a regression


def test_findings_never_carry_the_full_value() -> None:
    text = FORM + f"\n個人番号 {MY_NUMBER}\nカード番号 4111-1111-1111-1111\n"
    _, findings = facts_of(mail(text, to="佐藤 次郎 <jiro.sato@gmail.com>"))
    dumped = json.dumps([(x.detail, dict(x.evidence)) for x in findings], ensure_ascii=False)
    for secret in (
        MY_NUMBER,
        "3141 5926",
        "4111111111111111",
        "1111-1111-1111",
        "2234-5678",
        "花子",
        "仲町三丁目",
        "hanako.suzuki@",
    ):
        assert secret not in dumped, secret


# --------------------------------------------------------------------------- how clients write


def test_owa_html_table_form() -> None:
    html = (
        "<html><body><div>田中様</div><div>申請内容です。</div><table border=1>"
        "<tr><td>氏名</td><td>山田 太郎</td></tr>"
        "<tr><td>住所</td><td>〒150-0001 東京都渋谷区神宮前1-2-3</td></tr>"
        "<tr><td>生年月日</td><td>昭和60年4月1日</td></tr>"
        "<tr><td>電話番号</td><td>090-1234-5678</td></tr></table>"
        "<div>よろしくお願いします。</div></body></html>"
    )
    raw = (
        "From: =?utf-8?b?5L2Q6Jek?= <kazuya.sato@city.example.lg.jp>\r\n"
        "To: Tanaka <t@sample-shoji.co.jp>\r\nSubject: =?utf-8?b?55Sz6KuL?=\r\n"
        "X-MS-Has-Attach: \r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(html.encode()).decode()
    ).encode()
    f, findings = facts_of(raw)
    assert f["unmasked_forms"] == 1
    assert {x.evidence["kind"] for x in findings} >= {"phone", "birth_date", "address"}
    assert all(x.evidence["section"] == "HTML part 1" for x in findings)


def test_iphone_quoted_printable_forward() -> None:
    body = (
        "田中さん\n転送します\n\niPhoneから送信\n\n"
        "転送されたメッセージ:\n\n"
        "差出人: 鈴木 花子 <hanako.suzuki@example.net>\n"
        "日付: 2026年11月23日 9:12:00 JST\n"
        "宛先: 市民課 <shimin@city.example.lg.jp>\n"
        "件名: 口座登録\n\n"
        "振込先 さいたま中央銀行 浦和支店\n普通 口座番号 7654321\n"
    )
    f, findings = facts_of(mail(body, cte="quoted-printable"))
    assert f["personal_data.bank_account"] == 1
    (acct,) = [x for x in findings if x.evidence["kind"] == "bank_account"]
    assert acct.evidence["masked"] == "****321" and acct.evidence["line"] == "14"


def test_gmail_reply_quoting_the_author_back() -> None:
    body = (
        "鈴木様\n\n受け付けました。口座の登録が済みましたらご連絡します。\n\n"
        "2026年11月23日(月) 9:12 鈴木 花子 <hanako.suzuki@example.net>:\n"
        "> 口座：さいたま中央銀行 浦和支店 普通 7654321\n"
        "> 携帯 090-2234-5678\n"
    )
    raw = mail(body, to="鈴木 花子 <hanako.suzuki@example.net>", charset="iso-2022-jp", cte="7bit")
    f, _ = facts_of(raw)
    assert f["personal_data_items"] == 0
    # the same reply copied to another outsider: the quote is news to them
    raw = mail(
        body,
        to="鈴木 花子 <hanako.suzuki@example.net>, 田中 <soumu@sample-shoji.co.jp>",
        charset="iso-2022-jp",
        cte="7bit",
    )
    f, _ = facts_of(raw)
    assert f["personal_data.bank_account"] == 1 and f["personal_data.phone"] == 1


def test_quote_without_a_known_author_counts() -> None:
    # Thunderbird's default attribution names no address: who wrote it is unknown, so the
    # quoted lines count as if new (never hidden on a guess)
    body = (
        "鈴木様\n\n受け付けました。\n\nOn 11/23/2026 9:12 AM, 鈴木 花子 wrote:\n"
        "> 口座：さいたま中央銀行 浦和支店 普通 7654321\n"
    )
    f, _ = facts_of(mail(body, to="鈴木 花子 <hanako.suzuki@example.net>"))
    assert f["personal_data.bank_account"] == 1


def test_spreadsheet_attachment_rows() -> None:
    msg = parse_message(mail("名簿を送ります。\n"))
    sheet = TextSection(
        "sheet 名簿",
        "氏名\t住所\t生年月日\t電話番号\n"
        "山田 太郎\t東京都渋谷区神宮前1-2-3\t1985/04/01\t090-1234-5678\n"
        "佐藤 花子\t大阪府大阪市北区梅田1-1-1\t1990/05/14\t080-2345-6789\n"
        "■■ ■■\t■■■\t■■■\t■■■\n",
    )
    content = AttachmentContent("名簿.xlsx", "xlsx", "read", (sheet,))
    r = detect(dataclasses.replace(msg, contents=(content,)), CTX)
    assert r.facts["unmasked_forms"] == 2  # the masked row is not one
    assert r.facts["personal_data.phone"] == 2


def test_form_between_rules_is_not_a_signature() -> None:
    body = (
        "田中様\n\n下記の申請がありました。\n----------------------------\n"
        "氏名：山田 太郎\n住所：〒150-0001 東京都渋谷区神宮前1-2-3\n生年月日：昭和60年4月1日\n"
        "電話：090-1234-5678\n----------------------------\n\n佐藤\n"
    )
    f, _ = facts_of(mail(body))
    assert f["unmasked_forms"] == 1 and f["personal_data.phone"] == 1
    # a form at the very end with a company among its fields is not a signature either
    tail = "田中様\n\n応募者です。\n\n氏名：山田 太郎\n勤務先：株式会社ABC 営業部\n"
    tail += "住所：〒150-0001 東京都渋谷区神宮前1-2-3\n電話：090-1234-5678\n"
    f, _ = facts_of(mail(tail))
    assert f["unmasked_forms"] == 1


@pytest.mark.parametrize(
    "line",
    [
        "氏名: a" + " " * 200_000 + "b",
        "=" * 200_000 + "x",
        "住所 " + "東京都" * 50_000,
        "生年月日 " + "1" * 300_000,
    ],
)
def test_hostile_long_lines_are_linear(line: str) -> None:
    body = "田中様\n\n" + line + "\n--\n佐藤\nTEL 03-1234-5678\n" + line + "\n"
    start = time.process_time()
    facts_of(mail(body))
    assert time.process_time() - start < 3


# ------------------------------------------------------------------ rosters (lists of people)


_ROSTER_HEAD = "受付番号\t氏名\tフリガナ\t電話番号\tメールアドレス\t希望職種\n"


def test_applicant_roster_in_a_sheet_is_a_set_of_forms() -> None:
    rows = (
        "A-1\t高橋 美咲\tタカハシ ミサキ\t080-3321-7745\tmisaki.t@example.ne.jp\t事務\n"
        "A-2\t伊藤 大輔\tイトウ ダイスケ\t03-6618-2034\td-ito@example.com\t管理\n"
    )
    forms = find_forms(_ROSTER_HEAD + rows)
    assert len(forms) == 2 and all(f.unmasked for f in forms)
    # CSV the same way
    csv = _ROSTER_HEAD.replace("\t", ",") + rows.replace("\t", ",")
    assert len(find_forms(csv)) == 2


def test_business_contact_list_and_single_rows_are_not_rosters() -> None:
    head = "氏名,会社,電話番号,メールアドレス\n"
    business = (
        "山本 健二,サンプル商事,03-1111-2222,k.yamamoto@sample-shoji.co.jp\n"
        "高橋 花,サンプル商事,03-1111-2223,h.takahashi@sample-shoji.co.jp\n"
    )
    assert find_forms(head + business) == []  # landlines, no reading: business contacts
    one = _ROSTER_HEAD + "A-1\t高橋 美咲\tタカハシ ミサキ\t080-3321-7745\tm@example.ne.jp\t事務\n"
    assert find_forms(one) == []  # one person's row: a business card, not a roster
    masked = _ROSTER_HEAD + (
        "A-1\t■■ ■■\t＊＊＊\t***-****-7745\t非開示\t事務\n"
        "A-2\t■■ ■■\t＊＊＊\t***-****-2034\t非開示\t管理\n"
    )
    assert not any(f.unmasked for f in find_forms(masked))
